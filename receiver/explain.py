"""``receiver explain RESULT_ID`` and ``GET /api/results/{id}/explain``: why a result did or did
not notify, from what was recorded when it happened (nothing is inferred after the fact).

For every route: whether it matched and, if not, the first ``when`` key that did not hold with
the value seen; the ``on_change`` and ``repeat_after`` decisions with the group's previous
result they compared against; then the deliveries made, each attempt with its time, the
target's answer and the error.
"""

from __future__ import annotations

import msgspec

from receiver import views
from receiver.store import attempts, deliveries, ledger, results
from receiver.store.attempts import Attempt
from receiver.store.ledger import RouteDecision
from receiver.store.tx import Tx


class AttemptView(msgspec.Struct, kw_only=True):
    attempt: int
    started_at: str
    ended_at: str
    state: str
    answer: str | None
    error: str | None


class DeliveryExplained(msgspec.Struct, kw_only=True):
    id: int
    route: str
    target: str  # masked
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    log: list[AttemptView]


class Explanation(msgspec.Struct, kw_only=True):
    result: views.ResultSummary
    verdict: str  # one sentence
    decided_at: str | None
    routes: list[RouteDecision]
    deliveries: list[DeliveryExplained]


def explain(tx: Tx, result_id: int) -> Explanation:
    """Raises NotFound for an unknown result."""
    result = views.summary(results.get(tx, result_id))
    decided = ledger.of_result(tx, result_id)
    by_delivery: dict[int, list[Attempt]] = {}
    for attempt in attempts.of_result(tx, result_id):
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    made = [
        DeliveryExplained(
            id=d.id,
            route=d.route,
            target=d.target,
            state=d.state,
            attempts=d.attempts,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            log=[_attempt(a) for a in by_delivery.get(d.id, [])],
        )
        for d in deliveries.of_result(tx, result_id)
    ]
    routes = decided.routes if decided else []
    return Explanation(
        result=result,
        verdict=verdict(decided is not None, routes, made),
        decided_at=decided.decided_at if decided else None,
        routes=routes,
        deliveries=made,
    )


def _attempt(attempt: Attempt) -> AttemptView:
    return msgspec.convert(attempt, AttemptView, from_attributes=True)


def verdict(recorded: bool, routes: list[RouteDecision], made: list[DeliveryExplained]) -> str:
    if not recorded:
        return (
            "No routing decision was recorded: no route was configured when it was stored, or it "
            "was stored before receiver kept a ledger"
        )
    if made:
        sent = sum(d.state == "sent" for d in made)
        dead = sum(d.state == "dead" for d in made)
        pending = len(made) - sent - dead
        parts = [f"{sent} sent"]
        parts += [f"{dead} dead"] if dead else []
        parts += [f"{pending} pending"] if pending else []
        return f"Notified {len(made)} target(s): {', '.join(parts)}"
    matched = [r for r in routes if r.matched]
    if not matched:
        return f"Silent: none of the {len(routes)} route(s) matched"
    held = [r.route for r in matched if r.on_change is not None and not r.on_change.spoke]
    repeats = [r.route for r in matched if r.repeat is not None and r.repeat.repeat]
    reasons = []
    if held:
        reasons.append(f"on_change held it ({', '.join(held)})")
    if repeats:
        reasons.append(f"a repeat within repeat_after ({', '.join(repeats)})")
    return "Silent: " + ("; ".join(reasons) or "the matching routes asked for no target")


def lines(explained: Explanation) -> list[str]:
    """The explanation for people, as ``receiver explain`` prints it."""
    r = explained.result
    where = ", ".join(f"{k} {v}" for k, v in (("branch", r.branch), ("PR", r.pr_number)) if v)
    out = [
        f"result {r.id}: {r.status} ({r.provider}, {r.event}{', ' + where if where else ''}), "
        f"stored {r.created_at}",
        explained.verdict,
        "",
        "routes:" if explained.routes else "routes: (none recorded)",
    ]
    for decision in explained.routes:
        out += ["  " + line for line in route_lines(decision)]
    out.append("deliveries:" if explained.deliveries else "deliveries: none")
    for d in explained.deliveries:
        error = f", last error: {d.last_error}" if d.last_error else ""
        head = f"  #{d.id} {d.target} (route {d.route}): {d.state}, {d.attempts} attempt(s)"
        out.append(head + error)
        for a in d.log:
            said = f" {a.answer}" if a.answer else ""
            oops = f": {a.error}" if a.error else ""
            out.append(f"    attempt {a.attempt} at {a.started_at} -> {a.state}{said}{oops}")
    return out


def route_lines(decision: RouteDecision) -> list[str]:
    if not decision.matched:
        miss = decision.miss
        if miss is None:
            return [f"{decision.route}: did not match"]
        return [
            f"{decision.route}: did not match: when.{miss.key} wants "
            f"{_json(miss.wanted)}, the result has {_json(miss.seen)}"
        ]
    out = [f"{decision.route}: matched"]
    if (change := decision.on_change) is not None:
        verb = "spoke" if change.spoke else "held it"
        previous = (
            f" (previous result #{change.previous_result_id}: {change.previous_status})"
            if change.previous_result_id is not None
            else ""
        )
        out.append(f"  on_change {verb}: {change.reason}{previous}; group {change.group}")
    if (repeat := decision.repeat) is not None:
        verb = "repeat" if repeat.repeat else "not a repeat"
        out.append(f"  repeat_after: {verb}: {repeat.reason}")
    if decision.targets:
        out.append(f"  -> {', '.join(decision.targets)}")
    if decision.skipped:
        out.append(f"  not notified: {', '.join(decision.skipped)}")
    if decision.note:
        out.append(f"  note: {decision.note}")
    return out


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()
