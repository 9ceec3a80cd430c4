"""Retry as a pure decision: an attempt's outcome in; "sent", "again in N s" or "dead" out.

Like procrastinate's ``retry.py``: no clock and no randomness inside; the caller passes the jitter
draw, so a table of cases can pin every branch.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from typing import Final, Literal

import msgspec

# Jitter spreads retries of many deliveries that failed together (one target down) by ±20 %.
JITTER: Final = 0.2
# A Retry-After longer than this is a target asking us to go away; we still come back daily.
MAX_RETRY_AFTER: Final = 24 * 3600.0
RETRY_AFTER_STATUSES: Final = (429, 503)
TRANSIENT_4XX: Final = (408, 429)


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one send attempt observed. ``status_code`` is None when no HTTP status is known."""

    ok: bool
    error: str | None = None
    status_code: int | None = None
    retry_after: float | None = None
    permanent: bool = False  # a refusal that no retry can fix (e.g. a missing custom_data key)
    answer: str | None = None  # what the target answered, for the attempts' log (explain)


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    state: Literal["sent", "pending", "dead"]
    delay: float | None = None  # seconds until the next attempt, for "pending"
    reason: str | None = None


def is_permanent(outcome: Outcome) -> bool:
    code = outcome.status_code
    refused = code is not None and 400 <= code < 500 and code not in TRANSIENT_4XX
    return outcome.permanent or refused


def backoff_delay(backoff: Sequence[float], attempts: int, draw: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``backoff[attempts - 1]``, the last one repeating,
    moved by up to ±JITTER according to ``draw`` in [0, 1)."""
    base = backoff[min(max(attempts, 1), len(backoff)) - 1]
    return max(0.0, base * (1 + JITTER * (2 * draw - 1)))


def decide(
    outcome: Outcome,
    *,
    attempts: int,
    backoff: Sequence[float],
    max_attempts: int,
    draw: float,
) -> Decision:
    """The next state of a delivery after its ``attempts``-th attempt ended with ``outcome``."""
    if outcome.ok:
        return Decision(state="sent")
    error = outcome.error or "failed"
    if is_permanent(outcome):
        return Decision(state="dead", reason=f"permanent refusal: {error}")
    if attempts >= max_attempts:
        return Decision(state="dead", reason=f"gave up after {attempts} attempts: {error}")
    delay = backoff_delay(backoff, attempts, draw)
    if outcome.status_code in RETRY_AFTER_STATUSES and outcome.retry_after is not None:
        delay = min(max(outcome.retry_after, 0.0), MAX_RETRY_AFTER)
    return Decision(state="pending", delay=delay, reason=error)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds; an HTTP date is turned into seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
