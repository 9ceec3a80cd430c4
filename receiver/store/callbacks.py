"""Callbacks: every verified inbound delivery, verbatim (raw body, the headers we keep, digest)."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.store.errors import NotFound
from receiver.store.tx import Tx


class CallbackRecord(msgspec.Struct, kw_only=True):
    """One inbound delivery as it is kept: ``digest`` is the SHA-256 of ``body`` (32 bytes)."""

    provider: str
    job_key: str | None
    digest: bytes
    body: bytes
    headers: dict[str, str]
    received_at: str


class StoredCallback(msgspec.Struct, kw_only=True):
    """What a repeat of a stored body is answered with."""

    id: int
    outcome: str
    error: str | None
    result_id: int | None
    job_id: int | None
    status: str | None


# A repeat is answered like the first delivery, its result's status included (None once purged).
FIND: Final = """
SELECT c.id, c.outcome, c.error, c.result_id, c.job_id, r.status
FROM callbacks c LEFT JOIN results r ON r.id = c.result_id
WHERE c.digest = ?
"""
INSERT: Final = """
INSERT INTO callbacks (provider, job_key, job_id, result_id, digest, body, headers, outcome, error,
    received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id
"""
SELECT_BODY: Final = "SELECT body, purged_at FROM callbacks WHERE id = ?"
COUNT_BY_OUTCOME: Final = "SELECT outcome, count(*) FROM callbacks GROUP BY outcome"


def find(tx: Tx, digest: bytes) -> StoredCallback | None:
    row = tx.execute(FIND, [digest]).fetchone()
    if row is None:
        return None
    return StoredCallback(
        id=row[0], outcome=row[1], error=row[2], result_id=row[3], job_id=row[4], status=row[5]
    )


def insert(
    tx: Tx,
    record: CallbackRecord,
    *,
    job_id: int | None,
    result_id: int | None,
    outcome: str,
    error: str | None,
) -> int:
    row = tx.execute(
        INSERT,
        [
            record.provider,
            record.job_key,
            job_id,
            result_id,
            record.digest,
            record.body,
            msgspec.json.encode(record.headers).decode(),
            outcome,
            error,
            record.received_at,
        ],
    ).fetchone()
    callback_id: int = row[0]
    return callback_id


def body_of(tx: Tx, callback_id: int) -> bytes | None:
    """The raw body as received; None once retention purged it."""
    row = tx.execute(SELECT_BODY, [callback_id]).fetchone()
    if row is None:
        raise NotFound(f"No callback {callback_id}")
    return None if row[1] is not None else bytes(row[0])


def count_by_outcome(tx: Tx) -> dict[str, int]:
    return {row[0]: row[1] for row in tx.execute(COUNT_BY_OUTCOME).fetchall()}
