"""Why a result did or did not notify, decided once, while it is routed.

``first_miss`` names the first ``when`` key of a route that did not hold, with the value the
result had there, in the order ``routing.matches`` checks them. The decisions are collected by a
``Ledger`` while the router routes, and written with the result (receiver.store.ledger).
"""

from __future__ import annotations

from typing import Any, Final

from receiver.config import When
from receiver.results import Result
from receiver.store import ledger as stored
from receiver.store.ledger import Miss, OnChange, Repeat, RouteDecision
from receiver.store.tx import Tx

__all__ = ["Ledger", "Miss", "OnChange", "Repeat", "RouteDecision", "first_miss"]

MAX_SEEN_CHARS: Final = 200


def first_miss(when: When, result: Result, labels: frozenset[str] = frozenset()) -> Miss:
    """The first key of ``when`` that ``result``, whose tests carry the triage ``labels``,
    fails (call it only when ``matches`` said no)."""
    # The very checks matches() makes; imported here, as routing imports this module.
    from receiver.routing import _branch, _one_of, _same, _severe

    for key, wanted, seen in (
        ("provider", when.provider, result.provider),
        ("event", when.event, result.event),
        ("status", when.status, result.status),
    ):
        if not _one_of(wanted, seen):
            return Miss(key=key, wanted=wanted, seen=seen)
    if not _branch(when.branch, result.branch):
        return Miss(key="branch", wanted=when.branch, seen=result.branch)
    for name in when.has:
        if name not in result.custom_data:
            return Miss(key="has", wanted=name, seen=sorted(result.custom_data)[:20])
    for name, value in when.custom_data.items():
        actual = result.custom_data.get(name)
        if not _same(actual, value):
            return Miss(key=f"custom_data.{name}", wanted=value, seen=_shown(actual))
    if not _one_of(when.kind, result.kind):
        return Miss(key="kind", wanted=when.kind, seen=result.kind)
    if not _severe(when.min_severity, result):
        worst = result.security.worst if result.security is not None else None
        return Miss(key="min_severity", wanted=when.min_severity, seen=worst)
    if when.new_failures and "new" not in labels:
        return Miss(key="new_failures", wanted=True, seen=sorted(labels))
    if when.labels and labels.isdisjoint(when.labels):
        return Miss(key="labels", wanted=when.labels, seen=sorted(labels))
    # A key added to `when` after this was written: named as a whole.
    return Miss(key="when", wanted="(a key this version of explain does not itemise)")


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_SEEN_CHARS:
        return value[: MAX_SEEN_CHARS - 1] + "…"
    if isinstance(value, dict | list):
        return "(an object or list)"
    return value


class Ledger:
    """The decisions of one result's routing, in route order."""

    def __init__(self) -> None:
        self.decisions: list[RouteDecision] = []

    def add(self, decision: RouteDecision) -> RouteDecision:
        self.decisions.append(decision)
        return decision

    def write(self, tx: Tx, result_id: int) -> None:
        if self.decisions:
            stored.record(tx, result_id, self.decisions)
