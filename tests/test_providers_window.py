"""The one rate limiter: a sliding window, decided before sending, on a fake clock."""

from __future__ import annotations

import asyncio

from receiver.providers.window import SlidingWindow
from tests.sims import FakeTime


def test_window_lets_limit_through_then_waits_for_the_oldest() -> None:
    time = FakeTime()
    window = SlidingWindow(3, 10, clock=time.clock)

    async def go() -> None:
        for _ in range(3):
            await window.acquire(time.sleep)
            time.now += 1
            window.release()
        await window.acquire(time.sleep)

    asyncio.run(go())
    # Three answers arrived at 1001, 1002, 1003; the fourth may go once the first is 10 s old.
    assert time.sleeps == [8.0]


def test_window_counts_requests_in_flight() -> None:
    time = FakeTime()
    window = SlidingWindow(2, 10, clock=time.clock)

    async def go() -> None:
        await window.acquire(time.sleep)
        await window.acquire(time.sleep)

    asyncio.run(go())
    assert window.delay() == 5.0  # both slots held by requests without an answer yet


def test_hold_obeys_the_providers_reset() -> None:
    time = FakeTime()
    window = SlidingWindow(10, 1, clock=time.clock)
    window.hold(2.5)
    assert window.delay() == 2.5


def test_a_server_admits_up_to_the_limit_then_says_how_long_to_wait() -> None:
    time = FakeTime()
    window = SlidingWindow(2, 10, clock=time.clock)
    assert [window.admit(), window.admit()] == [None, None]
    time.now += 4
    assert window.admit() == 6.0
