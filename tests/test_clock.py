"""Timestamps: one sortable UTC text form, right across the cached second's change."""

from __future__ import annotations

import datetime as dt
import time

from receiver import clock


def parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, clock.TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)


def test_utcnow_is_now_in_utc() -> None:
    before = dt.datetime.now(dt.UTC)
    stamped = parse(clock.utcnow())
    after = dt.datetime.now(dt.UTC)
    # The text keeps microseconds and drops nothing: it lies between the two readings.
    assert before - dt.timedelta(microseconds=1) <= stamped <= after


def test_timestamps_sort_as_text_across_seconds() -> None:
    stamps = []
    deadline = time.time() + 1.5  # long enough to cross at least one whole second
    while time.time() < deadline:
        stamps.append(clock.utcnow())
        time.sleep(0.01)
    assert stamps == sorted(stamps)
    assert len({stamp[:19] for stamp in stamps}) >= 2  # the cached second was replaced
    assert [parse(stamp) for stamp in stamps] == sorted(parse(stamp) for stamp in stamps)


def test_utc_after_is_that_far_ahead_in_the_same_form() -> None:
    ahead = parse(clock.utc_after(90))
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    assert abs(ahead - expected) < dt.timedelta(seconds=2)
    assert clock.utc_after(90) > clock.utcnow()


def test_parse_reads_utcnow_back() -> None:
    stamp = clock.utcnow()
    assert clock.parse(stamp) == parse(stamp)
    assert clock.parse(stamp).tzinfo is dt.UTC
