"""Building blocks for tests of the store and the intake: a real SQLite file, real rows."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from receiver import views
from receiver.callbacks import Accepted, CallbackIntake
from receiver.record import Recorder
from receiver.results import Result
from receiver.routing import Router
from receiver.store import Store, open_store, results
from receiver.views import ResultDetail
from tests.conftest import SECRET, callback_body, signed


@contextmanager
def opened(where: Path | str) -> Iterator[Store]:
    """The store at a SQLite path or a PostgreSQL URL, closed afterwards."""
    database = open_store(str(where))
    try:
        yield database
    finally:
        database.close()


def intake(database: Store, router: Router | None = None) -> CallbackIntake:
    return CallbackIntake(database, (SECRET,), Recorder(router or Router([])))


def body_for(n: int) -> bytes:
    return callback_body(job_id=f"group-{n}")


def digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


async def take_one(into: CallbackIntake, body: bytes, job_key: str | None = None) -> Accepted:
    headers = {k.lower(): v for k, v in signed(body).items()}
    return await into.take(job_key=job_key, headers=headers, body=body, received_at="now")


def stored(db_path: str | Path) -> list[bytes]:
    """Digests of every stored callback, one per row."""
    conn = sqlite3.connect(db_path)
    try:
        return [bytes(row[0]) for row in conn.execute("SELECT digest FROM callback_digests")]
    finally:
        conn.close()


def details(db_path: Path, *values: Result) -> list[ResultDetail]:
    """Each result stored (with its tests) and read back as the notifiers see it."""
    found = []
    with opened(db_path) as database:
        for value in values:
            result_id = database.write_sync(
                lambda tx, v=value: results.insert(tx, v, callback_id=None, job_id=None)  # type: ignore[misc]
            )
            found.append(database.read(lambda tx, r=result_id: views.result_detail(tx, r)))  # type: ignore[misc]
    return found
