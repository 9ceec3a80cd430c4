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
from receiver.store.tx import POSTGRESQL, SQLITE, Tx, marks, rows_as

STATES: Final = ("pending", "sent", "dead")
HOUR: Final = len("2026-12-07T13")  # a timestamp's hour, as delivery_hours keys it


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


class TargetStats(msgspec.Struct, kw_only=True):
    """One target (as shown, masked) over a window: outcomes counted by state now."""

    target: str
    sent: int
    dead: int
    pending: int
    last_error: str | None = None
    last_error_at: str | None = None


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
# Several instances claim from one outbox: rows another instance is claiming are skipped.
SKIP_LOCKED: Final = {SQLITE: "", POSTGRESQL: " FOR UPDATE SKIP LOCKED"}
# Workers of every instance wake when rows are queued (sent at COMMIT: only what committed).
OUTBOX_CHANNEL: Final = "receiver_outbox"
NEXT_DUE_FOR_TARGET: Final = """
SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND target = ?
"""
# Still due when claimed: a row another instance claimed meanwhile has moved on.
CLAIM: Final = """
UPDATE deliveries
SET lease = ?, next_attempt_at = ?, attempts = attempts + 1, updated_at = ?
WHERE state = 'pending' AND next_attempt_at <= ? AND id IN ({ids})
RETURNING id, result_id, route, target, target_display, attempts, lease
"""
# Only the holder of the lease may record an outcome: a redelivery or an expired lease wins.
FINISH: Final = """
UPDATE deliveries
SET state = ?, last_error = ?, next_attempt_at = ?, lease = NULL, updated_at = ?,
    sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
WHERE id = ? AND lease = ? AND state = 'pending'
RETURNING target_display
"""
# One more attempt ended sent or dead, in its target's hour (delivery_hours, migration 0004).
COUNT_HOUR: Final = """
INSERT INTO delivery_hours (target, hour, sent, dead) VALUES (?, ?, ?, ?)
ON CONFLICT (target, hour) DO UPDATE SET
    sent = delivery_hours.sent + excluded.sent, dead = delivery_hours.dead + excluded.dead
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
TARGET_STATS: Final = """
SELECT target, sum(sent) AS sent, sum(dead) AS dead, 0 AS pending
FROM delivery_hours WHERE hour >= ? GROUP BY target ORDER BY target
"""
# Pending ones of one target, through the partial index of due ones (measured: given only
# state = 'pending', SQLite's planner, once ANALYZE has run, scans the whole outbox).
PENDING_OF_TARGET: Final = """
SELECT target_display, count(*) FROM deliveries WHERE state = 'pending' AND target = ?
GROUP BY target_display
"""
# One seek on the partial index idx_deliveries_target_error (migration 0004).
LAST_ERROR: Final = """
SELECT last_error, updated_at FROM deliveries
WHERE target_display = ? AND last_error IS NOT NULL AND updated_at >= ?
ORDER BY updated_at DESC LIMIT 1
"""
# The targets with dead deliveries, one seek each on idx_deliveries_target_dead (migration 0004).
DEAD_TARGETS: Final = """
WITH RECURSIVE dead(target) AS (
    SELECT min(target_display) FROM deliveries WHERE state = 'dead'
    UNION ALL
    SELECT (SELECT min(target_display) FROM deliveries
            WHERE state = 'dead' AND target_display > dead.target)
    FROM dead WHERE dead.target IS NOT NULL
)
SELECT target FROM dead WHERE target IS NOT NULL
"""
COUNT_DEAD: Final = "SELECT count(*) FROM deliveries WHERE state = 'dead' AND target_display = ?"
REDELIVER_DEAD: Final = """
UPDATE deliveries
SET state = 'pending', attempts = 0, next_attempt_at = ?, lease = NULL, updated_at = ?
WHERE state = 'dead' AND target_display = ?
"""


def insert_many(tx: Tx, deliveries: list[NewDelivery]) -> None:
    """Queue deliveries in one statement; a result has at most one per target (a repeat is
    ignored)."""
    if not deliveries:
        return
    now = utcnow()
    rows = [(d.result_id, d.route, d.target, d.target_display, now, now, now) for d in deliveries]
    tx.later(INSERT, rows)  # with the batch's results (SQLite): the worker reads after COMMIT
    if tx.dialect == POSTGRESQL:
        tx.execute("SELECT pg_notify(?, '')", [OUTBOX_CHANNEL])


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
            due_sql = DUE_FOR_TARGET + SKIP_LOCKED[tx.dialect]
            rows = tx.execute(due_sql, [target, now, room]).fetchall()
            due += [(row[1], row[0]) for row in rows]
    chosen = [delivery_id for _, delivery_id in sorted(due)[:limit]]
    if not chosen:
        return []
    cursor = tx.execute(
        CLAIM.format(ids=marks(chosen)), [lease, utc_after(lease_seconds), now, now, *chosen]
    )
    claimed = rows_as(cursor, ClaimedDelivery)
    return sorted(claimed, key=lambda c: c.id)


def finish(tx: Tx, outcome: DeliveryOutcome) -> bool:
    """Record an attempt's outcome; False when the lease was lost (the row was not changed)."""
    now = utcnow()
    row = tx.execute(
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
    ).fetchone()
    if row is None:
        return False
    if outcome.state in ("sent", "dead"):
        sent, dead = (1, 0) if outcome.state == "sent" else (0, 1)
        tx.execute(COUNT_HOUR, [row[0], now[:HOUR], sent, dead])
    return True


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


def target_stats(tx: Tx, since: str) -> list[TargetStats]:
    """Per target (masked): the attempts that ended sent or dead since ``since`` (by the hour),
    the deliveries pending now, and the newest error since then."""
    stats = {
        item.target: item for item in rows_as(tx.execute(TARGET_STATS, [since[:HOUR]]), TargetStats)
    }
    for url in pending_targets(tx):
        for target, count in tx.execute(PENDING_OF_TARGET, [url]).fetchall():
            item = stats.setdefault(target, TargetStats(target=target, sent=0, dead=0, pending=0))
            item.pending += count
    for item in stats.values():
        row = tx.execute(LAST_ERROR, [item.target, since]).fetchone()
        if row is not None:
            item.last_error, item.last_error_at = row[0], row[1]
    return sorted(stats.values(), key=lambda item: item.target)


def dead_by_target(tx: Tx) -> dict[str, int]:
    """How many deliveries are dead, per target (masked)."""
    targets = [row[0] for row in tx.execute(DEAD_TARGETS).fetchall()]
    return {target: tx.execute(COUNT_DEAD, [target]).fetchone()[0] for target in targets}


def redeliver_dead(tx: Tx, target_display: str) -> int:
    """Every dead delivery to the target shown as ``target_display`` back to pending, due now,
    with a fresh attempt budget; how many."""
    now = utcnow()
    return tx.execute(REDELIVER_DEAD, [now, now, target_display]).rowcount


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
