"""The ledger: each result's routing decision, recorded in the result's own transaction.

One row per result with every route's decision as JSON: a result costs one more row, however
many routes there are. ``receiver explain`` reads it back; nothing is inferred after the fact.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from receiver.clock import utcnow
from receiver.store.tx import Tx


class Miss(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The first ``when`` key that did not hold, and what the result had there."""

    key: str
    wanted: Any = None
    seen: Any = None


class OnChange(msgspec.Struct, kw_only=True):
    """What ``on_change`` decided, and the group's previous result it compared against."""

    spoke: bool
    reason: str
    group: str
    previous_result_id: int | None = None
    previous_status: str | None = None


class Repeat(msgspec.Struct, kw_only=True):
    """What ``repeat_after`` decided: a repeat updates living messages and notifies no other."""

    repeat: bool
    reason: str
    group: str
    previous_result_id: int | None = None


class RouteDecision(msgspec.Struct, kw_only=True, omit_defaults=True):
    route: str
    matched: bool
    miss: Miss | None = None
    on_change: OnChange | None = None
    repeat: Repeat | None = None
    targets: list[str] = msgspec.field(default_factory=list)  # masked: what it asked for
    skipped: list[str] = msgspec.field(default_factory=list)  # masked, with why in ``note``
    note: str | None = None


INSERT: Final = """
INSERT INTO route_decisions (result_id, decisions, created_at) VALUES (?, ?, ?)
ON CONFLICT (result_id) DO NOTHING
"""
SELECT: Final = "SELECT decisions, created_at FROM route_decisions WHERE result_id = ?"


class Decisions(msgspec.Struct, kw_only=True):
    decided_at: str
    routes: list[RouteDecision]


def record(tx: Tx, result_id: int, decisions: list[RouteDecision]) -> None:
    tx.execute(INSERT, [result_id, msgspec.json.encode(decisions).decode(), utcnow()])


def of_result(tx: Tx, result_id: int) -> Decisions | None:
    row = tx.execute(SELECT, [result_id]).fetchone()
    if row is None:
        return None
    routes = msgspec.json.decode(row[0], type=list[RouteDecision])
    return Decisions(decided_at=row[1], routes=routes)
