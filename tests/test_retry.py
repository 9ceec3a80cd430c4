"""The retry decision, pinned by a table: every branch of ``decide`` is one row."""

from __future__ import annotations

import pytest

from receiver.notify.retry import Decision, Outcome, backoff_delay, decide, parse_retry_after

BACKOFF = [10.0, 30.0, 120.0]
OK = Outcome(ok=True)


def failed(code: int | None = None, retry_after: float | None = None, **kw: object) -> Outcome:
    return Outcome(ok=False, error="boom", status_code=code, retry_after=retry_after, **kw)  # type: ignore[arg-type]


CASES = [
    # (outcome, attempts, max_attempts, draw, expected)
    (OK, 1, 3, 0.5, Decision(state="sent")),
    (OK, 3, 3, 0.5, Decision(state="sent")),
    (failed(500), 1, 3, 0.5, Decision(state="pending", delay=10.0, reason="boom")),
    (failed(500), 2, 3, 0.5, Decision(state="pending", delay=30.0, reason="boom")),
    (failed(None), 1, 3, 0.5, Decision(state="pending", delay=10.0, reason="boom")),
    (failed(500), 3, 3, 0.5, Decision(state="dead", reason="gave up after 3 attempts: boom")),
    (failed(None), 5, 3, 0.5, Decision(state="dead", reason="gave up after 5 attempts: boom")),
    # jitter: draw 0 is -20 %, draw ~1 is +20 %
    (failed(502), 1, 3, 0.0, Decision(state="pending", delay=8.0, reason="boom")),
    (failed(503), 1, 3, 1.0, Decision(state="pending", delay=12.0, reason="boom")),
    # Retry-After wins on 429 and 503, not elsewhere
    (failed(429, 7), 1, 3, 0.5, Decision(state="pending", delay=7.0, reason="boom")),
    (failed(503, 90), 2, 3, 0.9, Decision(state="pending", delay=90.0, reason="boom")),
    (failed(500, 90), 1, 3, 0.5, Decision(state="pending", delay=10.0, reason="boom")),
    (failed(429, None), 1, 3, 0.5, Decision(state="pending", delay=10.0, reason="boom")),
    (failed(429, 10**9), 1, 3, 0.5, Decision(state="pending", delay=86400.0, reason="boom")),
    # 408 and 429 are transient 4xx; the rest of 4xx is refused for good, at once
    (failed(408), 1, 3, 0.5, Decision(state="pending", delay=10.0, reason="boom")),
    (failed(404), 1, 3, 0.5, Decision(state="dead", reason="permanent refusal: boom")),
    (failed(401), 1, 3, 0.5, Decision(state="dead", reason="permanent refusal: boom")),
    (failed(422), 1, 8, 0.5, Decision(state="dead", reason="permanent refusal: boom")),
    (
        failed(None, permanent=True),
        1,
        8,
        0.5,
        Decision(state="dead", reason="permanent refusal: boom"),
    ),
    # a 429 on the last attempt is still the end
    (failed(429, 5), 3, 3, 0.5, Decision(state="dead", reason="gave up after 3 attempts: boom")),
]


@pytest.mark.parametrize(("outcome", "attempts", "max_attempts", "draw", "expected"), CASES)
def test_decide(
    outcome: Outcome, attempts: int, max_attempts: int, draw: float, expected: Decision
) -> None:
    decision = decide(
        outcome, attempts=attempts, backoff=BACKOFF, max_attempts=max_attempts, draw=draw
    )
    assert decision.state == expected.state
    assert decision.reason == expected.reason
    if expected.delay is None:
        assert decision.delay is None
    else:
        assert decision.delay == pytest.approx(expected.delay)


@pytest.mark.parametrize(
    ("attempts", "expected"), [(1, 10.0), (2, 30.0), (3, 120.0), (4, 120.0), (50, 120.0)]
)
def test_the_last_backoff_repeats(attempts: int, expected: float) -> None:
    assert backoff_delay(BACKOFF, attempts, 0.5) == pytest.approx(expected)


def test_an_error_without_words_still_says_something() -> None:
    decision = decide(
        Outcome(ok=False, status_code=404), attempts=1, backoff=BACKOFF, max_attempts=3, draw=0.5
    )
    assert decision.reason == "permanent refusal: failed"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (" 5 ", 5.0), (None, None), ("", None), ("soon", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date_in_the_past_is_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
