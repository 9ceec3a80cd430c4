"""The store on real SQLite files: migrations, durability settings, group commit."""

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from receiver import store
from receiver.results import Result, TestCase


def test_migrations_apply_once(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    with store.Store(path):
        pass
    conn = sqlite3.connect(path)
    applied = [r[0] for r in conn.execute("SELECT name FROM _migrations")]
    assert applied == [m.__name__ for m in store.MIGRATIONS] and applied[0] == "m001_initial"
    assert store.migrate(Database(conn)) == []
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"callbacks", "results", "tests", "jobs"} <= tables


def test_writer_uses_wal_and_full_sync(tmp_path: Path) -> None:
    with store.Store(str(tmp_path / "db.sqlite")) as database:
        mode = database.write_sync(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
        sync = database.write_sync(lambda db: db.execute("PRAGMA synchronous").fetchone()[0])
    assert (mode, sync) == ("wal", 2)  # 2 is FULL


def test_job_indexes_hold_only_the_jobs_their_lookups_find(tmp_path: Path) -> None:
    def write(db: Database) -> dict[str, int]:
        for key in ("k1", None, None):
            store.insert_job(db, store.NewJob(provider="qualitymax", state="passed", job_key=key))
        job = store.NewJob(provider="qualigate", state="submitted", external_id="run-1")
        store.insert_polling_job(db, job, external_kind="run")
        # index_list's columns: seq, name, unique, origin, partial
        return {row[1]: row[4] for row in db.execute("PRAGMA index_list(jobs)").fetchall()}

    with store.Store(str(tmp_path / "db.sqlite")) as database:
        partial = database.write_sync(write)
        assert partial["idx_jobs_job_key"] == partial["idx_jobs_open_poll"] == 1
        with pytest.raises(sqlite3.IntegrityError):  # keys stay unique; only NULLs repeat
            database.write_sync(
                lambda db: store.insert_job(db, store.NewJob(provider="x", state="s", job_key="k1"))
            )
        due = database.write_sync(lambda db: store.due_poll_jobs(db, "qualigate"))
        assert [job.external_id for job in due] == ["run-1"]
        plan = database.read(
            lambda db: db.execute(
                f"EXPLAIN QUERY PLAN {store.SELECT_DUE_POLL_JOBS}", ["qualigate", "now", 10]
            ).fetchall()
        )
        assert any("USING INDEX idx_jobs_open_poll" in row[-1] for row in plan), plan


def test_a_failing_write_does_not_undo_its_batch_mates(tmp_path: Path) -> None:
    def job(n: int) -> object:
        def write(db: Database) -> int:
            job_id = store.insert_job(db, store.NewJob(provider="qualitymax", state="submitted"))
            if n % 2:
                raise ValueError(f"write {n} fails")
            return job_id

        return write

    async def run(database: store.Store) -> list[object]:
        return await asyncio.gather(
            *(database.write(job(n)) for n in range(50)), return_exceptions=True
        )

    with store.Store(str(tmp_path / "db.sqlite")) as database:
        outcomes = asyncio.run(run(database))
        page = database.read(lambda db: store.list_jobs(db, limit=500))
        batches = database.batches
    failures = [o for o in outcomes if isinstance(o, ValueError)]
    assert len(failures) == 25
    assert len(page.items) == 25  # exactly the writes that succeeded
    assert batches < 50  # concurrent writes shared commits


def test_result_round_trip(tmp_path: Path) -> None:
    result = Result(
        provider="qualitymax",
        event="test_results",
        status="failed",
        total=2,
        passed=1,
        failed=1,
        custom_data={"branch": "main", "pr_number": "7", "repo": "o/r", "head_sha": "abc"},
        tests=[TestCase(name="a", status="passed"), TestCase(name="b", status="failed", error="x")],
    )
    with store.Store(str(tmp_path / "db.sqlite")) as database:
        result_id = database.write_sync(lambda db: store.insert_result(db, result, job_id=None))
        detail = database.read(lambda db: store.get_result(db, result_id))
    assert (detail.branch, detail.pr_number, detail.repository, detail.sha) == (
        "main",
        7,
        "o/r",
        "abc",
    )
    assert [t.name for t in detail.tests] == ["a", "b"]


def test_missing_rows_raise_not_found(tmp_path: Path) -> None:
    with store.Store(str(tmp_path / "db.sqlite")) as database:
        with pytest.raises(store.NotFound, match="No result 3"):
            database.read(lambda db: store.get_result(db, 3))
        with pytest.raises(store.NotFound, match="No job 4"):
            database.read(lambda db: store.get_job(db, 4))


def test_writing_to_a_closed_store_is_an_error(tmp_path: Path) -> None:
    database = store.Store(str(tmp_path / "db.sqlite"))
    with pytest.raises(store.StoreError, match="not open"):
        database.write_sync(lambda db: None)


class Doubler:
    """A BatchWriter that notes how the store called it; its batch path can be made to fail."""

    def __init__(self, *, many_fails: bool = False) -> None:
        self.many_fails = many_fails
        self.calls: list[tuple[str, object]] = []

    def write_one(self, db: Database, item: int) -> int:
        self.calls.append(("one", item))
        return item * 2

    def write_many(self, db: Database, items: list[int]) -> list[int] | None:
        self.calls.append(("many", items))
        if self.many_fails:
            raise ValueError("the batch path failed")
        return [item * 2 for item in items]


@pytest.mark.parametrize("many_fails", [False, True])
def test_a_run_of_one_writers_items_in_a_batch_is_written_together(
    tmp_path: Path, many_fails: bool
) -> None:
    """Consecutive items of one BatchWriter go to its write_many, in order with the batch's
    other writes; if it raises, the batch runs again one write at a time."""
    writer = Doubler(many_fails=many_fails)

    async def run(database: store.Store) -> list[object]:
        return await asyncio.gather(
            database.write_item(writer, 1),
            database.write_item(writer, 2),
            database.write(lambda db: "plain"),
            database.write_item(writer, 3),
        )

    with store.Store(str(tmp_path / "db.sqlite")) as database:
        values = asyncio.run(run(database))
        assert (database.batches, database.batched_writes) == (1, 4)
    assert values == [2, 4, "plain", 6]
    again = [("one", 1), ("one", 2), ("one", 3)] if many_fails else [("one", 3)]
    assert writer.calls == [("many", [1, 2]), *again]
