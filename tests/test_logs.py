"""Log lines: JSON, secrets redacted, every line written; lines of one loop pass share a write."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import sys
import threading
from collections.abc import Iterator

import pytest
import structlog

from receiver import logs


class CountingStream(io.BytesIO):
    """A binary stream that counts the writes it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


@pytest.fixture
def stream() -> Iterator[CountingStream]:
    out = CountingStream()
    writer = logs.LineWriter(out)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            logs.redact_secrets,
            logs.render_json,
        ],
        logger_factory=writer.factory,
        cache_logger_on_first_use=False,
    )
    yield out
    structlog.reset_defaults()


def test_lines_logged_in_one_loop_pass_share_one_write(stream: CountingStream) -> None:
    async def log_three() -> int:
        log = structlog.get_logger("t")
        for n in range(3):
            log.info("callback", id=n)
        written_before_the_pass_ended = stream.writes
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return written_before_the_pass_ended

    assert asyncio.run(log_three()) == 0
    assert stream.writes == 1
    assert [line["id"] for line in stream.lines()] == [0, 1, 2]


def test_lines_from_a_thread_without_a_loop_are_written_at_once(stream: CountingStream) -> None:
    thread = threading.Thread(target=lambda: structlog.get_logger("t").info("sent", id=7))
    thread.start()
    thread.join()
    assert stream.writes == 1
    assert stream.lines() == [{"event": "sent", "id": 7, "level": "info"}]


def test_lines_still_waiting_are_written_by_flush(stream: CountingStream) -> None:
    loop = asyncio.new_event_loop()
    try:
        # Logged on a loop that stops before its next pass: nothing may be lost.
        loop.run_until_complete(_log_and_stop(loop))
    finally:
        loop.close()
    assert stream.writes == 0
    logging_writer = structlog.get_config()["logger_factory"].__self__
    logging_writer.flush()
    assert [line["event"] for line in stream.lines()] == ["service.stopped"]


async def _log_and_stop(loop: asyncio.AbstractEventLoop) -> None:
    structlog.get_logger("t").info("service.stopped")
    loop.stop()


def test_secrets_are_redacted_and_values_json_encoded(stream: CountingStream) -> None:
    structlog.get_logger("t").info("config", webhook_secret="s3cret", api_token="t0k", n=1.5)
    (line,) = stream.lines()
    assert line["webhook_secret"] == "set (6 chars)" and line["api_token"] == "set (3 chars)"
    assert line["n"] == 1.5
    assert b"s3cret" not in stream.getvalue() and b"t0k" not in stream.getvalue()


def test_a_secret_is_redacted_every_time_among_keys_seen_before(stream: CountingStream) -> None:
    """Lines of known harmless keys take a shortcut; a secret beside them must not."""
    log = structlog.get_logger("t")
    log.info("callback", id=1, outcome="accepted")
    for _ in range(2):
        log.info("callback", id=1, outcome="accepted", signature="sha256=abc")
    shown = [line.get("signature") for line in stream.lines()]
    assert shown == [None, "set (10 chars)", "set (10 chars)"]
    assert b"sha256=abc" not in stream.getvalue()


def test_configure_renders_json_lines_through_the_line_writer() -> None:
    logs.configure(json=True)
    try:
        factory = structlog.get_config()["logger_factory"]
        assert isinstance(factory.__self__, logs.LineWriter)
    finally:
        structlog.reset_defaults()


def test_configured_lines_carry_level_and_the_stored_timestamp_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(raw))
    logs.configure(json=True)
    try:
        before = dt.datetime.now(dt.UTC)
        structlog.get_logger("t").info("service.started", port=8080)
    finally:
        structlog.reset_defaults()
    (line,) = [json.loads(text) for text in raw.getvalue().splitlines()]
    assert line["event"] == "service.started" and line["level"] == "info"
    assert line["port"] == 8080
    stamped = dt.datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(stamped.replace(tzinfo=dt.UTC) - before) < dt.timedelta(seconds=5)
