"""How the dashboard writes values: statuses as a word, a symbol and a colour class (never the
colour alone), durations, times, and links only where they are http(s) (partner text may be
hostile; Jinja escapes every value, these decide what becomes a link)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final
from urllib.parse import quote

import msgspec

from receiver import clock, redact
from receiver.notify.escape import link
from receiver.notify.message import duration  # the words of the notifications

SYMBOLS: Final = {
    "passed": "✓",
    "failed": "✗",
    "error": "!",
    "timeout": "⏱",
    "canceled": "∅",
    "pending": "…",
    "running": "…",
    "submitted": "…",
    "queued": "…",
    "sent": "✓",
    "dead": "✗",
}
HEX_SHA: Final = re.compile(r"[0-9a-fA-F]{7,64}")
REPOSITORY: Final = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def symbol(status: str) -> str:
    return SYMBOLS.get(status, "•")


def tone(status: str) -> str:
    """The CSS class of a status: its colour goes with its word and symbol."""
    if status in ("passed", "sent"):
        return "ok"
    if status in ("failed", "dead"):
        return "bad"
    if status in ("error", "timeout"):
        return "warn"
    return "idle"


def ago(timestamp: str | None, now: dt.datetime | None = None) -> str:
    """``3 min ago``; the timestamp itself goes in the element's title."""
    if not timestamp:
        return "–"
    try:
        then = clock.parse(timestamp)
    except ValueError:
        return timestamp
    seconds = ((now or dt.datetime.now(dt.UTC)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"  # pragma: no cover


def short_time(timestamp: str | None) -> str:
    """``2026-12-07 13:50:24`` (UTC)."""
    return (timestamp or "–")[:19].replace("T", " ")


def safe_link(url: object) -> str | None:
    """The URL when it is http(s), else None (then no link is made)."""
    return link(url)


def github_web(api_url: str) -> str:
    """GitHub's web address for its API's: github.com, or an Enterprise host."""
    base = api_url.rstrip("/")
    if base == "https://api.github.com":
        return "https://github.com"
    return base.removesuffix("/api/v3")


def pr_link(web: str, repository: str | None, pr_number: int | None) -> str | None:
    if pr_number is None or not repository or not REPOSITORY.fullmatch(repository):
        return None
    return f"{web}/{repository}/pull/{pr_number}"


def commit_link(web: str, repository: str | None, sha: str | None) -> str | None:
    if not sha or not repository or not HEX_SHA.fullmatch(sha):
        return None
    if not REPOSITORY.fullmatch(repository):
        return None
    return f"{web}/{repository}/commit/{sha}"


def short_sha(sha: str | None) -> str:
    return (sha or "")[:7]


def masked(value: Any) -> Any:
    """``value`` (decoded JSON) with every secret it could hold hidden: the values of keys that
    name a secret as ``set (N chars)``, passwords and secret query values in URLs as ``****``."""
    if isinstance(value, dict):
        return {
            key: redact.secret(item)
            if redact.names_a_secret(str(key)) and not isinstance(item, dict | list)
            else masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, str):
        return redact.url(value)
    return value


def pretty(value: Any) -> str:
    """Indented JSON, secrets hidden (see ``masked``)."""
    return msgspec.json.format(msgspec.json.encode(masked(value)), indent=2).decode()


def pretty_bytes(body: bytes) -> str:
    """A raw body as indented JSON, secrets hidden; as text when it is not JSON."""
    try:
        return pretty(msgspec.json.decode(body))
    except (msgspec.DecodeError, RecursionError):
        return redact.url(body.decode("utf-8", "replace"))


def query(**params: object) -> str:
    """``?a=1&b=2`` of the params that are set."""
    pairs = [f"{k}={quote(str(v), safe='')}" for k, v in params.items() if v not in (None, "")]
    return "?" + "&".join(pairs) if pairs else ""


FILTERS: Final = {
    "symbol": symbol,
    "tone": tone,
    "duration": duration,
    "ago": ago,
    "short_time": short_time,
    "safe_link": safe_link,
    "short_sha": short_sha,
    "pretty": pretty,
}
