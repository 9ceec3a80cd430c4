"""How fast the delivery worker may send: all out, unless callbacks pour in.

A send costs about 3 ms of CPU, most of it under the GIL in Apprise and requests: ten times the
cost of storing a callback. While routed results pour in, each send takes CPU that ingestion
needs, so sends go one at a time, ``HEAVY_SEND_INTERVAL`` apart. "Pour in" means: more than
``HEAVY_PER_SECOND`` routed results a second that queued for the store (the ``QUEUED_BATCH``-th
result of a batch and later ones), which says the store is near its limit. A fast lone client,
each result its own batch, never slows the worker; nor does any realistic deploy day.

Like ``retry``, a pure decision: the caller passes the clock's readings.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

HEAVY_PER_SECOND: Final = 200.0
QUEUED_BATCH: Final = 4  # the 4th routed result of a batch, and later ones, waited for the store
WINDOW: Final = 0.5  # seconds over which the intake rate is counted
# Intake stays heavy this long after a window crossed the line: floods come in bursts (a CI
# fan-out, a provider retrying), and 32 sends started in a lull land on the next burst.
HEAVY_HOLD: Final = 3.0
HEAVY_SEND_INTERVAL: Final = 0.5  # seconds between send starts while intake is heavy


class IntakeRate:
    """Whether routed results pour in: a window of ``window`` seconds that counted
    ``HEAVY_PER_SECOND * window`` queued results makes intake heavy for ``hold`` seconds."""

    def __init__(self, window: float = WINDOW, hold: float = HEAVY_HOLD) -> None:
        self.window = window
        self.hold = hold
        self.started = -math.inf  # the current window, and the queued results it counted
        self.count = 0
        self.heavy_until = -math.inf
        self.batch = -1  # the store batch of the last result, and how many it has had
        self.in_batch = 0

    def note(self, now: float, batch: int) -> None:
        """One routed result, stored in the store's batch number ``batch``."""
        if batch != self.batch:
            self.batch, self.in_batch = batch, 0
        self.in_batch += 1
        if self.in_batch >= QUEUED_BATCH:
            self._count(now)

    def _count(self, now: float) -> None:
        if now - self.started >= self.window:
            self.started, self.count = now, 0
        self.count += 1
        if self.count >= HEAVY_PER_SECOND * self.window:
            self.heavy_until = now + self.hold

    def heavy(self, now: float) -> bool:
        return now < self.heavy_until


class Pace(msgspec.Struct, frozen=True):
    """How many sends may start now; when none, how long until one may (0: a send must end)."""

    starts: int
    wait: float = 0.0


def pace(*, heavy: bool, concurrency: int, in_flight: int, since_last_start: float) -> Pace:
    if not heavy:
        return Pace(starts=max(0, concurrency - in_flight))
    if in_flight >= 1:
        return Pace(starts=0)
    wait = HEAVY_SEND_INTERVAL - since_last_start
    if wait > 0:
        return Pace(starts=0, wait=wait)
    return Pace(starts=1)
