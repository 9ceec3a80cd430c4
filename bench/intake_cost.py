"""The event loop thread's CPU per callback of a checkout's intake, in process, and its SQL.

    cd CHECKOUT && /path/to/.venv/bin/python /path/to/bench/intake_cost.py [--prefill N]
        [--count 20000] [--batch 8] [--statements] [--custom-data JSON]

Runs the checkout found in the working directory (this session's code, or a checkout from
before the store's redesign: ``receiver.store.Store`` and ``CallbackIntake.write_many``), on a
real SQLite file with ``synchronous = FULL``, no route. Callbacks shaped like the partner's go
through ``CallbackIntake.take`` ``--batch`` at a time (``asyncio.gather``), so that group commit
sees them together as it does at -c16 served; the database first holds ``--prefill`` others.
Prints the event loop thread's CPU per callback (``time.thread_time``; the COMMIT runs on the
store's committer thread). ``--statements``: also each SQL statement's CPU per callback on the
thread that ran it (COMMIT: the committer's), which adds a little to the loop's figure.
``--custom-data``: added to every callback's (``{"repository": "acme/shop"}`` gives the tests
an identity, and so a triage).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())  # the checkout to measure, ahead of any installed receiver

from receiver.demo import seed_callback
from receiver.signatures import sign

SECRET = "bench-secret"
RECEIVED_AT = "2026-01-01T00:00:00.000000Z"
SPENT: dict[str, list[float]] = {}  # statement -> [calls, CPU seconds]


def bodies(
    prefix: str, count: int, custom_data: dict[str, Any] | None = None
) -> list[tuple[bytes, dict[str, str]]]:
    """Distinct callbacks like the document's (no top-level job_id), with their headers."""
    seed = json.loads(seed_callback())
    seed.pop("job_id", None)
    seed["custom_data"].update(custom_data or {})
    made = []
    for i in range(count):
        seed["custom_data"]["deploy_id"] = f"{prefix}-{i}"
        body = json.dumps(seed, separators=(",", ":")).encode()
        headers = {"x-qualitymax-signature": sign(body, SECRET), "content-type": "application/json"}
        made.append((body, headers))
    return made


def timed(base: type[sqlite3.Connection]) -> type[sqlite3.Connection]:
    """``base`` with each statement's CPU on its thread added to SPENT."""

    def note(sql: str, started: float) -> None:
        entry = SPENT.setdefault(" ".join(sql.split())[:72], [0, 0.0])
        entry[0] += 1
        entry[1] += time.thread_time() - started

    class Timed(base):  # type: ignore[valid-type,misc]
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            started = time.thread_time()
            try:
                return super().execute(sql, *args)
            finally:
                note(sql, started)

        def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
            started = time.thread_time()
            try:
                return super().executemany(sql, *args)
            finally:
                note("MANY " + sql, started)

    return Timed


def time_statements() -> None:
    try:
        import receiver.store.sqlite as store_sqlite
    except ImportError:  # before the redesign: store.py's connect() calls sqlite3.connect
        connect, factory = sqlite3.connect, timed(sqlite3.Connection)

        def connect_timed(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            kwargs.setdefault("factory", factory)
            return connect(*args, **kwargs)

        sqlite3.connect = connect_timed  # type: ignore[assignment]
        return
    store_sqlite.SqliteConnection = timed(store_sqlite.SqliteConnection)  # type: ignore[misc]


def open_intake(path: str) -> tuple[Any, Any, str]:
    """(store, intake, which design) for the checkout in the working directory."""
    from receiver.callbacks import CallbackIntake

    try:
        from receiver.record import Recorder
        from receiver.routing import Router
        from receiver.store import open_store
    except ImportError:
        from receiver import store as old_store

        database = old_store.Store(path).open()  # type: ignore[attr-defined]
        return database, CallbackIntake(database, (SECRET,)), "before"  # type: ignore[call-arg]
    database = open_store(path)
    return database, CallbackIntake(database, (SECRET,), Recorder(Router([]))), "redesign"


async def take_all(intake: Any, items: list[tuple[bytes, dict[str, str]]], batch: int) -> None:
    for start in range(0, len(items), batch):
        await asyncio.gather(
            *(
                intake.take(job_key=None, headers=headers, body=body, received_at=RECEIVED_AT)
                for body, headers in items[start : start + batch]
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill", type=int, default=0, help="callbacks stored beforehand")
    parser.add_argument("--count", type=int, default=20000, help="callbacks measured")
    parser.add_argument("--batch", type=int, default=8, help="callbacks taken together")
    parser.add_argument("--statements", action="store_true", help="each statement's CPU too")
    parser.add_argument(
        "--custom-data",
        type=json.loads,
        default={},
        metavar="JSON",
        help='added to every callback\'s custom_data, e.g. \'{"repository": "acme/shop"}\'',
    )
    args = parser.parse_args()
    if args.statements:
        time_statements()
    with tempfile.TemporaryDirectory(prefix="receiver-intake-") as tmp:
        database, intake, design = open_intake(str(Path(tmp) / "receiver.db"))
        loop = asyncio.new_event_loop()
        if args.prefill:
            prefill = bodies("prefill", args.prefill, args.custom_data)
            loop.run_until_complete(take_all(intake, prefill, 64))
        warm_up = bodies("warm-up", 1000, args.custom_data)
        loop.run_until_complete(take_all(intake, warm_up, args.batch))
        measured = bodies("measured", args.count, args.custom_data)
        SPENT.clear()
        started = time.thread_time()
        loop.run_until_complete(take_all(intake, measured, args.batch))
        per_callback = (time.thread_time() - started) / args.count * 1e6
        print(
            f"{design:>9}, {args.prefill} callbacks stored before, batches of {args.batch}: "
            f"event loop thread {per_callback:.1f} us/callback",
            flush=True,
        )
        for sql, (calls, spent) in sorted(SPENT.items(), key=lambda item: -item[1][1]):
            print(f"  {spent / args.count * 1e6:6.2f} us {calls / args.count:5.2f} calls  {sql}")
        database.close()
        loop.close()


if __name__ == "__main__":
    main()
