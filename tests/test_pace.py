"""Pacing as a pure decision: when intake is heavy, and how many sends may start."""

from __future__ import annotations

import math

import pytest

from receiver.notify.pace import (
    HEAVY_HOLD,
    HEAVY_PER_SECOND,
    HEAVY_SEND_INTERVAL,
    IntakeRate,
    Pace,
    pace,
)


def noted(times: list[float], per_batch: int = 8) -> IntakeRate:
    """Writes at ``times``, ``per_batch`` of them to each store batch: the store counts the 4th
    of a batch and later ones as queued, when the batch commits (its last write's time)."""
    rate = IntakeRate(window=0.5)
    for start in range(0, len(times), per_batch):
        batch = times[start : start + per_batch]
        rate.add(batch[-1], max(0, len(batch) - 3))
    return rate


def test_a_quiet_intake_is_not_heavy() -> None:
    rate = IntakeRate(window=0.5)
    assert rate.count == 0 and not rate.heavy(100.0)


def test_a_flood_is_heavy_within_its_first_window() -> None:
    count = int(HEAVY_PER_SECOND)  # enough in a fifth of a second to cross the line
    rate = noted([10.0 + i * 0.001 for i in range(count)], per_batch=count)
    assert rate.heavy(10.0 + count * 0.001)


def test_a_lone_client_however_fast_is_never_heavy() -> None:
    rate = noted([i / 5000 for i in range(5000)], per_batch=1)  # 5,000 a second, one per batch
    assert not rate.heavy(1.0) and rate.count == 0


def test_only_results_that_queued_count() -> None:
    # Batches of 8: the first three of each did not wait for the store, the other five did.
    rate = noted([i / 1000 for i in range(400)], per_batch=8)  # 50 batches within one window
    assert rate.count == 50 * 5


def test_heaviness_carries_over_a_window_boundary() -> None:
    # 400/s for 0.6 s in batches of 40: the new window has barely started, the one before
    # made it heavy.
    rate = noted([i / 400 for i in range(240)], per_batch=40)
    assert rate.count < HEAVY_PER_SECOND * 0.5
    assert rate.heavy(0.61)


def test_a_flood_stays_heavy_for_the_hold_then_is_over() -> None:
    rate = noted([i / 1000 for i in range(1000)])  # 1,000 a second until t = 1 s
    assert rate.heavy(1.0)
    assert rate.heavy(1.0 + HEAVY_HOLD - 0.1), "a lull inside the hold is still heavy"
    assert not rate.heavy(1.0 + HEAVY_HOLD + 0.1)


def test_a_trickle_is_never_heavy() -> None:
    rate = noted([i * 0.1 for i in range(100)])  # 10 a second
    assert not any(rate.heavy(t / 10) for t in range(101))


@pytest.mark.parametrize(
    ("heavy", "in_flight", "since", "expected"),
    [
        (False, 0, 0.0, Pace(starts=32)),
        (False, 30, 0.0, Pace(starts=2)),
        (False, 32, 0.0, Pace(starts=0)),
        (True, 1, math.inf, Pace(starts=1)),  # a send in flight (even hanging) holds none back
        (True, 32, math.inf, Pace(starts=0)),
        (True, 0, 0.2, Pace(starts=0, wait=HEAVY_SEND_INTERVAL - 0.2)),
        (True, 0, HEAVY_SEND_INTERVAL, Pace(starts=1)),
        (True, 0, math.inf, Pace(starts=1)),
    ],
)
def test_pace(heavy: bool, in_flight: int, since: float, expected: Pace) -> None:
    got = pace(heavy=heavy, concurrency=32, in_flight=in_flight, since_last_start=since)
    assert got.starts == expected.starts
    assert got.wait == pytest.approx(expected.wait)
