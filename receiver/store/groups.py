"""Route groups: the last status each (route, group) spoke about, for routes with ``on_change``."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.clock import utcnow
from receiver.store.tx import POSTGRESQL, Tx

SELECT_STATUS: Final = "SELECT status FROM route_groups WHERE route = ? AND group_key = ?"
SELECT_PREVIOUS: Final = """
SELECT status, result_id FROM route_groups WHERE route = ? AND group_key = ?
"""
UPSERT_STATUS: Final = """
INSERT INTO route_groups (route, group_key, status, result_id, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (route, group_key) DO UPDATE SET
    status = excluded.status, result_id = excluded.result_id, updated_at = excluded.updated_at
"""


# Instances sharing a database take turns on one group (SQLite has one writer anyway).
LOCK_GROUP: Final = "SELECT pg_advisory_xact_lock(hashtextextended(? || ' ' || ?, 0))"


def swap_status(tx: Tx, *, route: str, group_key: str, status: str, result_id: int) -> str | None:
    """Record ``status`` as the group's latest and return the one it replaces (None: first)."""
    if tx.dialect == POSTGRESQL:
        tx.execute(LOCK_GROUP, [route, group_key])
    row = tx.execute(SELECT_STATUS, [route, group_key]).fetchone()
    tx.execute(UPSERT_STATUS, [route, group_key, status, result_id, utcnow()])
    return row[0] if row else None


class Previous(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    result_id: int | None


def swap(tx: Tx, *, route: str, group_key: str, status: str, result_id: int) -> Previous | None:
    """``swap_status``, also saying which result the group's previous status came from."""
    row = tx.execute(SELECT_PREVIOUS, [route, group_key]).fetchone()
    tx.execute(UPSERT_STATUS, [route, group_key, status, result_id, utcnow()])
    return Previous(status=row[0], result_id=row[1]) if row else None
