"""Jobs: requests submitted to a provider (or made for a callback that named none).

For the polling providers the jobs table is the poller's queue: a job of a polling provider with
an external id and no result, in state submitted, pending or running, is asked about once its
``poll_after`` has passed.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from receiver.clock import utc_after, utcnow
from receiver.store.errors import NotFound
from receiver.store.tx import POSTGRESQL, SQLITE, Tx, marks, row_as, rows_as

CustomData = dict[str, Any]


class NewJob(msgspec.Struct, kw_only=True):
    provider: str
    state: str
    job_key: str | None = None
    external_id: str | None = None
    external_kind: str | None = None
    url: str | None = None
    request: str | None = None  # the request as sent, secrets masked, JSON
    custom_data: CustomData = msgspec.field(default_factory=dict)
    callback_url: str | None = None
    result_id: int | None = None  # a job made for a result (a bare callback) has it at once
    body: str | None = None  # POST /api/jobs' body as taken (secrets masked): resend, re-run
    rerun_of: int | None = None


class JobRow(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    job_key: str | None
    external_id: str | None
    external_kind: str | None
    state: str
    url: str | None
    request: str | None
    callback_url: str | None
    error: str | None
    result_id: int | None
    created_at: str
    updated_at: str
    custom_data: CustomData = msgspec.field(default_factory=dict)
    body: str | None = None
    rerun_of: int | None = None
    progress: float | None = None


class PollJob(msgspec.Struct, kw_only=True):
    """A job the poller asks about."""

    id: int
    provider: str
    external_kind: str
    external_id: str
    state: str
    created_at: str
    poll_attempts: int
    poll_errors: int
    custom_data: CustomData = msgspec.field(default_factory=dict)
    request: str | None = None  # as sent (secrets masked): what the provider's answers lack


class QueuedJob(msgspec.Struct, kw_only=True):
    """A job over its provider's rate limit, waiting to be sent."""

    id: int
    provider: str
    body: str | None
    job_key: str | None
    callback_url: str | None
    created_at: str
    custom_data: CustomData = msgspec.field(default_factory=dict)


INSERT: Final = """
INSERT INTO jobs (provider, job_key, external_id, external_kind, state, url, request, custom_data,
    callback_url, result_id, poll_after, created_at, updated_at, body, rerun_of)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id
"""
# SQLite: the id counted on (Tx.next_id), the row kept for the batch's one statement.
INSERT_WITH_ID: Final = """
INSERT INTO jobs (id, provider, job_key, external_id, external_kind, state, url, request,
    custom_data, callback_url, result_id, poll_after, created_at, updated_at, body, rerun_of)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
COLUMNS: Final = (
    "id, provider, job_key, external_id, external_kind, state, url, request, callback_url, "
    "custom_data, error, result_id, created_at, updated_at, body, rerun_of, progress"
)
JSON_COLUMNS: Final = ("custom_data",)
FIND_BY_KEY: Final = "SELECT id FROM jobs WHERE job_key = ?"
FIND_BY_EXTERNAL_ID: Final = "SELECT id FROM jobs WHERE provider = ? AND external_id = ?"
SET_RESULT: Final = "UPDATE jobs SET state = ?, result_id = ?, updated_at = ? WHERE id = ?"
# The provider's id arrives after the job was recorded; its state is left alone, as a fast
# callback may already have moved it on.
SET_SENT: Final = """
UPDATE jobs SET external_id = ?, external_kind = ?, poll_after = ?, updated_at = ?,
    state = CASE WHEN state = 'queued' THEN 'submitted' ELSE state END
WHERE id = ?
"""
SET_ERROR: Final = "UPDATE jobs SET state = 'error', error = ?, updated_at = ? WHERE id = ?"
SELECT_EXTERNAL_ID: Final = "SELECT external_id FROM jobs WHERE id = ?"
# A job before its result, as the partial index idx_jobs_open_poll (migration 0001) states it;
# SQLite uses a partial index only for a query that repeats its condition word for word.
SELECT_DUE: Final = """
SELECT id, provider, external_kind, external_id, state, custom_data, created_at, poll_attempts,
    poll_errors, request
FROM jobs
WHERE provider = ? AND (state = 'submitted' OR state = 'pending' OR state = 'running') AND result_id IS NULL AND external_id IS NOT NULL
    AND (poll_after IS NULL OR poll_after <= ?) AND external_kind IS NOT NULL
ORDER BY poll_after, id LIMIT ?
"""  # noqa: E501  (the index's condition, word for word)
ANY_DUE: Final = """
SELECT 1 FROM jobs
WHERE provider = ? AND (state = 'submitted' OR state = 'pending' OR state = 'running') AND result_id IS NULL AND external_id IS NOT NULL
    AND (poll_after IS NULL OR poll_after <= ?) AND external_kind IS NOT NULL
LIMIT 1
"""  # noqa: E501  (the index's condition, word for word)
# The due jobs, each moved on by a lease in the statement that picks it; other instances skip
# the rows being claimed (PostgreSQL).
CLAIM_DUE: Final = """
UPDATE jobs SET poll_after = ?
WHERE id IN (
    SELECT id FROM jobs
    WHERE provider = ? AND (state = 'submitted' OR state = 'pending' OR state = 'running') AND result_id IS NULL AND external_id IS NOT NULL
        AND (poll_after IS NULL OR poll_after <= ?) AND external_kind IS NOT NULL {skip}
    ORDER BY poll_after, id LIMIT ?{locked}
)
RETURNING id, provider, external_kind, external_id, state, custom_data, created_at, poll_attempts,
    poll_errors, request
"""  # noqa: E501  (the index's condition, word for word)
SKIP_LOCKED: Final = {SQLITE: "", POSTGRESQL: " FOR UPDATE SKIP LOCKED"}
SET_POLL_PROGRESS: Final = """
UPDATE jobs SET state = ?, poll_after = ?, poll_attempts = poll_attempts + 1, poll_errors = 0,
    error = NULL, updated_at = ?, progress = coalesce(?, progress)
WHERE id = ? AND state IN ('submitted', 'pending', 'running') AND result_id IS NULL
"""
SET_POLL_ERROR: Final = """
UPDATE jobs SET poll_after = ?, poll_attempts = poll_attempts + 1, poll_errors = poll_errors + 1,
    error = ?, updated_at = ?
WHERE id = ? AND result_id IS NULL
"""
SELECT_OPEN: Final = """
SELECT 1 FROM jobs WHERE id = ? AND state IN ('submitted', 'pending', 'running')
    AND result_id IS NULL
"""


# Jobs still waiting for a callback (a polled job, with an external_kind, is the poller's), oldest
# first, with the condition of the partial index idx_jobs_open_created (migration 0004) word for
# word.
SELECT_OVERDUE: Final = """
SELECT id, provider, external_id, state, custom_data, created_at
FROM jobs
WHERE provider = ? AND created_at <= ? AND result_id IS NULL AND (state = 'submitted' OR state = 'pending' OR state = 'running')
    AND external_kind IS NULL
ORDER BY created_at LIMIT ?
"""  # noqa: E501  (the index's condition, word for word)
SELECT_RESULT_ID: Final = "SELECT result_id FROM jobs WHERE id = ?"
SELECT_REQUEST: Final = "SELECT request FROM jobs WHERE id = ?"


def insert(tx: Tx, job: NewJob) -> int:
    now = utcnow()
    # A polled job is due at once; the others are never polled.
    poll_after = now if job.external_kind is not None else None
    fields = [
        job.provider,
        job.job_key,
        job.external_id,
        job.external_kind,
        job.state,
        job.url,
        job.request,
        msgspec.json.encode(job.custom_data).decode(),
        job.callback_url,
        job.result_id,
        poll_after,
        now,
        now,
        job.body,
        job.rerun_of,
    ]
    if tx.dialect == SQLITE:
        job_id = tx.next_id("jobs")
        tx.later(INSERT_WITH_ID, [[job_id, *fields]])
        return job_id
    return int(tx.execute(INSERT, fields).fetchone()[0])


def find_id(tx: Tx, *, job_key: str | None, provider: str, external_id: str | None) -> int | None:
    """The job a callback belongs to: by the key in its path, else by the provider's job id."""
    if job_key:
        row = tx.execute(FIND_BY_KEY, [job_key]).fetchone()
    elif external_id:
        row = tx.execute(FIND_BY_EXTERNAL_ID, [provider, external_id]).fetchone()
    else:
        return None
    return row[0] if row else None


def set_result(tx: Tx, job_id: int, *, result_id: int, status: str) -> None:
    tx.execute(SET_RESULT, [status, result_id, utcnow(), job_id])


def set_sent(tx: Tx, job_id: int, *, external_id: str, external_kind: str | None = None) -> None:
    """The provider took the job and named it; a polled job (``external_kind``) is due now."""
    now = utcnow()
    poll_after = now if external_kind is not None else None
    tx.execute(SET_SENT, [external_id, external_kind, poll_after, now, job_id])


def set_error(tx: Tx, job_id: int, error: str) -> None:
    tx.execute(SET_ERROR, [error, utcnow(), job_id])


def external_id_of(tx: Tx, job_id: int) -> str | None:
    row = tx.execute(SELECT_EXTERNAL_ID, [job_id]).fetchone()
    return row[0] if row else None


def get(tx: Tx, job_id: int) -> JobRow:
    """The job; NotFound when there is none."""
    cursor = tx.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", [job_id])
    job = row_as(cursor, JobRow, json=JSON_COLUMNS)
    if job is None:
        raise NotFound(f"No job {job_id}")
    return job


def newest(tx: Tx, *, limit: int, before: int | None = None) -> list[JobRow]:
    """Newest first; ``before`` is the cursor (the last id of the previous page)."""
    where, params = ("WHERE id < ?", [before]) if before is not None else ("", [])
    sql = f"SELECT {COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT ?"
    return rows_as(tx.execute(sql, [*params, limit]), JobRow, json=JSON_COLUMNS)


def due_for_polling(tx: Tx, provider: str, *, limit: int = 100) -> list[PollJob]:
    cursor = tx.execute(SELECT_DUE, [provider, utcnow(), limit])
    return rows_as(cursor, PollJob, json=JSON_COLUMNS)


def any_due_for_polling(tx: Tx, provider: str) -> bool:
    return tx.execute(ANY_DUE, [provider, utcnow()]).fetchone() is not None


def claim_for_polling(
    tx: Tx, provider: str, *, lease_seconds: float, skip: list[int], limit: int = 100
) -> list[PollJob]:
    """Due jobs of ``provider``, not those in ``skip``, each held for ``lease_seconds``."""
    skipping = f"AND id NOT IN ({marks(skip)})" if skip else ""
    sql = CLAIM_DUE.format(skip=skipping, locked=SKIP_LOCKED[tx.dialect])
    cursor = tx.execute(sql, [utc_after(lease_seconds), provider, utcnow(), *skip, limit])
    return sorted(rows_as(cursor, PollJob, json=JSON_COLUMNS), key=lambda job: job.id)


def record_poll(
    tx: Tx, job_id: int, *, state: str, poll_after: str, progress: float | None = None
) -> bool:
    """The job is still open at the provider; False when it was finished meanwhile."""
    values = [state, poll_after, utcnow(), progress, job_id]
    return tx.execute(SET_POLL_PROGRESS, values).rowcount == 1


# Jobs over their provider's rate limit, oldest first, by the partial index idx_jobs_queued.
SELECT_QUEUED: Final = """
SELECT id, provider, body, job_key, callback_url, created_at, custom_data
FROM jobs WHERE provider = ? AND state = 'queued' AND (poll_after IS NULL OR poll_after <= ?)
ORDER BY id LIMIT ?
"""
# A queued job taken by one sender for a while (another instance on the same database skips
# it meanwhile; if this one dies mid-send, the job is due again when the lease ends).
CLAIM_QUEUED: Final = """
UPDATE jobs SET poll_after = ?
WHERE id = ? AND state = 'queued' AND (poll_after IS NULL OR poll_after <= ?)
"""
HAS_QUEUED: Final = "SELECT 1 FROM jobs WHERE provider = ? AND state = 'queued' LIMIT 1"


def queued(tx: Tx, provider: str, *, limit: int = 100) -> list[QueuedJob]:
    """The queued jobs of ``provider`` no sender holds, oldest first."""
    cursor = tx.execute(SELECT_QUEUED, [provider, utcnow(), limit])
    return rows_as(cursor, QueuedJob, json=JSON_COLUMNS)


def claim_queued(tx: Tx, job_id: int, *, lease_seconds: float) -> bool:
    """Hold queued job ``job_id`` for ``lease_seconds`` to send it; False when another sender
    holds it or it is no longer queued."""
    now = utcnow()
    return int(tx.execute(CLAIM_QUEUED, [utc_after(lease_seconds), job_id, now]).rowcount) == 1


def has_queued(tx: Tx, provider: str) -> bool:
    """Jobs wait for this provider's limit: a new one goes behind them."""
    return tx.execute(HAS_QUEUED, [provider]).fetchone() is not None


def record_poll_error(tx: Tx, job_id: int, *, error: str, poll_after: str) -> None:
    tx.execute(SET_POLL_ERROR, [poll_after, error, utcnow(), job_id])


def is_open(tx: Tx, job_id: int) -> bool:
    """No result yet: the one check that keeps a polled result from being stored twice."""
    return tx.execute(SELECT_OPEN, [job_id]).fetchone() is not None


class OpenJob(msgspec.Struct, kw_only=True):
    """A job still waiting for its result."""

    id: int
    provider: str
    external_id: str | None
    state: str
    created_at: str
    custom_data: CustomData = msgspec.field(default_factory=dict)


def overdue(tx: Tx, provider: str, *, created_before: str, limit: int = 100) -> list[OpenJob]:
    """``provider``'s jobs made before ``created_before`` still waiting for a callback."""
    cursor = tx.execute(SELECT_OVERDUE, [provider, created_before, limit])
    return rows_as(cursor, OpenJob, json=JSON_COLUMNS)


def result_id_of(tx: Tx, job_id: int) -> int | None:
    """The result the job points at now (None: none yet)."""
    row = tx.execute(SELECT_RESULT_ID, [job_id]).fetchone()
    return row[0] if row else None


def request_of(tx: Tx, job_id: int) -> str | None:
    """The request the job was submitted with (JSON, secrets masked), if receiver sent it."""
    row = tx.execute(SELECT_REQUEST, [job_id]).fetchone()
    return row[0] if row else None


SET_QUEUED: Final = """
UPDATE jobs SET state = 'queued', poll_after = NULL, updated_at = ? WHERE id = ?
"""
SET_PART: Final = "UPDATE jobs SET request = ?, body = ?, updated_at = ? WHERE id = ?"


def set_queued(tx: Tx, job_id: int) -> None:
    """The provider said "not now" (429): the job waits in the queue again, due to any
    sender (its claim let go)."""
    tx.execute(SET_QUEUED, [utcnow(), job_id])


def set_part(tx: Tx, job_id: int, *, request: str, body: str) -> None:
    """A batch's first job becomes its first run's: its own request, for a re-run of it alone."""
    tx.execute(SET_PART, [request, body, utcnow(), job_id])
