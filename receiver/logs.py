"""Structured logs: one JSON object per line when not on a terminal, readable lines when on one.

Secrets never reach a log line: any key that names one is replaced before rendering.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

SECRET_WORDS: Final = ("secret", "token", "signature", "authorization", "api_key", "password")


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event:
        if _names_a_secret(key):
            event[key] = "[redacted]"
    return event


@functools.lru_cache(maxsize=1024)
def _names_a_secret(key: str) -> bool:
    """Cached: log keys are few and fixed, and this ran for every key of every line."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def configure(*, level: int = logging.INFO, json: bool | None = None) -> None:
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # WriteLogger: the same lines as PrintLogger, without print()'s overhead per line.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
