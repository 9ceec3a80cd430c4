"""SQLite's batch path: callbacks that share one group commit are written with one statement per
table (``Tx.later``, ids counted once per batch), and must leave exactly the rows that the same
callbacks taken one at a time leave: results, tests and their labels, test history, jobs,
digests, deliveries, the routing ledger; a duplicate inside the batch is still a duplicate."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from receiver.callbacks import Accepted, CallbackIntake, PayloadRejected
from receiver.demo import seed_callback
from receiver.record import Recorder
from receiver.routing import Router
from receiver.store import Store, jobs
from receiver.store.sqlite import SqliteStore
from receiver.store.tx import Tx
from tests.conftest import SECRET, signed
from tests.notify_helpers import make_config, route
from tests.store_helpers import opened

HOOK = "json://127.0.0.1:9/hook"  # never sent to: the outbox is only read
ROUTES = (
    route("failures", HOOK, when='{ status = ["failed", "error"] }')
    + route("new ones", HOOK, when="{ new_failures = true }")
    + route("by branch", HOOK, extra='on_change = true\ngroup_by = ["branch"]')
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")


def body(
    deploy: str, branch: str, sha: str, failing: tuple[str, ...], job_id: str | None = None
) -> bytes:
    """A partner-shaped callback of three tests in acme/shop, ``failing`` those named."""
    document = json.loads(seed_callback())
    document["custom_data"] = {
        "deploy_id": deploy,
        "branch": branch,
        "sha": sha,
        "repository": "acme/shop",
    }
    if job_id is not None:
        document["job_id"] = job_id
    names = ("Login", "Checkout", "Search")
    results = document["results"]
    results["status"] = "failed" if failing else "passed"
    results["tests"] = [
        {"test": n, "status": "failed" if n in failing else "passed", "duration_ms": 10}
        for n in names
    ]
    results.update(total_tests=3, passed=3 - len(failing), failed=len(failing))
    return json.dumps(document).encode()


# Tests shared between callbacks of one batch (the triage of each must see the ones before it),
# a duplicate of an earlier body, two callbacks of one provider job (the second finds the job
# the first made), a body that is not JSON and its repeat.
BODIES = [
    body("d1", "main", "a1", ("Search",)),
    body("d2", "feat", "b1", ("Login", "Search")),
    body("d3", "feat", "b1", ("Search",)),
    body("d2", "feat", "b1", ("Login", "Search")),
    body("d4", "feat", "b2", ("Login", "Checkout")),
    body("d5", "main", "a2", ()),
    body("d6", "main", "a3", ("Checkout",), job_id="ext-1"),
    body("d7", "main", "a3", (), job_id="ext-1"),
    b"not json",
    body("d8", "feat", "b3", ("Checkout",)),
    b"not json",
]


def answer(outcome: object) -> object:
    if isinstance(outcome, PayloadRejected):
        return ("rejected", outcome.detail, outcome.callback_id)
    assert isinstance(outcome, Accepted), outcome
    return outcome


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, timestamps masked (the two runs happen at different times)."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        ]
        return {
            table: sorted(
                (tuple(_masked(v) for v in row) for row in conn.execute(f"SELECT * FROM {table}")),
                key=repr,
            )
            for table in tables
        }
    finally:
        conn.close()


def _masked(value: object) -> object:
    return TIMESTAMP.sub("T", value) if isinstance(value, str) else value


def intake(database: Store, tmp_path: Path) -> CallbackIntake:
    config = make_config(tmp_path, ROUTES)
    return CallbackIntake(database, (SECRET,), Recorder(Router.from_config(config), config.triage))


async def take(into: CallbackIntake, payload: bytes) -> Any:
    headers = {k.lower(): v for k, v in signed(payload).items()}
    return await into.take(job_key=None, headers=headers, body=payload, received_at="now")


def test_a_batch_stores_what_the_same_callbacks_one_at_a_time_store(tmp_path: Path) -> None:
    async def together(into: CallbackIntake) -> list[object]:
        return list(await asyncio.gather(*(take(into, b) for b in BODIES), return_exceptions=True))

    async def one_by_one(into: CallbackIntake) -> list[object]:
        outcomes: list[object] = []
        for payload in BODIES:
            try:
                outcomes.append(await take(into, payload))
            except PayloadRejected as exc:
                outcomes.append(exc)
        return outcomes

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    batched, single = tmp_path / "a" / "receiver.db", tmp_path / "b" / "receiver.db"
    with opened(batched) as database:
        answers = asyncio.run(together(intake(database, tmp_path / "a")))
        assert (database.batches, database.batched_writes) == (1, len(BODIES))
        assert isinstance(database, SqliteStore) and database.reruns == 0  # no write raised
    with opened(single) as database:
        expected = asyncio.run(one_by_one(intake(database, tmp_path / "b")))
        assert database.batches == len(BODIES)

    assert [answer(a) for a in answers] == [answer(e) for e in expected]
    duplicate = answers[3]
    assert isinstance(duplicate, Accepted) and duplicate.duplicate
    assert isinstance(answers[1], Accepted) and duplicate.result_id == answers[1].result_id
    stored, reference = rows(batched), rows(single)
    assert stored == reference
    # The rows that say the scenario did what it is for: labels from earlier callbacks of the
    # same batch, one job for the two callbacks naming it, deliveries and their ledger.
    assert len(stored["callback_digests"]) == 9 and len(stored["results"]) == 8
    assert len(stored["jobs"]) == 7
    assert len(stored["deliveries"]) > 0 and len(stored["route_decisions"]) == 8
    assert {"new", "failing on main", "flaky"} <= labels_of(batched)


def labels_of(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT label FROM tests WHERE label IS NOT NULL")}
    finally:
        conn.close()


def test_ids_counted_in_a_batch_follow_rows_written_by_other_statements(tmp_path: Path) -> None:
    """A row of a counted table written by plain SQL in the same batch (or deleted) makes the
    next id be read again: ids come out as SQLite would give them one write at a time."""

    def made(state: str) -> Callable[[Tx], int]:
        return lambda tx: jobs.insert(tx, jobs.NewJob(provider="qualitymax", state=state))

    def plain(tx: Tx) -> int:
        cursor = tx.execute(
            "INSERT INTO jobs (provider, state, created_at, updated_at) "
            "VALUES ('qualitymax', 'plain', 't', 't') RETURNING id"
        )
        return int(cursor.fetchone()[0])

    def drop_newest(tx: Tx) -> int:
        tx.execute("DELETE FROM jobs WHERE id = (SELECT max(id) FROM jobs)")
        return 0

    writes = [made("a"), plain, made("b"), drop_newest, made("c"), made("d")]

    async def together(database: Store) -> list[int]:
        return await asyncio.gather(*(database.write(w) for w in writes))

    async def one_by_one(database: Store) -> list[int]:
        return [await database.write(w) for w in writes]

    with opened(tmp_path / "batched.db") as database:
        ids = asyncio.run(together(database))
        assert database.batches == 1
        assert isinstance(database, SqliteStore) and database.reruns == 0
    with opened(tmp_path / "single.db") as database:
        assert asyncio.run(one_by_one(database)) == ids == [1, 2, 3, 0, 3, 4]
    assert rows(tmp_path / "batched.db")["jobs"] == rows(tmp_path / "single.db")["jobs"]
