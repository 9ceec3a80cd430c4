"""The store's seam on both backends (a SQLite file, a fresh PostgreSQL database): migrations,
group commit, a failing write alone, blocking and async writers together, closing, the probe.
What only one backend has is in tests/test_store_sqlite.py and tests/test_store_postgres.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from receiver.store import Store, StoreError, jobs, open_store
from receiver.store.migrate import migrations
from receiver.store.tx import Tx
from tests.store_helpers import opened


def new_job(state: str = "submitted") -> Callable[[Tx], int]:
    return lambda tx: jobs.insert(tx, jobs.NewJob(provider="qualitymax", state=state))


def count(database: Store, table: str) -> int:
    return int(database.read(lambda tx: tx.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))


def test_migrations_apply_once_in_order(store_url: str) -> None:
    with opened(store_url):
        pass
    with opened(store_url) as database:  # opening again applies nothing
        applied = database.read(
            lambda tx: [r[0] for r in tx.execute("SELECT name FROM _migrations").fetchall()]
        )
        dialect = database.dialect
    assert sorted(applied) == [m.name for m in migrations(dialect)]
    assert applied.count("0001_initial") == 1


def test_concurrent_writes_share_commits_and_a_failing_one_fails_alone(store_url: str) -> None:
    def write(n: int) -> Callable[[Tx], int]:
        def fn(tx: Tx) -> int:
            job_id = new_job(state=f"s{n}")(tx)
            if n % 2:
                raise ValueError(f"write {n} fails")
            return job_id

        return fn

    async def run(database: Store) -> list[object]:
        writes = (database.write(write(n)) for n in range(50))
        return await asyncio.gather(*writes, return_exceptions=True)

    with opened(store_url) as database:
        outcomes = asyncio.run(run(database))
        assert count(database, "jobs") == 25  # exactly the writes that succeeded
        assert database.batches < 50  # concurrent writes shared commits
    assert len([o for o in outcomes if isinstance(o, ValueError)]) == 25


def test_a_lone_write_commits_without_waiting_for_company(store_url: str) -> None:
    async def one_by_one(database: Store) -> None:
        for _ in range(3):
            await database.write(new_job())

    with opened(store_url) as database:
        asyncio.run(one_by_one(database))
        assert (database.batches, database.batched_writes) == (3, 3)


def test_blocking_writers_and_the_event_loop_write_together(store_url: str) -> None:
    async def on_the_loop(database: Store) -> list[int]:
        return await asyncio.gather(*(database.write(new_job("loop")) for _ in range(150)))

    with opened(store_url) as database, ThreadPoolExecutor(4) as pool:
        threads = [pool.submit(database.write_sync, new_job("thread")) for _ in range(150)]
        ids = asyncio.run(on_the_loop(database))
        ids += [future.result() for future in threads]
        assert len(set(ids)) == 300 == count(database, "jobs")


def test_a_second_event_loop_still_writes(store_url: str) -> None:
    with opened(store_url) as database:
        asyncio.run(database.write(new_job()))
        with ThreadPoolExecutor(1) as other:  # a new thread, a new loop, the first still open
            other.submit(asyncio.run, database.write(new_job())).result(timeout=30)
        assert count(database, "jobs") == 2


def test_writes_after_close_are_refused(store_url: str) -> None:
    database = open_store(store_url)
    database.close()
    with pytest.raises(StoreError, match="not open"):
        asyncio.run(database.write(new_job()))
    with pytest.raises(StoreError, match="not open"):
        database.write_sync(new_job())


def test_the_probe_writes_and_answers_none_when_all_is_well(store_url: str) -> None:
    with opened(store_url) as database:
        assert asyncio.run(database.probe()) is None
        database.check_writable()
