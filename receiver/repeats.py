"""repeat_after: a result that says again what its group said last, within the route's
``repeat_after`` seconds, updates living messages and notifies nothing else (Alertmanager's
repeat interval). The clock starts at the last result that notified, so a result that keeps
failing the same way is said again once every ``repeat_after``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import msgspec

from receiver import clock
from receiver.config import Route
from receiver.ledger import Repeat
from receiver.results import Result
from receiver.store import repeats
from receiver.store.repeats import Notified
from receiver.store.tx import Tx

FAILING: tuple[str, ...] = ("failed", "error", "timeout")


def failing_digest(result: Result) -> str:
    """The failing tests' names, as one short digest (order does not matter)."""
    names = {t.name for t in result.tests if t.status in FAILING}
    names |= {f.test or "(run)" for f in result.failures}
    return hashlib.sha256(msgspec.json.encode(sorted(names))).hexdigest()[:16]


def check(tx: Tx, route: Route, group: str, result: Result, result_id: int) -> Repeat:
    """Is ``result`` a repeat for ``route``'s ``group``? Remembers it when it notifies."""
    assert route.repeat_after is not None
    now = clock.utcnow()
    failing = failing_digest(result)
    last = repeats.last(tx, route.name, group)
    if last is not None and last.status == result.status and last.failing == failing:
        age = (clock.parse(now) - clock.parse(last.notified_at)) / dt.timedelta(seconds=1)
        if age < route.repeat_after:
            return Repeat(
                repeat=True,
                group=group,
                previous_result_id=last.result_id,
                reason=(
                    f"same status ({result.status}) and failing tests as result "
                    f"#{last.result_id} {age:.0f}s ago, within repeat_after "
                    f"{route.repeat_after:g}s: living messages updated, nothing else notified"
                ),
            )
    notified = Notified(status=result.status, failing=failing, result_id=result_id, notified_at=now)
    repeats.save(tx, route.name, group, notified)
    if last is None:
        reason = "first result of its group"
    elif last.status != result.status or last.failing != failing:
        reason = f"differs from result #{last.result_id}"
    else:
        reason = f"repeat_after ({route.repeat_after:g}s) has passed since result #{last.result_id}"
    previous = last.result_id if last else None
    return Repeat(repeat=False, group=group, previous_result_id=previous, reason=reason)
