"""repeat_after: per (route, group), the last result that notified and what it said."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.store.tx import Tx, row_as


class Notified(msgspec.Struct, kw_only=True):
    status: str
    failing: str  # a digest of the failing tests' names
    result_id: int
    notified_at: str


SELECT: Final = """
SELECT status, failing, result_id, notified_at FROM repeat_groups WHERE route = ? AND group_key = ?
"""
UPSERT: Final = """
INSERT INTO repeat_groups (route, group_key, status, failing, result_id, notified_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (route, group_key) DO UPDATE SET
    status = excluded.status, failing = excluded.failing, result_id = excluded.result_id,
    notified_at = excluded.notified_at
"""


def last(tx: Tx, route: str, group_key: str) -> Notified | None:
    return row_as(tx.execute(SELECT, [route, group_key]), Notified)


def save(tx: Tx, route: str, group_key: str, notified: Notified) -> None:
    tx.execute(
        UPSERT,
        [
            route,
            group_key,
            notified.status,
            notified.failing,
            notified.result_id,
            notified.notified_at,
        ],
    )
