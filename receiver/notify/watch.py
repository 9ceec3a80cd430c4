"""receiver watching its own targets: one alert when a target keeps failing, one when it
delivers again, never one per failure.

The turn is decided in the transaction that records a delivery's outcome
(receiver.store.health), so it happens once however many sends run at once; the alert itself
is sent after that commit, to the targets of ``[watch] notify``, best effort: an alert that
cannot be sent is logged (it is about a target failing, and may well fail the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from receiver.logs import get_logger
from receiver.notify.retry import Outcome
from receiver.routing import Target
from receiver.store.health import Turn

log = get_logger("receiver.watch")

# (target, title, body) -> the outcome; the worker gives one per target kind
SendText = Callable[[Target, str, str], Awaitable[Outcome]]
MAX_ERROR_CHARS: Final = 300


def alert_words(turn: Turn, display: str, routes: list[str]) -> tuple[str, str]:
    """(title, body) of the alert, in plain words: the target masked, never its URL."""
    where = f"{display} (route {', '.join(routes)})" if routes else display
    if turn.kind == "failing":
        error = (turn.last_error or "no reason given")[:MAX_ERROR_CHARS]
        return (
            f"⚠️ receiver: deliveries to {display} keep failing",
            f"Deliveries to {where} failed {turn.failures} times in a row. Last error: {error}. "
            "`receiver deliveries --failed` lists them; `receiver redeliver ID` sends one again.",
        )
    return (
        f"✅ receiver: {display} takes deliveries again",
        f"Deliveries to {where} go through again, after {turn.failures} failed in a row.",
    )


class Watch:
    """Sends the alerts of ``[watch]`` to its targets."""

    def __init__(self, targets: list[Target], send: SendText) -> None:
        self.targets = targets
        self.send = send
        self.tasks: set[asyncio.Task[None]] = set()

    def alert(self, turn: Turn, display: str, routes: list[str]) -> None:
        """Send the alert in the background (the delivery that turned it is done)."""
        title, body = alert_words(turn, display, routes)
        task = asyncio.create_task(self._send_all(turn, display, title, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send_all(self, turn: Turn, display: str, title: str, body: str) -> None:
        for target in self.targets:
            try:
                outcome = await self.send(target, title, body)
            except Exception as exc:  # an alert must never take the worker down
                outcome = Outcome(ok=False, error=repr(exc))
            fields = {"about": display, "kind": turn.kind, "alert_target": target.display}
            if outcome.ok:
                log.info("watch.alert_sent", **fields)
            else:
                log.error("watch.alert_failed", **fields, error=outcome.error)

    async def drain(self, timeout: float) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
