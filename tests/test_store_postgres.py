"""What only PostgreSQL has: several instances on one database. Two stores (as two receivers
would hold) take the same callbacks, claim the same outbox and the same polled jobs at the same
moment, and hear each other's commits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest

from receiver.callbacks import Accepted
from receiver.record import Recorder
from receiver.results import Result
from receiver.routing import Router
from receiver.store import Store, Tx, deliveries, jobs, open_store, results
from receiver.store.migrate import migrations
from receiver.store.postgres import PostgresStore
from tests.notify_helpers import make_config, result, route
from tests.store_helpers import body_for, intake, take_one


@pytest.fixture
def two(postgres_url: str) -> Iterator[tuple[Store, Store]]:
    first, second = open_store(postgres_url), open_store(postgres_url)
    yield first, second
    first.close()
    second.close()


def take_in_thread(database: Store, bodies: list[bytes]) -> list[Accepted]:
    """One instance's intake, on its own event loop, as in its own process."""

    async def run() -> list[Accepted]:
        into = intake(database)
        return await asyncio.gather(*(take_one(into, body) for body in bodies))

    return asyncio.run(run())


def test_the_same_callbacks_taken_by_two_instances_are_stored_once(
    two: tuple[Store, Store],
) -> None:
    bodies = [body_for(n) for n in range(60)]
    with ThreadPoolExecutor(2) as pool:
        answers = [
            future.result()
            for future in [pool.submit(take_in_thread, store, bodies) for store in two]
        ]
    for n in range(len(bodies)):
        pair = [answers[0][n], answers[1][n]]
        assert sorted(a.duplicate for a in pair) == [False, True], n
        assert pair[0].callback_id == pair[1].callback_id
    stored = two[0].read(lambda tx: tx.execute("SELECT count(*) FROM callbacks").fetchone()[0])
    assert stored == len(bodies)


def test_two_instances_never_claim_the_same_delivery(
    two: tuple[Store, Store], tmp_path: Path
) -> None:
    config = make_config(tmp_path, route("all", "json://127.0.0.1:9/a", "json://127.0.0.1:9/b"))
    recorder = Recorder(Router.from_config(config))
    for _ in range(40):
        two[0].write_sync(lambda tx: recorder.record(tx, result(), job_id=None))
    claimed: list[list[int]] = [[], []]
    go = threading.Barrier(2)

    def claim_all(n: int) -> None:
        go.wait()
        while batch := two[n].write_sync(
            lambda tx: deliveries.claim(
                tx, limit=5, lease=f"i{n}", lease_seconds=60, per_target=100, busy={}
            )
        ):
            claimed[n].extend(d.id for d in batch)

    threads = [threading.Thread(target=claim_all, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == 80


def test_a_polled_job_is_held_by_one_instance_and_picked_up_when_its_lease_ends(
    two: tuple[Store, Store],
) -> None:
    for n in range(10):
        job = jobs.NewJob(
            provider="qualigate", state="submitted", external_id=f"r{n}", external_kind="run"
        )
        two[0].write_sync(lambda tx, job=job: jobs.insert(tx, job))  # type: ignore[misc]

    def claim(store: Store, lease: float) -> list[int]:
        return [
            job.id
            for job in store.write_sync(
                lambda tx: jobs.claim_for_polling(tx, "qualigate", lease_seconds=lease, skip=[])
            )
        ]

    held = claim(two[0], lease=0.5)
    assert len(held) == 10 and claim(two[1], lease=60) == []  # the other instance skips them
    threading.Event().wait(0.6)  # the first instance "died": its lease runs out
    assert claim(two[1], lease=60) == held


def test_a_commit_on_one_instance_wakes_the_other(two: tuple[Store, Store], tmp_path: Path) -> None:
    heard = threading.Event()
    assert two[1].listen(deliveries.OUTBOX_CHANNEL, lambda payload: heard.set())
    config = make_config(tmp_path, route("all", "json://127.0.0.1:9/a"))
    recorder = Recorder(Router.from_config(config))
    two[0].write_sync(lambda tx: recorder.record(tx, result(), job_id=None))
    assert heard.wait(10), "the other instance never heard of the queued delivery"


def test_a_lost_listening_connection_is_made_again(
    two: tuple[Store, Store], tmp_path: Path
) -> None:
    """A server restart or a proxy's idle cut ends the LISTEN connection: the instance connects
    again and hears the other's notices after it."""
    heard = threading.Event()
    listener = two[1]
    assert isinstance(listener, PostgresStore)
    assert listener.listen(deliveries.OUTBOX_CHANNEL, lambda payload: heard.set())
    backend = listener._listening.info.backend_pid if listener._listening else None
    assert backend is not None
    two[0].write_sync(lambda tx: tx.execute("SELECT pg_terminate_backend(?)", [backend]))
    deadline = time.monotonic() + 10
    while listener.listen_losses == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.listen_losses == 1, "the lost connection went unnoticed"
    config = make_config(tmp_path, route("all", "json://127.0.0.1:9/a"))
    recorder = Recorder(Router.from_config(config))
    # A notice sent while it reconnects may be missed: send until one is heard.
    while not heard.is_set() and time.monotonic() < deadline + 10:
        two[0].write_sync(lambda tx: recorder.record(tx, result(), job_id=None))
        heard.wait(0.5)
    assert heard.is_set(), "nothing was heard after the connection was made again"


def test_a_store_says_which_backend_it_is(postgres_url: str) -> None:
    database = open_store(postgres_url)
    try:
        assert isinstance(database, PostgresStore) and database.dialect == "postgresql"
        assert "postgres@" in database.path  # no password to hide here, nothing else shown
    finally:
        database.close()


def untested(status: str = "passed") -> Result:
    """A result on branch feat/login with no tests (whose identities two instances would
    otherwise both insert, each waiting for the other's)."""
    return msgspec.structs.replace(result(status), tests=[], failures=[])


def branch_total(database: Store) -> int:
    found = database.read(lambda tx: results.days(tx, "branch", "feat/login", since="2000-01-01"))
    return sum(day.total for day in found)


def test_a_days_count_holds_no_other_instance_until_the_batch_commits(
    two: tuple[Store, Store],
) -> None:
    """Every result of a branch's day adds to one row. Counted where the result is written,
    that row's lock was held for the rest of the writer's batch, and the other instance's
    writer waited for all of it (two instances were slower than one); it is counted just
    before the COMMIT."""
    inside, release = threading.Event(), threading.Event()

    def slow(tx: Tx) -> None:
        results.insert(tx, untested(), callback_id=None, job_id=None)
        inside.set()
        release.wait(20)  # the rest of a long batch

    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(two[0].write_sync, slow)
        try:
            assert inside.wait(10)
            other = pool.submit(
                two[1].write_sync,
                lambda tx: results.insert(tx, untested(), callback_id=None, job_id=None),
            )
            other.result(timeout=10)  # not waiting for the first instance's batch
        finally:
            release.set()
        held.result(timeout=10)
    assert branch_total(two[0]) == 2


def test_a_failed_write_of_a_batch_counts_nothing_and_the_others_count_once(
    postgres_url: str,
) -> None:
    """The batch runs again with a savepoint per write: the counts the failed write had asked
    for are dropped, the others' applied once."""
    database = open_store(postgres_url)
    gate = threading.Event()

    def failing(tx: Tx) -> None:
        results.insert(tx, untested("failed"), callback_id=None, job_id=None)
        raise ValueError("this write fails after counting")

    def counted(tx: Tx) -> int:
        return results.insert(tx, untested(), callback_id=None, job_id=None)

    async def batch() -> list[object]:
        blocker = asyncio.create_task(database.write(lambda tx: gate.wait(10)))
        await asyncio.sleep(0.2)  # the writer thread is inside the blocker
        writes = [asyncio.create_task(database.write(fn)) for fn in (counted, failing, counted)]
        await asyncio.sleep(0.2)  # all three queued behind it: the writer's next batch
        gate.set()
        await blocker
        outcomes: list[object] = await asyncio.gather(*writes, return_exceptions=True)
        return outcomes

    try:
        batches = database.batches
        outcomes = asyncio.run(batch())
        assert isinstance(outcomes[1], ValueError)
        assert database.batches == batches + 2, "the three writes were not one batch"
        days = database.read(
            lambda tx: results.days(tx, "branch", "feat/login", since="2000-01-01")
        )
        assert [(day.total, day.passed) for day in days] == [(2, 2)]
    finally:
        database.close()


def test_instances_starting_at_once_on_a_new_database_migrate_it_once(postgres_url: str) -> None:
    """A deploy starts every machine together: each runs the migrations at start, one at a
    time (an advisory lock); the others find them applied."""
    go = threading.Barrier(4)

    def start() -> Store:
        go.wait()
        return open_store(postgres_url)

    with ThreadPoolExecutor(4) as pool:
        started = list(pool.map(lambda _: start(), range(4)))
    try:
        applied = started[0].read(
            lambda tx: [row[0] for row in tx.execute("SELECT name FROM _migrations").fetchall()]
        )
        assert sorted(applied) == [m.name for m in migrations("postgresql")]
    finally:
        for database in started:
            database.close()
