"""A Slack Web API stand-in: ``chat.postMessage``, ``chat.update`` and ``chat.delete`` as Slack
documents them, kept in memory, for the demo, the tests and ``bench/slack_latency.py``.

It answers as https://api.slack.com/methods documents: HTTP 200 with ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}`` (``not_authed``, ``invalid_auth``, ``channel_not_found``,
``message_not_found``, ``msg_too_long``, ``invalid_blocks``, ``no_text``), and HTTP 429 with
``Retry-After`` and ``"error": "ratelimited"`` when told to (``limit_next``). It enforces the
limits receiver must keep: text at most 40,000 characters, at most 50 blocks, a section's text
at most 3,000 characters, a header's 150, a context's elements 10.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec

from receiver.simulator.standin import Received, Reply, json_reply

MAX_TEXT: Final = 40_000
MAX_BLOCKS: Final = 50
MAX_SECTION_TEXT: Final = 3_000
MAX_HEADER_TEXT: Final = 150
MAX_CONTEXT_ELEMENTS: Final = 10


class Posted(msgspec.Struct, kw_only=True):
    """A message as Slack holds it."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0
    deleted: bool = False


class Call(msgspec.Struct, kw_only=True):
    """One API call as it arrived, with what was answered."""

    method: str
    at: float
    args: dict[str, Any]
    ok: bool
    error: str | None = None


class SlackApi:
    """``answer(request)`` as Slack would, for a bot token and a few channels."""

    def __init__(self, token: str, channels: dict[str, str] | None = None) -> None:
        self.token = token
        self.channels = channels or {"#previews": "C0PREVIEWS", "#alerts": "C0ALERTS"}
        self.messages: list[Posted] = []
        self.calls: list[Call] = []
        self.lock = threading.RLock()
        self._ts = itertools.count(1)
        self._limited: list[float] = []  # Retry-After of the next calls to answer 429
        self.revoked = False  # every call answers invalid_auth

    # -- control, for tests and the demo -------------------------------------------------------

    def limit_next(self, count: int = 1, retry_after: float = 1) -> None:
        with self.lock:
            self._limited += [retry_after] * count

    def delete(self, message: Posted) -> None:
        """Someone deleted the message in Slack."""
        with self.lock:
            message.deleted = True

    def top_level(self, channel: str | None = None) -> list[Posted]:
        with self.lock:
            return [
                m
                for m in self.messages
                if m.thread_ts is None and not m.deleted and channel in (None, m.channel)
            ]

    def replies(self, parent: Posted) -> list[Posted]:
        with self.lock:
            return [m for m in self.messages if m.thread_ts == parent.ts]

    def made(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    # -- the API -------------------------------------------------------------------------------

    def answer(self, request: Received) -> Reply:
        method = request.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        args = _arguments(request)
        with self.lock:
            if self._limited:
                retry_after = self._limited.pop(0)
                self._log(method, args, "ratelimited")
                return json_reply(
                    429, {"ok": False, "error": "ratelimited"}, {"Retry-After": f"{retry_after:g}"}
                )
            error, data = self._call(method, args, request.headers.get("authorization"))
            self._log(method, args, error)
        if error is not None:
            return json_reply(200, {"ok": False, "error": error})
        return json_reply(200, {"ok": True, **data})

    def _log(self, method: str, args: dict[str, Any], error: str | None) -> None:
        self.calls.append(
            Call(method=method, at=time.time(), args=args, ok=error is None, error=error)
        )

    def _call(
        self, method: str, args: dict[str, Any], authorization: str | None
    ) -> tuple[str | None, dict[str, Any]]:
        if not authorization:
            return "not_authed", {}
        if authorization != f"Bearer {self.token}" or self.revoked:
            return "invalid_auth", {}
        channel = self._channel(str(args.get("channel", "")))
        if channel is None:
            return "channel_not_found", {}
        if method == "chat.postMessage":
            return self._post(channel, args)
        if method == "chat.update":
            return self._update(channel, args)
        if method == "chat.delete":
            found = self._find(channel, str(args.get("ts", "")))
            if found is None:
                return "message_not_found", {}
            found.deleted = True
            return None, {"channel": channel, "ts": found.ts}
        return "unknown_method", {}

    def _channel(self, given: str) -> str | None:
        if given in self.channels.values():
            return given
        return self.channels.get(given if given.startswith("#") else f"#{given}")

    def _post(self, channel: str, args: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        problem = _check(args)
        if problem is not None:
            return problem, {}
        thread_ts = args.get("thread_ts")
        if thread_ts is not None and self._find(channel, str(thread_ts)) is None:
            return "thread_not_found", {}
        message = Posted(
            channel=channel,
            ts=f"{int(time.time())}.{next(self._ts):06d}",
            text=str(args.get("text") or ""),
            blocks=list(args.get("blocks") or []),
            thread_ts=None if thread_ts is None else str(thread_ts),
        )
        self.messages.append(message)
        return None, {"channel": channel, "ts": message.ts, "message": {"text": message.text}}

    def _update(self, channel: str, args: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        found = self._find(channel, str(args.get("ts", "")))
        if found is None:
            return "message_not_found", {}
        problem = _check(args)
        if problem is not None:
            return problem, {}
        found.text = str(args.get("text") or "")
        found.blocks = list(args.get("blocks") or [])
        found.edits += 1
        return None, {"channel": channel, "ts": found.ts, "text": found.text}

    def _find(self, channel: str, ts: str) -> Posted | None:
        return next(
            (m for m in self.messages if m.channel == channel and m.ts == ts and not m.deleted),
            None,
        )


def _arguments(request: Received) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        data = request.json() if request.body else {}
        return data if isinstance(data, dict) else {}
    return dict(parse_qsl(request.body.decode()))


def _check(args: dict[str, Any]) -> str | None:
    """Slack's refusals for a message over its limits."""
    text = args.get("text")
    blocks = args.get("blocks")
    if not text and not blocks:
        return "no_text"
    if text is not None and len(str(text)) > MAX_TEXT:
        return "msg_too_long"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for block in blocks:
        if not _block_fits(block):
            return "invalid_blocks"
    return None


def _block_fits(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    kind = block.get("type")
    if kind == "section":
        return len(str(block.get("text", {}).get("text", ""))) <= MAX_SECTION_TEXT
    if kind == "header":
        return len(str(block.get("text", {}).get("text", ""))) <= MAX_HEADER_TEXT
    if kind == "context":
        elements = block.get("elements", [])
        return len(elements) <= MAX_CONTEXT_ELEMENTS and all(
            len(str(e.get("text", ""))) <= MAX_SECTION_TEXT for e in elements
        )
    return kind in ("divider", "actions", "image")
