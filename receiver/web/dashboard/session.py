"""Dashboard sessions: a signed, HttpOnly, SameSite cookie given for the API token.

The cookie holds only when it expires and an HMAC of that, keyed by ``RECEIVER_SESSION_SECRET``
or, when it is unset, by a key derived from the API token: either way every instance and
every restart accepts it, and changing the API token ends every session. Nothing is kept on
the server, so signing out removes the cookie from the browser that signs out.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final

from receiver.config import Config

COOKIE: Final = "receiver_session"
MAX_AGE: Final = 14 * 86400
VERSION: Final = "v1"


def session_key(config: Config) -> bytes | None:
    """The key sessions are signed with; None while the API token is unset (no dashboard)."""
    token = config.api_token
    if not token:
        return None
    root = (config.session_secret or token).encode()
    # The token is in the message too: a new token ends the sessions of the old one.
    return hmac.new(root, b"receiver-session\x00" + token.encode(), hashlib.sha256).digest()


def sign_session(key: bytes, *, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + MAX_AGE)
    return f"{VERSION}.{expires}.{_mac(key, expires)}"


def valid_session(key: bytes | None, value: str | None, *, now: float | None = None) -> bool:
    """Whether ``value`` is a cookie this key signed, not yet expired."""
    if key is None or not value:
        return False
    version, _, rest = value.partition(".")
    expires, _, mac = rest.partition(".")
    if version != VERSION or not expires.isdigit():
        return False
    if not hmac.compare_digest(mac, _mac(key, int(expires))):
        return False
    return int(expires) > (time.time() if now is None else now)


def token_matches(config: Config, given: str) -> bool:
    """The API token, compared in constant time."""
    expected = config.api_token
    return bool(expected) and hmac.compare_digest(given.encode(), (expected or "").encode())


def csrf_secret(key: bytes) -> str:
    """The secret Litestar's CSRF tokens are signed with, from the session key."""
    return hmac.new(key, b"receiver-csrf", hashlib.sha256).hexdigest()


def _mac(key: bytes, expires: int) -> str:
    return hmac.new(key, f"{VERSION}.{expires}".encode(), hashlib.sha256).hexdigest()
