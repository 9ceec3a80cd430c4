"""Timestamps as stored and logged: ISO-8601 UTC text, readable in the CLI and ordered as
strings (``2026-11-30T13:50:24.740244Z``)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Final

TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> str:
    global _second  # a cache of one immutable tuple, swapped whole
    now = time.time()
    whole = int(now)
    cached = _second
    if cached[0] != whole:
        second = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _second = (whole, second)
    return f"{cached[1]}.{int((now - whole) * 1_000_000):06d}Z"


# The formatted second of the last timestamp: strftime per call was ~4 us, and a callback
# takes several (its rows, its log line).
_second: tuple[int, str] = (-1, "")


def parse(timestamp: str) -> dt.datetime:
    """A timestamp of ``utcnow``'s form, read back as an aware UTC datetime."""
    return dt.datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)


def utc_after(seconds: float) -> str:
    """A timestamp ``seconds`` from now, in the same form as ``utcnow``."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).strftime(TIMESTAMP_FORMAT)
