"""``Retry-After``, the one parser: seconds, or an HTTP date turned into seconds from now."""

from __future__ import annotations

import email.utils
import time


def parse(value: str | None) -> float | None:
    """Seconds to wait, never negative; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
