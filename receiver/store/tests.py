"""Tests across runs: each stored test row carries its identity (``receiver.tests_identity``),
and ``test_identities`` holds each distinct test once."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.store.tx import Tx, marks, row_as, rows_as


class Identity(msgspec.Struct, kw_only=True):
    test_id: str
    provider: str
    scope: str  # the repository, else the provider's project, else ""
    name: str


class Run(msgspec.Struct, kw_only=True):
    """One run of a test: its row of one result."""

    result_id: int
    status: str
    duration_ms: int | None
    error: str | None
    branch: str | None  # its result's
    created_at: str


class Mark(msgspec.Struct, kw_only=True):
    result_id: int
    status: str


SEARCH: Final = """
SELECT test_id, provider, scope, name FROM test_identities
WHERE lower(name) LIKE ? ESCAPE '\\' ORDER BY name, test_id LIMIT ?
"""
IDENTITY: Final = "SELECT test_id, provider, scope, name FROM test_identities WHERE test_id = ?"
RUNS: Final = """
SELECT t.result_id, t.status, t.duration_ms, t.error, r.branch, r.created_at
FROM tests t JOIN results r ON r.id = t.result_id
WHERE t.test_id = ? ORDER BY t.result_id DESC LIMIT ?
"""
# The statuses of some tests in some results: one index range per result (idx_tests_result_id).
IN_RESULTS: Final = """
SELECT result_id, test_id, status FROM tests
WHERE result_id IN ({results}) AND test_id IN ({tests})
"""


def search(tx: Tx, text: str, *, limit: int) -> list[Identity]:
    """Tests whose name holds ``text`` (any case), by name."""
    pattern = "%" + _escape_like(text.lower()) + "%"
    return rows_as(tx.execute(SEARCH, [pattern, limit]), Identity)


def identity(tx: Tx, test_id: str) -> Identity | None:
    return row_as(tx.execute(IDENTITY, [test_id]), Identity)


def runs(tx: Tx, test_id: str, *, limit: int) -> list[Run]:
    """The test's newest runs, newest first."""
    return rows_as(tx.execute(RUNS, [test_id, limit]), Run)


def marks_in(tx: Tx, result_ids: list[int], test_ids: list[str]) -> dict[str, list[Mark]]:
    """Per test of ``test_ids``, its runs among ``result_ids``, newest first."""
    found: dict[str, list[Mark]] = {test: [] for test in test_ids}
    if not result_ids or not test_ids:
        return found
    sql = IN_RESULTS.format(results=marks(result_ids), tests=marks(test_ids))
    for result_id, test, status in tx.execute(sql, [*result_ids, *test_ids]).fetchall():
        found[test].append(Mark(result_id=result_id, status=status))
    for runs in found.values():
        runs.sort(key=lambda mark: -mark.result_id)
    return found


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
