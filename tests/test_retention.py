"""Retention on a real SQLite file: what is old goes in small batches, digests outlive bodies,
a result with a pending delivery stays, the file gives its pages back; and `receiver purge`."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.config import RetentionSettings
from receiver.retention import cutoffs, purge, purge_now
from receiver.routing import Router
from receiver.store import Store
from receiver.store.tx import Tx
from tests.conftest import SECRET
from tests.notify_helpers import make_config, route
from tests.store_helpers import body_for, intake, opened, take_one

OLD = "2020-01-01T00:00:00.000000Z"  # older than any keep_days
MIDDLE = "2026-06-01T00:00:00.000000Z"


def fill(database: Store, count: int, *, start: int = 0, router: Router | None = None) -> None:
    async def run() -> None:
        into = intake(database, router)
        await asyncio.gather(*(take_one(into, body_for(n)) for n in range(start, start + count)))

    asyncio.run(run())


def age(database: Store, when: str, *, ids: range | None = None) -> None:
    """Backdate rows (all, or those with these ids) as if they had come in at ``when``."""
    where = f" WHERE id BETWEEN {ids.start} AND {ids.stop - 1}" if ids else ""

    def backdate(tx: Tx) -> None:
        tx.execute(f"UPDATE results SET created_at = ?{where}", [when])
        tx.execute(f"UPDATE jobs SET created_at = ?{where}", [when])
        tx.execute(f"UPDATE callbacks SET received_at = ?{where}", [when])
        tx.execute(f"UPDATE callback_digests SET received_at = ?{where}", [when])

    database.write_sync(backdate)


TABLES = {"results": "results", "tests": "tests", "jobs": "jobs", "deliveries": "deliveries"}
TABLES |= {"callbacks": "callbacks", "digests": "callback_digests"}


def counts(where: Store | Path) -> dict[str, int]:
    def count(tx: Tx) -> dict[str, int]:
        sql = "SELECT count(*) FROM {}"
        return {name: tx.execute(sql.format(table)).fetchone()[0] for name, table in TABLES.items()}

    if isinstance(where, Path):
        with opened(where) as database:
            return database.read(count)
    return where.read(count)


def checkpointed_size(db_path: Path) -> int:
    """The file's size once the WAL's pages are in it."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return os.path.getsize(db_path)


SETTINGS = RetentionSettings(keep_days=90, keep_digest_days=400)


def test_old_rows_go_their_digests_stay_and_a_replay_is_still_a_duplicate(
    store_url: str,
) -> None:
    with opened(store_url) as database:
        fill(database, 30)
        age(database, MIDDLE, ids=range(1, 21))  # 20 older than 90 days, younger than 400
        purged = asyncio.run(purge(database, cutoffs(SETTINGS), batch=7, pause=0))
        assert (purged.results, purged.jobs, purged.callbacks, purged.digests) == (20, 20, 20, 0)
        assert counts(database) == {
            "results": 10,
            "tests": 10,  # the seed callback has one test
            "jobs": 10,
            "deliveries": 0,
            "callbacks": 10,
            "digests": 30,
        }
        replay = asyncio.run(take_one(intake(database), body_for(5)))
    assert (replay.duplicate, replay.callback_id, replay.result_id) == (True, 6, None)


def test_digests_go_after_keep_digest_days(store_url: str) -> None:
    with opened(store_url) as database:
        fill(database, 12)
        age(database, OLD, ids=range(1, 5))
        age(database, MIDDLE, ids=range(5, 9))
        purged = asyncio.run(purge(database, cutoffs(SETTINGS), batch=5, pause=0))
        left = counts(database)
    assert (purged.results, purged.callbacks, purged.digests) == (8, 8, 4)
    assert (left["callbacks"], left["digests"]) == (4, 8)


def test_a_result_with_a_pending_delivery_is_never_purged(store_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path, route("all", "json://127.0.0.1:9/never"))
    with opened(store_url) as database:
        fill(database, 3, router=Router.from_config(config))  # three pending deliveries
        database.write_sync(
            lambda tx: tx.execute("UPDATE deliveries SET state = 'sent' WHERE result_id = 2")
        )
        age(database, OLD)
        purged = asyncio.run(purge(database, cutoffs(SETTINGS), pause=0))
        left = counts(database)
    assert purged.results == 1  # the one whose delivery was sent
    assert left["results"] == 2 and left["deliveries"] == 2


def test_a_purge_gives_the_file_its_pages_back(tmp_path: Path) -> None:
    with opened(tmp_path / "empty.db"):
        empty = checkpointed_size(tmp_path / "empty.db")  # the schema alone: a page per table
    path = tmp_path / "r.db"
    with opened(path) as database:
        fill(database, 400)
        before = checkpointed_size(path)
        age(database, OLD)
        asyncio.run(purge(database, cutoffs(SETTINGS), pause=0))
        after = checkpointed_size(path)
        free = database.read(lambda tx: tx.execute("PRAGMA freelist_count").fetchone()[0])
    assert free == 0
    # What the rows took is given back, but for the digests kept (and a page or two).
    assert after - empty < (before - empty) / 4, (empty, before, after)


def test_a_dry_run_counts_exactly_what_a_purge_deletes_and_deletes_nothing(
    store_url: str,
) -> None:
    with opened(store_url) as database:
        fill(database, 10)
        age(database, OLD, ids=range(1, 7))
        before = counts(database)
        would = purge_now(database, cutoffs(SETTINGS), dry_run=True)
        assert counts(database) == before
        did = purge_now(database, cutoffs(SETTINGS))
    assert would == did and did.results == 6 and did.digests == 6


def invoke(config_path: Path, db: Path, *args: str) -> tuple[int, str]:
    env = {"RECEIVER_DB": str(db), "QUALITYMAX_WEBHOOK_SECRET": SECRET}
    result = CliRunner().invoke(main, ["purge", "--config", str(config_path), *args], env=env)
    return result.exit_code, result.output


def test_receiver_purge_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    config = tmp_path / "receiver.toml"
    config.write_text("[retention]\nkeep_days = 30\n")
    with opened(path) as database:
        fill(database, 5)
        age(database, MIDDLE, ids=range(1, 3))
    assert invoke(config, path, "--dry-run") == (
        0,
        "would purge: 2 results (with their tests and deliveries), 2 jobs, 2 callbacks, "
        "0 callback digests\n",
    )
    assert counts(path)["results"] == 5
    code, output = invoke(config, path, "--older-than", "100000")
    assert (code, output.startswith("purged: 0 results")) == (0, True)
    code, output = invoke(config, path)
    assert (code, output.startswith("purged: 2 results")) == (0, True)
    assert counts(path)["results"] == 3


def test_receiver_purge_refuses_a_missing_database(tmp_path: Path) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text("")
    code, output = invoke(config, tmp_path / "nowhere.db")
    assert code == 1 and output.startswith("Error: No database at")
    assert not (tmp_path / "nowhere.db").exists()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[retention]\nkeep_days = 0\n", "keep_days must be greater than 0"),
        ("[retention]\nkeep_days = 90\nkeep_digest_days = 30\n", "a digest must outlive"),
    ],
)
def test_retention_settings_are_checked(tmp_path: Path, text: str, error: str) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text(text)
    code, output = invoke(config, tmp_path / "r.db")
    assert code == 1 and error in output
