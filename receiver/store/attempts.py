"""Delivery attempts: each one's time, the target's answer and the error, written by the worker
in the same transaction as the outcome it records."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.store.tx import Tx, rows_as


class Attempt(msgspec.Struct, kw_only=True):
    delivery_id: int
    lease: str
    result_id: int
    attempt: int
    started_at: str
    ended_at: str
    state: str  # what the attempt led to: sent, pending (retry), dead
    answer: str | None = None  # what the target answered: "HTTP 404", "slack: invalid_auth"
    error: str | None = None


INSERT: Final = """
INSERT INTO delivery_attempts (delivery_id, lease, result_id, attempt, started_at, ended_at,
    state, answer, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (delivery_id, lease) DO NOTHING
"""
OF_RESULT: Final = """
SELECT delivery_id, lease, result_id, attempt, started_at, ended_at, state, answer, error
FROM delivery_attempts WHERE result_id = ? ORDER BY delivery_id, started_at
"""


def insert(tx: Tx, attempt: Attempt) -> None:
    tx.execute(
        INSERT,
        [
            attempt.delivery_id,
            attempt.lease,
            attempt.result_id,
            attempt.attempt,
            attempt.started_at,
            attempt.ended_at,
            attempt.state,
            attempt.answer,
            attempt.error,
        ],
    )


def of_result(tx: Tx, result_id: int) -> list[Attempt]:
    return rows_as(tx.execute(OF_RESULT, [result_id]), Attempt)
