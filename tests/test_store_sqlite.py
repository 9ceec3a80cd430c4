"""What only the SQLite backend has, on real files: the first releases' databases upgraded,
WAL and full sync, a commit that fails at COMMIT, a missing file, the probe's memory."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.store import NoDatabase, Store, StoreError, jobs, open_store
from receiver.store.sqlite import SqliteStore
from receiver.store.tx import Tx
from tests.store_helpers import opened

LEGACY_SCHEMA = Path(__file__).parent / "data" / "legacy_m006.sql"


def new_job(state: str = "submitted") -> Callable[[Tx], int]:
    return lambda tx: jobs.insert(tx, jobs.NewJob(provider="qualitymax", state=state))


def count(db_path: Path, table: str) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_a_database_of_the_first_releases_is_upgraded_in_place(tmp_path: Path) -> None:
    """Made by the m001..m006 migrations: its hex digests become 32 raw bytes, so a body stored
    before the upgrade is still a duplicate after it."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(LEGACY_SCHEMA.read_text())
    conn.execute(
        "INSERT INTO callbacks (provider, digest, body, outcome, received_at) "
        "VALUES ('qualitymax', ?, x'7b7d', 'accepted', 't')",
        ["ab" * 32],
    )
    conn.commit()
    conn.close()
    with opened(path) as database:
        digest = database.read(
            lambda tx: tx.execute("SELECT digest FROM callback_digests").fetchone()[0]
        )
        applied = database.read(
            lambda tx: [r[0] for r in tx.execute("SELECT name FROM _migrations").fetchall()]
        )
    assert digest == bytes.fromhex("ab" * 32)
    assert "0001_initial" in applied and "m006_open_poll_index_without_in_list" in applied


def test_writer_uses_wal_full_sync_and_incremental_vacuum(tmp_path: Path) -> None:
    with opened(tmp_path / "db.sqlite") as database:
        settings = database.write_sync(
            lambda tx: [
                tx.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "auto_vacuum")
            ]
        )
    assert settings == ["wal", 2, 2]  # synchronous 2 is FULL, auto_vacuum 2 is INCREMENTAL


def test_no_write_is_answered_as_done_when_its_commit_fails(tmp_path: Path) -> None:
    """The answer comes from the COMMIT: here the commit itself fails (a deferred foreign key)."""

    def dangling_test_row(tx: Tx) -> str:
        tx.execute("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT, not at INSERT
        tx.execute(
            "INSERT INTO tests (result_id, position, name, status) VALUES (424242, 0, 'x', 'y')"
        )
        return "inserted"

    async def run(database: Store) -> list[object]:
        writes = [
            database.write(new_job()),
            database.write(dangling_test_row),
            database.write(new_job()),
        ]
        return await asyncio.gather(*writes, return_exceptions=True)

    path = tmp_path / "db.sqlite"
    with opened(path) as database:
        answers = asyncio.run(run(database))
    assert all(isinstance(a, StoreError) for a in answers), answers
    assert count(path, "jobs") == 0


def test_a_missing_database_is_refused_when_it_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "receiver.db"
    with pytest.raises(NoDatabase, match=f"No database at {path}"):
        open_store(str(path), create=False)
    assert not path.parent.exists(), "refusing must not create the folder"


def test_the_probe_reports_a_failed_write_until_a_write_commits(tmp_path: Path) -> None:
    async def run(database: SqliteStore) -> list[str | None]:
        seen = [await database.probe()]
        database.write_failure = "Write to x failed: database or disk is full"
        seen.append(await database.probe())  # the probe's own tiny write does not clear it
        await database.write(new_job())
        seen.append(await database.probe())
        return seen

    with SqliteStore(str(tmp_path / "db.sqlite")).open() as database:
        assert asyncio.run(run(database)) == [
            None,
            "Write to x failed: database or disk is full",
            None,
        ]
