"""The one rate limiter: at most ``limit`` requests in any ``window`` seconds, decided before
sending (clients) or on arrival (the simulators, answering 429).

A sliding window, because that is how the providers count: a leaky bucket such as aiolimiter
lets up to twice the limit through within one window (a full bucket, then its refill), which a
provider counting the last minute answers with 429s.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class SlidingWindow:
    """A client counts a request from when its answer arrived (the server saw it no later than
    that, so the server's window, however it measures it, never holds more than ``limit``);
    ``hold`` obeys a provider's rate-limit headers on top."""

    def __init__(self, limit: int, window: float, *, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._done: deque[float] = deque()
        self._in_flight = 0
        self._held_until = 0.0
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Seconds to wait before one more request may go."""
        now = self.clock()
        while self._done and now - self._done[0] >= self.window:
            self._done.popleft()
        wait = max(0.0, self._held_until - now)
        taken = len(self._done) + self._in_flight
        if taken >= self.limit:
            if self._done and taken - self.limit < len(self._done):
                oldest = self._done[taken - self.limit]
                wait = max(wait, oldest + self.window - now)
            else:  # every slot is taken by a request still in flight: look again shortly
                wait = max(wait, self.window / self.limit)
        return wait

    async def acquire(self, sleep: Sleep) -> None:
        async with self._lock:
            while (wait := self.delay()) > 0:
                await sleep(wait)
            self._in_flight += 1

    def release(self) -> None:
        self._in_flight -= 1
        self._done.append(self.clock())

    def admit(self) -> float | None:
        """On arrival (a server's view): None and counted when the request fits, else the
        seconds until it would."""
        wait = self.delay()
        if wait > 0:
            return wait
        self._done.append(self.clock())
        return None

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the provider said its window resets then)."""
        self._held_until = max(self._held_until, self.clock() + seconds)
