"""[watch]: failed deliveries in a row per target, and whether its alert went out.

``observe`` runs in the transaction that records an attempt's outcome, so two attempts never
both decide to alert: one alert when failures reach the threshold, one when it delivers again.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from receiver.clock import utcnow
from receiver.store.tx import Tx


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """A target's health changed: ``failing`` (alert now) or ``recovered``."""

    kind: Literal["failing", "recovered"]
    target: str
    failures: int
    last_error: str | None


SELECT: Final = "SELECT failures, alerted, last_error FROM target_health WHERE target = ?"
UPSERT: Final = """
INSERT INTO target_health (target, failures, alerted, last_error, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (target) DO UPDATE SET
    failures = excluded.failures, alerted = excluded.alerted, last_error = excluded.last_error,
    updated_at = excluded.updated_at
"""


def observe(
    tx: Tx, target: str, *, ok: bool, error: str | None, after_failures: int
) -> Turn | None:
    """Count one attempt's outcome for ``target``; the turn it makes, if any."""
    row = tx.execute(SELECT, [target]).fetchone()
    failures, alerted, last_error = row if row else (0, 0, None)
    turn = None
    if ok:
        if alerted:
            turn = Turn(kind="recovered", target=target, failures=failures, last_error=last_error)
        if row is not None and (failures or alerted):
            tx.execute(UPSERT, [target, 0, 0, None, utcnow()])
        return turn
    failures += 1
    if not alerted and failures >= after_failures:
        alerted = 1
        turn = Turn(kind="failing", target=target, failures=failures, last_error=error)
    tx.execute(UPSERT, [target, failures, alerted, error, utcnow()])
    return turn
