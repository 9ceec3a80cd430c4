"""How fast the delivery worker may send: all out, unless callbacks pour in.

A send costs about 3 ms of CPU, most of it under the GIL in Apprise and requests: ten times the
cost of storing a callback. While writes pour into the store, each send takes CPU that ingestion
needs, so sends start one at a time, ``HEAVY_SEND_INTERVAL`` apart (a send that hangs does not
hold the next one back). "Pour in" means: more than ``HEAVY_PER_SECOND`` writes a second that
queued for the store (the store counts them: the 4th write of a batch and later ones), which says
the store is near its limit. A fast lone client, each write its own batch, never slows the
worker; nor does any realistic deploy day.

Like ``retry``, a pure decision: the caller passes the clock's readings.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

HEAVY_PER_SECOND: Final = 200.0
WINDOW: Final = 0.5  # seconds over which the intake rate is counted
# Intake stays heavy this long after a window crossed the line: floods come in bursts (a CI
# fan-out, a provider retrying), and 32 sends started in a lull land on the next burst.
HEAVY_HOLD: Final = 3.0
HEAVY_SEND_INTERVAL: Final = 0.5  # seconds between send starts while intake is heavy


class IntakeRate:
    """Whether writes pour in: a window of ``window`` seconds that counted
    ``HEAVY_PER_SECOND * window`` queued writes makes intake heavy for ``hold`` seconds."""

    def __init__(self, window: float = WINDOW, hold: float = HEAVY_HOLD) -> None:
        self.window = window
        self.hold = hold
        self.started = -math.inf  # the current window, and the queued writes it counted
        self.count = 0
        self.heavy_until = -math.inf

    def add(self, now: float, queued: int) -> None:
        """``queued`` more writes waited for the store, seen at ``now``."""
        if queued <= 0:
            return
        if now - self.started >= self.window:
            self.started, self.count = now, 0
        self.count += queued
        if self.count >= HEAVY_PER_SECOND * self.window:
            self.heavy_until = now + self.hold

    def heavy(self, now: float) -> bool:
        return now < self.heavy_until


class Pace(msgspec.Struct, frozen=True):
    """How many sends may start now; when none, how long until one may (0: a send must end)."""

    starts: int
    wait: float = 0.0


def pace(*, heavy: bool, concurrency: int, in_flight: int, since_last_start: float) -> Pace:
    free = max(0, concurrency - in_flight)
    if not heavy or free == 0:
        return Pace(starts=free)
    wait = HEAVY_SEND_INTERVAL - since_last_start
    if wait > 0:
        return Pace(starts=0, wait=wait)
    return Pace(starts=1)
