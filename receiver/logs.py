"""Structured logs: one JSON object per line when not on a terminal, readable lines when on one.

Secrets never reach a log line: any key that names one is shown as ``set (N chars)``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, BinaryIO, Final

import msgspec
import structlog

from receiver import redact
from receiver.clock import utcnow


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Log keys are few and fixed: a line whose keys were all seen and found harmless is
    # checked in one set operation (measured: 0.2 against 0.5 us a line, key by key).
    if _HARMLESS_KEYS.issuperset(event):
        return event
    for key in event:
        if redact.names_a_secret(key):
            event[key] = redact.secret(event[key])
        elif len(_HARMLESS_KEYS) < MAX_HARMLESS_KEYS:
            _HARMLESS_KEYS.add(key)
    return event


# Keys known not to name a secret; a key naming one is never added.
_HARMLESS_KEYS: set[str] = set()
MAX_HARMLESS_KEYS: Final = 1024


def add_timestamp(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The stored timestamps' form and clock. structlog's TimeStamper formats each line anew:
    0.9 us of the 7.6 us a callback's line cost (measured)."""
    event["timestamp"] = utcnow()
    return event


def configure(*, level: int = logging.INFO, json: bool | None = None) -> None:
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = structlog.dev.ConsoleRenderer()
    # WriteLogger: the same lines as PrintLogger, without print()'s overhead per line.
    factory: Any = structlog.WriteLoggerFactory(file=sys.stderr)
    if as_json:
        renderer = render_json
        factory = LineWriter(sys.stderr.buffer).factory
    structlog.configure(
        # No merge_contextvars: nothing binds context variables, and it copied the context
        # for every line (0.3 us measured).
        processors=[
            structlog.processors.add_log_level,
            add_timestamp,
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def render_json(_: Any, __: str, event: MutableMapping[str, Any]) -> bytes:
    """The line as JSON bytes, written as they are (structlog's own pattern for orjson);
    msgspec directly: structlog's JSONRenderer around it added 0.4 us a line (measured)."""
    return msgspec.json.encode(event, enc_hook=repr)


class LineWriter:
    """A structlog logger writing rendered lines to a binary stream.

    Lines logged on an event loop wait for the end of the loop's current pass and share one
    write: measured, a write per line was a third of the cost of logging a callback, since
    every write let other threads take the GIL from the loop. Lines from other threads are
    written at once, and lines still waiting when the process exits are written then.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._local = threading.local()
        self._waiting: list[list[bytes]] = []  # every thread's lines not yet written
        atexit.register(self.flush)

    def factory(self, *_: Any) -> LineWriter:
        return self

    def msg(self, message: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._write([message])
        lines: list[bytes] | None = getattr(self._local, "lines", None)
        if lines is None:
            lines = self._local.lines = []
            with self._lock:
                self._waiting.append(lines)
            loop.call_soon(self._flush_this_thread)
        lines.append(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg

    def _flush_this_thread(self) -> None:
        lines: list[bytes] = self._local.lines
        self._local.lines = None
        with self._lock:
            # By identity: another thread's list may hold equal lines. flush() at exit may
            # already have taken (and emptied) this one.
            self._waiting = [waiting for waiting in self._waiting if waiting is not lines]
        self._write(lines)

    def flush(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for lines in waiting:
            self._write(lines[:])
            lines.clear()

    def _write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        with self._lock:
            self.stream.write(b"".join(line + b"\n" for line in lines))
            self.stream.flush()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
