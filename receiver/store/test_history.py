"""The per-test history triage reads and advances (receiver.triage, receiver.history).

``test_history``: one row per test (receiver.tests_identity), its window of recent runs and
whether it is on the quarantine list. ``test_branches``: one row per test and branch where the
test failed last, its failing streak there (a pass deletes it). Both are bounded per row and
written only when they change, so a result costs one read of its own tests' rows, and a write
of those that changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import msgspec

from receiver.store.tx import Tx, marks, rows_as
from receiver.triage import Known, Streak

CHUNK: Final = 500  # test ids per IN list: far below any backend's limit on parameters

# One row per test: its window, and its failing streaks on the result's branch and the base.
SELECT_KNOWN: Final = """
SELECT h.test_id, h.recent, h.flaky, b.runs, b.since, m.runs, m.since
FROM test_history h
LEFT JOIN test_branches b ON b.test_id = h.test_id AND b.branch = ?
LEFT JOIN test_branches m ON m.test_id = h.test_id AND m.branch = ?
WHERE h.test_id IN ({ids})
"""
UPSERT_TEST: Final = """
INSERT INTO test_history (test_id, provider, scope, name, cell, recent, flaky, last_seen_at,
    last_failed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (test_id) DO UPDATE SET
    recent = excluded.recent, flaky = excluded.flaky, last_seen_at = excluded.last_seen_at,
    last_failed_at = coalesce(excluded.last_failed_at, test_history.last_failed_at)
"""
UPSERT_BRANCH: Final = """
INSERT INTO test_branches (test_id, branch, runs, since, result_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (test_id, branch) DO UPDATE SET
    runs = excluded.runs, since = excluded.since, result_id = excluded.result_id,
    updated_at = excluded.updated_at
"""
DELETE_BRANCH: Final = "DELETE FROM test_branches WHERE test_id = ? AND branch = ?"
SELECT_FLAKY: Final = """
SELECT test_id, provider, scope, name, cell, recent, last_seen_at, last_failed_at
FROM test_history WHERE flaky = 1{scope}
ORDER BY last_failed_at DESC, test_id
"""


class Advance(msgspec.Struct, frozen=True, kw_only=True):
    """One test's rows after a result: its window and list state, its streak on the branch;
    each written only when it changed."""

    test_id: str
    provider: str
    scope: str
    name: str
    cell: str  # the matrix cell its result named, else ""
    branch: str
    recent: str
    flaky: bool
    failed: bool
    streak: Streak | None  # failing on the branch after this result, or not
    window_changed: bool = True
    streak_changed: bool = True


class FlakyRow(msgspec.Struct, kw_only=True):
    test_id: str
    provider: str
    scope: str
    name: str
    cell: str
    recent: str
    last_seen_at: str
    last_failed_at: str | None


def known(tx: Tx, test_ids: Sequence[str], *, branch: str, base: str) -> dict[str, Known]:
    """What is kept about each of ``test_ids`` (those never seen are absent), with their
    failing streaks on ``branch`` and on ``base``."""
    found: dict[str, Known] = {}
    for start in range(0, len(test_ids), CHUNK):
        chunk = test_ids[start : start + CHUNK]
        for row in tx.execute(_select_known(len(chunk)), [branch, base, *chunk]).fetchall():
            found[row[0]] = _known(row)
    return found


@functools.lru_cache(maxsize=CHUNK)
def _select_known(count: int) -> str:
    """SELECT_KNOWN for ``count`` ids (a result's test count: the same run after run)."""
    return SELECT_KNOWN.format(ids=marks([None] * count))


def _known(row: Sequence[Any]) -> Known:
    _, recent, flaky, runs, since, base_runs, base_since = row
    return Known(
        recent=recent,
        flaky=bool(flaky),
        on_branch=Streak(runs=runs, since=since) if runs is not None else None,
        on_base=Streak(runs=base_runs, since=base_since) if base_runs is not None else None,
    )


def advance(tx: Tx, rows: Iterable[Advance], *, result_id: int, now: Callable[[], str]) -> None:
    """Write what changed of each test's window and streak: the history as of ``result_id``
    (``now`` gives the time, asked only when something changed)."""
    tests: list[tuple[Any, ...]] = []
    failing: list[tuple[Any, ...]] = []
    fixed: list[tuple[Any, ...]] = []
    changed = [row for row in rows if row.window_changed or row.streak_changed]
    if not changed:
        return
    when = now()
    for row in changed:
        if row.window_changed:
            failed_at = when if row.failed else None
            identity = (row.test_id, row.provider, row.scope, row.name, row.cell)
            tests.append((*identity, row.recent, int(row.flaky), when, failed_at))
        if row.streak_changed:
            if row.streak is None:
                fixed.append((row.test_id, row.branch))
            else:
                where = (row.test_id, row.branch)
                failing.append((*where, row.streak.runs, row.streak.since, result_id, when))
    if tests:
        tx.executemany(UPSERT_TEST, tests)
    if failing:
        tx.executemany(UPSERT_BRANCH, failing)
    if fixed:
        tx.executemany(DELETE_BRANCH, fixed)


def flaky(tx: Tx, *, scope: str | None = None) -> list[FlakyRow]:
    """The quarantine list, the latest failure first (of one repository or project if given)."""
    sql = SELECT_FLAKY.format(scope=" AND scope = ?" if scope is not None else "")
    params = [scope] if scope is not None else []
    return rows_as(tx.execute(sql, params), FlakyRow)
