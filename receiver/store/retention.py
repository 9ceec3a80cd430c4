"""Retention's SQL: what is older than the cutoffs goes, in small batches, oldest first.

Rows are walked by id in windows of ``batch`` (ids grow with time, so the oldest rows come
first and no index on the timestamps is needed): a window holding nothing old enough ends a
step. A result with a delivery still pending is never purged; a callback's digest outlives it
until the digest cutoff, so a replay is still a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from receiver.store.tx import SQLITE, Tx, marks


class Cutoffs(msgspec.Struct, frozen=True, kw_only=True):
    before: str  # results, tests, jobs, deliveries and callbacks older than this go
    digests_before: str  # callback digests older than this go


class Window(msgspec.Struct, kw_only=True):
    """One step's pass over a window of ids: how far it got, what it changed, whether the
    window held anything old enough (so the next window may too)."""

    last_id: int
    changed: int
    more: bool


class Purged(msgspec.Struct, kw_only=True):
    results: int = 0
    jobs: int = 0
    callbacks: int = 0
    digests: int = 0

    def add(self, step: str, count: int) -> None:
        setattr(self, step, getattr(self, step) + count)

    @property
    def total(self) -> int:
        return self.results + self.jobs + self.callbacks + self.digests


Step = Callable[[Tx, Cutoffs, int, int], Window]

RESULT_WINDOW: Final = """
SELECT id, created_at < ? AS old,
    EXISTS (SELECT 1 FROM deliveries d WHERE d.result_id = results.id AND d.state = 'pending')
FROM results WHERE id > ? ORDER BY id LIMIT ?
"""
JOB_WINDOW: Final = """
SELECT id, created_at < ? AND (result_id IS NULL
    OR NOT EXISTS (SELECT 1 FROM results r WHERE r.id = jobs.result_id))
FROM jobs WHERE id > ? ORDER BY id LIMIT ?
"""
CALLBACK_WINDOW: Final = """
SELECT id, received_at < ? AND (result_id IS NULL
    OR NOT EXISTS (SELECT 1 FROM results r WHERE r.id = callbacks.result_id))
FROM callbacks WHERE id > ? ORDER BY id LIMIT ?
"""
DIGEST_WINDOW: Final = """
SELECT id, received_at < ? FROM callback_digests WHERE id > ? ORDER BY id LIMIT ?
"""
# What a result leaves beside its tests and deliveries (migration 0004): its routing decision,
# its delivery attempts, and a matrix row it is the newest result of.
RESULT_COMPANIONS: Final = ("route_decisions", "delivery_attempts", "matrix_rows")
INCREMENTAL: Final = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def purge_results(tx: Tx, cutoffs: Cutoffs, after: int, batch: int) -> Window:
    rows = tx.execute(RESULT_WINDOW, [cutoffs.before, after, batch]).fetchall()
    doomed = [row[0] for row in rows if row[1] and not row[2]]
    if doomed:
        ids = marks(doomed)
        tx.execute(f"DELETE FROM tests WHERE result_id IN ({ids})", doomed)
        tx.execute(f"DELETE FROM test_logs WHERE result_id IN ({ids})", doomed)
        tx.execute(f"DELETE FROM deliveries WHERE result_id IN ({ids})", doomed)
        for table in RESULT_COMPANIONS:
            tx.execute(f"DELETE FROM {table} WHERE result_id IN ({ids})", doomed)
        tx.execute(f"DELETE FROM results WHERE id IN ({ids})", doomed)
    return _window(rows, len(doomed))


def purge_jobs(tx: Tx, cutoffs: Cutoffs, after: int, batch: int) -> Window:
    rows = tx.execute(JOB_WINDOW, [cutoffs.before, after, batch]).fetchall()
    doomed = [row[0] for row in rows if row[1]]
    if doomed:
        tx.execute(f"DELETE FROM jobs WHERE id IN ({marks(doomed)})", doomed)
    return _window(rows, len(doomed), old=any(row[1] for row in rows))


def purge_callbacks(tx: Tx, cutoffs: Cutoffs, after: int, batch: int) -> Window:
    rows = tx.execute(CALLBACK_WINDOW, [cutoffs.before, after, batch]).fetchall()
    doomed = [row[0] for row in rows if row[1]]
    if doomed:
        tx.execute(f"DELETE FROM callbacks WHERE id IN ({marks(doomed)})", doomed)
    return _window(rows, len(doomed), old=any(row[1] for row in rows))


def purge_digests(tx: Tx, cutoffs: Cutoffs, after: int, batch: int) -> Window:
    rows = tx.execute(DIGEST_WINDOW, [cutoffs.digests_before, after, batch]).fetchall()
    doomed = [row[0] for row in rows if row[1]]
    if doomed:
        tx.execute(f"DELETE FROM callback_digests WHERE id IN ({marks(doomed)})", doomed)
    return _window(rows, len(doomed))


# In this order: a result goes before its job, a callback only once its result is gone.
STEPS: Final[dict[str, Step]] = {
    "results": purge_results,
    "jobs": purge_jobs,
    "callbacks": purge_callbacks,
    "digests": purge_digests,
}


def _window(rows: list[tuple[object, ...]], changed: int, *, old: bool | None = None) -> Window:
    if not rows:
        return Window(last_id=0, changed=0, more=False)
    last_id = int(rows[-1][0])  # type: ignore[call-overload]
    return Window(
        last_id=last_id, changed=changed, more=any(r[1] for r in rows) if old is None else old
    )


def reclaim(tx: Tx, pages: int) -> int:
    """Give up to ``pages`` free pages back to the file system; how many free pages are left
    (0 on a file without incremental auto-vacuum: nothing to do step by step there)."""
    if tx.dialect != SQLITE:
        return 0  # PostgreSQL's autovacuum does it
    if tx.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
        return 0
    tx.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
    return int(tx.execute("PRAGMA freelist_count").fetchone()[0])
