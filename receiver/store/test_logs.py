"""Execution logs of failed tests: queued in the result's transaction, fetched after it, kept.

The table is the fetcher's queue (receiver.artifacts): a ``pending`` row is due at its
``next_attempt_at``; ``fetched`` rows hold the logs, ``dead`` ones the last error.
"""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.clock import utcnow
from receiver.store.tx import Tx, rows_as

INSERT: Final = """
INSERT INTO test_logs (result_id, execution_id, state, attempts, next_attempt_at, updated_at)
VALUES (?, ?, 'pending', 0, ?, ?)
ON CONFLICT (result_id, execution_id) DO NOTHING
"""
# Due rows by the partial index idx_test_logs_due (migration 0005), claimed by moving them on.
SELECT_DUE: Final = """
SELECT result_id, execution_id, attempts FROM test_logs
WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?
"""
CLAIM: Final = """
UPDATE test_logs SET next_attempt_at = ?, updated_at = ?
WHERE result_id = ? AND execution_id = ? AND state = 'pending'
"""
FETCHED: Final = """
UPDATE test_logs SET state = 'fetched', logs = ?, error = NULL, attempts = attempts + 1,
    updated_at = ?
WHERE result_id = ? AND execution_id = ?
"""
FAILED: Final = """
UPDATE test_logs SET state = ?, error = ?, attempts = attempts + 1, next_attempt_at = ?,
    updated_at = ?
WHERE result_id = ? AND execution_id = ?
"""


class DueLog(msgspec.Struct, kw_only=True):
    result_id: int
    execution_id: str
    attempts: int


def enqueue(tx: Tx, result_id: int, execution_ids: list[str]) -> None:
    now = utcnow()
    tx.executemany(INSERT, [(result_id, e, now, now) for e in execution_ids])


def claim_due(tx: Tx, *, lease_until: str, limit: int = 10) -> list[DueLog]:
    """Due rows, each moved to ``lease_until`` so that a crash mid-fetch just retries later."""
    due = rows_as(tx.execute(SELECT_DUE, [utcnow(), limit]), DueLog)
    now = utcnow()
    for row in due:
        tx.execute(CLAIM, [lease_until, now, row.result_id, row.execution_id])
    return due


def fetched(tx: Tx, row: DueLog, logs: str) -> None:
    tx.execute(FETCHED, [logs, utcnow(), row.result_id, row.execution_id])


def failed(tx: Tx, row: DueLog, *, error: str, retry_at: str | None) -> None:
    """Another try at ``retry_at``; None: given up (``dead``)."""
    state = "pending" if retry_at is not None else "dead"
    tx.execute(FAILED, [state, error, retry_at, utcnow(), row.result_id, row.execution_id])


def next_due(tx: Tx) -> str | None:
    row = tx.execute(
        "SELECT min(next_attempt_at) FROM test_logs WHERE state = 'pending'"
    ).fetchone()
    return row[0] if row else None
