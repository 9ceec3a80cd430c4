"""Deliveries: the outbox. One row per (result, target), written in the result's transaction.

The worker claims a row by moving ``next_attempt_at`` forward by a lease in the statement that
picks it, so a worker killed mid-send just lets the lease expire. Due rows are found target by
target (few targets, many rows), so one target's backlog never hides another's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from receiver.clock import utc_after, utcnow
from receiver.store.errors import NotFound
from receiver.store.tx import Tx, marks, rows_as

STATES: Final = ("pending", "sent", "dead")


class NewDelivery(msgspec.Struct, kw_only=True):
    result_id: int
    route: str
    target: str  # the full URL: it may hold a secret, so it never leaves the store but to send
    target_display: str  # masked


class DeliveryRow(msgspec.Struct, kw_only=True):
    """A delivery as the API and CLI show it: the target masked, never the full URL."""

    id: int
    result_id: int
    route: str
    target: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    sent_at: str | None
    created_at: str
    updated_at: str


class DeliveryFilter(msgspec.Struct, kw_only=True):
    state: str | None = None
    failed: bool = False  # dead, or pending after at least one failed attempt
    limit: int = 50
    before: int | None = None  # the cursor: the last id of the previous page


class ClaimedDelivery(msgspec.Struct, kw_only=True):
    """A delivery the worker holds until ``lease`` expires: it carries the full target URL."""

    id: int
    result_id: int
    route: str
    target: str
    target_display: str
    attempts: int
    lease: str


class DeliveryOutcome(msgspec.Struct, kw_only=True):
    """What one attempt decided: ``sent``, ``pending`` again at ``next_attempt_at``, or ``dead``."""

    id: int
    lease: str
    state: str
    last_error: str | None = None
    next_attempt_at: str | None = None


INSERT: Final = """
INSERT INTO deliveries (result_id, route, target, target_display, state, attempts,
    next_attempt_at, created_at, updated_at)
VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)
ON CONFLICT (result_id, target) DO NOTHING
"""
# The targets with pending deliveries, one index seek each (a loose index scan): few targets,
# however many rows.
PENDING_TARGETS: Final = """
WITH RECURSIVE pending(target) AS (
    SELECT min(target) FROM deliveries WHERE state = 'pending'
    UNION ALL
    SELECT (SELECT min(target) FROM deliveries WHERE state = 'pending' AND target > pending.target)
    FROM pending WHERE pending.target IS NOT NULL
)
SELECT target FROM pending WHERE target IS NOT NULL
"""
DUE_FOR_TARGET: Final = """
SELECT id, next_attempt_at FROM deliveries
WHERE state = 'pending' AND target = ? AND next_attempt_at <= ?
ORDER BY next_attempt_at, id LIMIT ?
"""
NEXT_DUE_FOR_TARGET: Final = """
SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND target = ?
"""
CLAIM: Final = """
UPDATE deliveries
SET lease = ?, next_attempt_at = ?, attempts = attempts + 1, updated_at = ?
WHERE state = 'pending' AND id IN ({ids})
RETURNING id, result_id, route, target, target_display, attempts, lease
"""
# Only the holder of the lease may record an outcome: a redelivery or an expired lease wins.
FINISH: Final = """
UPDATE deliveries
SET state = ?, last_error = ?, next_attempt_at = ?, lease = NULL, updated_at = ?,
    sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
WHERE id = ? AND lease = ? AND state = 'pending'
"""
REDELIVER: Final = """
UPDATE deliveries
SET state = 'pending', attempts = 0, next_attempt_at = ?, lease = NULL, updated_at = ?
WHERE id = ?
"""
COLUMNS: Final = (
    "id, result_id, route, target_display AS target, state, attempts, last_error, "
    "next_attempt_at, sent_at, created_at, updated_at"
)
COUNT_BY_STATE: Final = "SELECT state, count(*) FROM deliveries GROUP BY state"
OLDEST_PENDING: Final = """
SELECT route, target, min(created_at) FROM deliveries WHERE state = 'pending' GROUP BY route, target
"""


def insert_many(tx: Tx, deliveries: list[NewDelivery]) -> None:
    """Queue deliveries in one statement; a result has at most one per target (a repeat is
    ignored)."""
    if not deliveries:
        return
    now = utcnow()
    rows = [(d.result_id, d.route, d.target, d.target_display, now, now, now) for d in deliveries]
    tx.executemany(INSERT, rows)


def pending_targets(tx: Tx) -> list[str]:
    return [row[0] for row in tx.execute(PENDING_TARGETS).fetchall()]


def claim(
    tx: Tx,
    *,
    limit: int,
    lease: str,
    lease_seconds: float,
    per_target: int,
    busy: Mapping[str, int],
) -> list[ClaimedDelivery]:
    """Take up to ``limit`` due deliveries for ``lease_seconds``, oldest due first, at most
    ``per_target`` in flight per target counting the ``busy`` ones; attempts count here."""
    now = utcnow()
    due: list[tuple[str, int]] = []
    for target in pending_targets(tx):
        room = min(limit, per_target - busy.get(target, 0))
        if room > 0:
            rows = tx.execute(DUE_FOR_TARGET, [target, now, room]).fetchall()
            due += [(row[1], row[0]) for row in rows]
    chosen = [delivery_id for _, delivery_id in sorted(due)[:limit]]
    if not chosen:
        return []
    cursor = tx.execute(
        CLAIM.format(ids=marks(chosen)), [lease, utc_after(lease_seconds), now, *chosen]
    )
    claimed = rows_as(cursor, ClaimedDelivery)
    return sorted(claimed, key=lambda c: c.id)


def finish(tx: Tx, outcome: DeliveryOutcome) -> bool:
    """Record an attempt's outcome; False when the lease was lost (the row was not changed)."""
    now = utcnow()
    cursor = tx.execute(
        FINISH,
        [
            outcome.state,
            outcome.last_error,
            outcome.next_attempt_at,
            now,
            outcome.state,
            now,
            outcome.id,
            outcome.lease,
        ],
    )
    return cursor.rowcount == 1


def next_due(tx: Tx) -> str | None:
    """When the earliest pending delivery is due (or its lease expires); None when none wait."""
    times = [tx.execute(NEXT_DUE_FOR_TARGET, [t]).fetchone()[0] for t in pending_targets(tx)]
    return min((t for t in times if t is not None), default=None)


def redeliver(tx: Tx, delivery_id: int) -> DeliveryRow:
    """Back to ``pending``, due now, with a fresh attempt budget."""
    now = utcnow()
    if tx.execute(REDELIVER, [now, now, delivery_id]).rowcount == 0:
        raise NotFound(f"No delivery {delivery_id}: `receiver deliveries` lists them")
    return get(tx, delivery_id)


def get(tx: Tx, delivery_id: int) -> DeliveryRow:
    rows = rows_as(
        tx.execute(f"SELECT {COLUMNS} FROM deliveries WHERE id = ?", [delivery_id]), DeliveryRow
    )
    if not rows:
        raise NotFound(f"No delivery {delivery_id}: `receiver deliveries` lists them")
    return rows[0]


def newest(tx: Tx, where: DeliveryFilter) -> list[DeliveryRow]:
    """Up to ``where.limit`` deliveries, newest first (keyset paging on the id)."""
    clauses: list[str] = []
    params: list[object] = []
    if where.state:
        clauses.append("state = ?")
        params.append(where.state)
    if where.failed:
        clauses.append("(state = 'dead' OR (state = 'pending' AND last_error IS NOT NULL))")
    if where.before is not None:
        clauses.append("id < ?")
        params.append(where.before)
    sql = f"SELECT {COLUMNS} FROM deliveries"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY id DESC LIMIT ?"
    return rows_as(tx.execute(sql, [*params, where.limit]), DeliveryRow)


def of_result(tx: Tx, result_id: int) -> list[DeliveryRow]:
    sql = f"SELECT {COLUMNS} FROM deliveries WHERE result_id = ? ORDER BY id"
    return rows_as(tx.execute(sql, [result_id]), DeliveryRow)


def count_by_state(tx: Tx) -> dict[str, int]:
    return {row[0]: row[1] for row in tx.execute(COUNT_BY_STATE).fetchall()}


def oldest_pending(tx: Tx) -> dict[tuple[str, str], str]:
    """When the oldest pending delivery of each (route, target URL) was made."""
    return {(row[0], row[1]): row[2] for row in tx.execute(OLDEST_PENDING).fetchall()}


REFRESH_SENT: Final = """
UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, lease = NULL,
    updated_at = ?
WHERE result_id = ? AND target = ? AND state = 'sent'
"""


def refresh_sent(tx: Tx, result_id: int, target: str) -> int:
    """Send a result again to a target it reached (a living one, rewritten in place) because
    the result gained something, such as its failed tests' logs; how many were put back."""
    now = utcnow()
    return int(tx.execute(REFRESH_SENT, [now, now, result_id, target]).rowcount)
