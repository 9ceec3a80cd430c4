"""Callbacks: every verified inbound delivery, verbatim (raw body, the headers we keep), and
their digests, which decide what is a repeat and outlive the callbacks (see retention)."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.store.errors import NotFound
from receiver.store.tx import SQLITE, Tx


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


# A digest row's id is its callback's. PostgreSQL takes it from the callbacks' sequence; SQLite
# gives the digest row max(id) + 1 itself (the writer holds the write lock), and the callback is
# written with it.
RESERVE_ID: Final = "SELECT nextval(pg_get_serial_sequence('callbacks', 'id'))"
# The unique digest decides: a body seen before inserts nothing (on PostgreSQL, also when another
# instance's transaction holding it commits meanwhile).
CLAIM_DIGEST: Final = """
INSERT INTO callback_digests (id, digest, received_at) VALUES (?, ?, ?)
ON CONFLICT (digest) DO NOTHING
RETURNING id
"""
CLAIM_DIGEST_SQLITE: Final = """
INSERT INTO callback_digests (digest, received_at) VALUES (?, ?)
ON CONFLICT (digest) DO NOTHING
RETURNING id
"""
# A repeat is answered like the first delivery, its result's status included (None once purged).
FIND: Final = """
SELECT d.id, c.outcome, c.error, c.result_id, c.job_id, r.status
FROM callback_digests d
LEFT JOIN callbacks c ON c.id = d.id
LEFT JOIN results r ON r.id = c.result_id
WHERE d.digest = ?
"""
INSERT: Final = """
INSERT INTO callbacks (id, provider, job_key, job_id, result_id, body, headers, outcome, error,
    received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
SELECT_BODY: Final = "SELECT body FROM callbacks WHERE id = ?"
COUNT_BY_OUTCOME: Final = "SELECT outcome, count(*) FROM callbacks GROUP BY outcome"


def claim(tx: Tx, record: CallbackRecord) -> int | None:
    """The new callback's id, its digest recorded; None when the body was seen before."""
    if tx.dialect == SQLITE:
        row = tx.execute(CLAIM_DIGEST_SQLITE, [record.digest, record.received_at]).fetchone()
        return None if row is None else int(row[0])
    callback_id = int(tx.execute(RESERVE_ID).fetchone()[0])
    row = tx.execute(CLAIM_DIGEST, [callback_id, record.digest, record.received_at]).fetchone()
    return None if row is None else callback_id


def find(tx: Tx, digest: bytes) -> StoredCallback:
    """The first delivery of a body seen before (outcome ``accepted`` once it was purged)."""
    row = tx.execute(FIND, [digest]).fetchone()
    if row is None:
        raise NotFound("No callback with that digest")
    return StoredCallback(
        id=row[0],
        outcome=row[1] or "accepted",
        error=row[2],
        result_id=row[3],
        job_id=row[4],
        status=row[5],
    )


def insert(
    tx: Tx,
    callback_id: int,
    record: CallbackRecord,
    *,
    job_id: int | None,
    result_id: int | None,
    outcome: str,
    error: str | None,
) -> None:
    """Keep the callback under the id ``claim`` gave it."""
    tx.later(
        INSERT,
        [
            (
                callback_id,
                record.provider,
                record.job_key,
                job_id,
                result_id,
                record.body,
                msgspec.json.encode(record.headers).decode(),
                outcome,
                error,
                record.received_at,
            )
        ],
    )


def body_of(tx: Tx, callback_id: int) -> bytes:
    """The raw body as received."""
    row = tx.execute(SELECT_BODY, [callback_id]).fetchone()
    if row is None:
        raise NotFound(f"No callback {callback_id} (retention purges them after keep_days)")
    return bytes(row[0])


def count_by_outcome(tx: Tx) -> dict[str, int]:
    return {row[0]: row[1] for row in tx.execute(COUNT_BY_OUTCOME).fetchall()}
