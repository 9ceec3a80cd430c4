"""Structured logs: one JSON object per line (``RECEIVER_LOG_FORMAT=console``: readable lines).

Every line of ``receiver serve`` takes this form, the HTTP server's own too (granian's start,
stop and error lines, its access lines if enabled), and so do the standard library's loggers,
Python's warnings and uncaught exceptions: a log collector parses one stream of JSON objects.

Secrets never reach a log line: any key that names one is shown as ``set (N chars)``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal

import msgspec
import structlog

from receiver import redact
from receiver.clock import utcnow
from receiver.config import ConfigError

FORMAT_ENV: Final = "RECEIVER_LOG_FORMAT"
FORMATS: Final = ("json", "console")
LogFormat = Literal["json", "console"]
# granian's loggers: its own lines (the Rust core logs under "_granian" too) and access lines.
GRANIAN_LOGGER: Final = "_granian"
ACCESS_LOGGER: Final = "granian.access"
# A job's callback path holds its unguessable key: an access line shows the path without it.
_JOB_KEY: Final = re.compile(r"^(/callbacks/[^/]+/)[^/?]+")


def log_format(environ: Mapping[str, str]) -> LogFormat:
    """``RECEIVER_LOG_FORMAT``: ``json`` (the default) or ``console``."""
    value = environ.get(FORMAT_ENV, "").strip().lower() or "json"
    if value == "json":
        return "json"
    if value == "console":
        return "console"
    raise ConfigError(
        f"{FORMAT_ENV} must be json (one JSON object per line, the default) or console "
        f"(readable lines for a terminal), not {environ[FORMAT_ENV]!r}"
    )


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
    """structlog's lines, to stderr; ``json`` None: as ``RECEIVER_LOG_FORMAT`` says."""
    as_json = log_format(os.environ) == "json" if json is None else json
    renderer: Any = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    # WriteLogger: the same lines as PrintLogger, without print()'s overhead per line.
    factory: Any = structlog.WriteLoggerFactory(file=sys.stderr)
    if as_json:
        renderer = render_json
        factory = line_writer().factory
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


_writer: LineWriter | None = None


def line_writer() -> LineWriter:
    """The one writer of JSON lines to stderr, shared by structlog and the stdlib handler so
    their lines never interleave mid-line."""
    global _writer
    stream = sys.stderr.buffer
    if _writer is None or _writer.stream is not stream:
        _writer = LineWriter(stream)
    return _writer


# -- the standard library's loggers: granian, apprise, warnings ----------------------------------


def stdlib_config(fmt: LogFormat) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` sending granian's loggers and the root logger through
    ``StdlibHandler``; granian applies it (``log_dictconfig``) in its main and worker processes."""
    handler = {"()": "receiver.logs.StdlibHandler", "fmt": fmt}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"receiver": handler},
        "loggers": {
            GRANIAN_LOGGER: {"handlers": ["receiver"], "level": "INFO", "propagate": False},
            ACCESS_LOGGER: {"handlers": ["receiver"], "level": "INFO", "propagate": False},
        },
        # Libraries' warnings (apprise's failed sends among them) and Python's warnings.
        "root": {"handlers": ["receiver"], "level": "WARNING"},
    }


class StdlibHandler(logging.Handler):
    """A stdlib log record as one of our lines: ``event``, ``level``, ``timestamp`` (plus
    ``logger``), secrets redacted, exceptions in ``exception``; written by ``line_writer``."""

    def __init__(self, fmt: LogFormat = "json") -> None:
        super().__init__()
        self.fmt = fmt
        self.console = (
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()) if fmt == "console" else None
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = record_event(record)
            for processor in (add_timestamp, redact_secrets, structlog.processors.format_exc_info):
                event = processor(None, "", event)
            if self.console is None:
                line_writer().msg(render_json(None, "", event))
            else:
                sys.stderr.write(self.console(None, "", event) + "\n")
                sys.stderr.flush()
        except Exception:
            self.handleError(record)


def record_event(record: logging.LogRecord) -> MutableMapping[str, Any]:
    event: dict[str, Any]
    if record.name == ACCESS_LOGGER and isinstance(record.args, Mapping):
        event = access_event(record.args)
    else:
        event = {"event": record.getMessage()}
    event["logger"] = "granian" if record.name.startswith(GRANIAN_LOGGER) else record.name
    event["level"] = record.levelname.lower()
    if record.exc_info:
        event["exc_info"] = record.exc_info
    return event


def access_event(fields: Mapping[str, Any]) -> dict[str, Any]:
    """granian's access fields, without the query (it may carry a token) or a job's key."""
    path = _JOB_KEY.sub(r"\1" + redact.HIDDEN, str(fields.get("path", "")))
    duration = fields.get("dt_ms")
    return {
        "event": "http.access",
        "method": fields.get("method"),
        "path": path,
        "status": fields.get("status"),
        "duration_ms": round(duration, 3) if isinstance(duration, float) else duration,
        "addr": fields.get("addr"),
        "protocol": fields.get("protocol"),
    }


def capture_process_output() -> None:
    """What Python itself prints to stderr as lines of ours too: warnings and uncaught
    exceptions (of the main thread and of others)."""
    logging.captureWarnings(True)
    log = get_logger("receiver")

    def uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.critical("uncaught_exception", exc_info=(kind, exc, tb))

    def uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.error(
                "uncaught_exception",
                thread=args.thread.name if args.thread else None,
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )

    sys.excepthook = uncaught
    threading.excepthook = uncaught_in_thread
