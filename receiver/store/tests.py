"""Tests across runs: each stored test row carries its identity (``receiver.tests_identity``)
and its result's branch, and ``test_identities`` holds each distinct test once."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.store.tx import Tx, row_as, rows_as


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
    branch: str | None
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
SELECT t.result_id, t.status, t.duration_ms, t.error, t.branch, r.created_at
FROM tests t JOIN results r ON r.id = t.result_id
WHERE t.test_id = ? ORDER BY t.result_id DESC LIMIT ?
"""
ON_BRANCH: Final = """
SELECT result_id, status FROM tests
WHERE test_id = ? AND branch = ? AND result_id <= ? ORDER BY result_id DESC LIMIT ?
"""
ON_NO_BRANCH: Final = """
SELECT result_id, status FROM tests
WHERE test_id = ? AND branch IS NULL AND result_id <= ? ORDER BY result_id DESC LIMIT ?
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


def runs_on_branch(
    tx: Tx, test_id: str, branch: str | None, *, up_to: int, limit: int
) -> list[Mark]:
    """The test's last runs on ``branch`` up to result ``up_to``, newest first."""
    if branch is None:
        return rows_as(tx.execute(ON_NO_BRANCH, [test_id, up_to, limit]), Mark)
    return rows_as(tx.execute(ON_BRANCH, [test_id, branch, up_to, limit]), Mark)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
