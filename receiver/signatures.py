"""HMAC-SHA256 signatures as QualityMax sends them: ``sha256=<hex>`` over the raw body."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def sign(body: bytes, secret: str) -> str:
    """The header value for ``body`` signed with ``secret``."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when ``header`` is a well-formed signature of ``body`` by any of ``secrets``.

    Every secret is tried, whatever the earlier ones gave, and each comparison is constant-time,
    so neither the timing nor the answer tells which part was wrong.
    """
    if not header or not _well_formed(header):
        return False
    given = header[len(PREFIX) :].lower().encode()
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def _well_formed(header: str) -> bool:
    digest = header[len(PREFIX) :]
    return header.startswith(PREFIX) and len(digest) == 64 and _HEX_DIGITS.issuperset(digest)
