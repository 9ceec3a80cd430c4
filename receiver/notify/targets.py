"""The one interface every target kind implements, and the choice of kind by URL."""

from __future__ import annotations

from typing import Protocol

from receiver.notify.retry import Outcome
from receiver.views import ResultDetail


class Sender(Protocol):
    async def send(self, target: str, result: ResultDetail) -> Outcome:
        """Send ``result`` to ``target`` once; say what happened, never raise for the target's
        own failures."""
        ...

    def serial_key(self, target: str, result: ResultDetail) -> str | None:
        """Sends that share a key run one after the other (one PR comment must not race
        itself); None when the target can run alongside anything."""
        ...

    async def close(self) -> None: ...
