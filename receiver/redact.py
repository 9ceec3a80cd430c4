"""What may be shown of a secret or of a URL that can hold one: the only masking in receiver.

A secret is shown as ``set (N chars)``, never any part of it: even a prefix narrows a guess and
tells which key of several it is. A URL keeps everything but its password and the values of
query parameters that name a secret, so ``postgresql://user:pass@host/db`` is shown as
``postgresql://user:****@host/db``.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

# A key (config, log field, query parameter) whose name holds one of these holds a secret.
SECRET_WORDS: Final = ("secret", "token", "signature", "authorization", "api_key", "password")
# Query parameters are named more loosely (``key``, ``pass``, ``sig``): mask those too.
QUERY_SECRET_WORDS: Final = (*SECRET_WORDS, "key", "pass", "auth", "sig", "cred")
HIDDEN: Final = "****"
NOT_SET: Final = "(not set)"


def names_a_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def secret(value: object) -> str:
    """``set (N chars)`` or ``(not set)``: that a secret is there, and its length."""
    if value is None or value == "":
        return NOT_SET
    return f"set ({len(str(value))} chars)"


def url(value: str) -> str:
    """``value`` with a URL's password and secret query values masked; any other text as is."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return value
    try:
        netloc = urlsplit(value).netloc
    except ValueError:  # unparseable (a broken IPv6 host): show only its scheme
        return f"{scheme}://{HIDDEN}"
    userinfo, at, host = netloc.rpartition("@")
    if not (at and ":" in userinfo):
        # A password holding an unescaped "/" ends urlsplit's netloc early: look past it.
        userinfo, at, host = _loose_userinfo(rest)
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:{HIDDEN}@{host}{rest[len(userinfo) + 1 + len(host) :]}"
    return _mask_query(f"{scheme}://{rest}")


def _loose_userinfo(rest: str) -> tuple[str, str, str]:
    """(userinfo, "@", host) when ``rest`` reads as ``user:password@host``, else empty."""
    before_query = rest.split("?", 1)[0].split("#", 1)[0]
    end = before_query.rfind("@")
    if end < 0:
        end = rest.find("@")
    userinfo = rest[:end] if end >= 0 else ""
    if ":" not in userinfo or "/" in userinfo.split(":", 1)[0]:
        return "", "", ""
    host = rest[end + 1 :]
    for stop in "/?#":
        host = host.split(stop, 1)[0]
    return userinfo, "@", host


def _mask_query(value: str) -> str:
    head, mark, query = value.partition("?")
    if not mark:
        return value
    fragment = ""
    if "#" in query:
        query, fragment = query.split("#", 1)
        fragment = "#" + fragment
    pairs = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        hidden = eq and any(word in key.lower() for word in QUERY_SECRET_WORDS)
        pairs.append(f"{key}={HIDDEN}" if hidden else pair)
    return f"{head}?{'&'.join(pairs)}{fragment}"
