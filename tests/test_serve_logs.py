"""JSON logs only: a real ``receiver serve``'s whole output, granian's lines too, parses as JSON
lines; ``RECEIVER_LOG_FORMAT=console`` gives readable lines instead."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from receiver import logs
from receiver.cli import main
from receiver.process import ServiceProcess
from tests.conftest import callback_body, signed


def serve_output(
    tmp_path: Path, write_config: Callable[[str], Path], env: dict[str, str]
) -> list[str]:
    """Start, a few requests, SIGTERM: every line the process wrote (stdout and stderr)."""
    log = tmp_path / "serve.log"
    service = ServiceProcess(write_config(""), env, log).start()
    try:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            body = callback_body()
            taken = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
            assert taken.status_code == 200
            client.post("/callbacks/qualitymax", content=b"{}")  # unsigned: 401
            client.get("/api/results")  # no token: 401
            client.get("/health")
    finally:
        assert service.stop() == 0
    return log.read_text().splitlines()


def test_every_line_of_a_real_serve_is_json(
    tmp_path: Path, write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    lines = serve_output(tmp_path, write_config, env)
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\nwhole output:\n" + "\n".join(lines))
    assert all(isinstance(p, dict) for p in parsed)
    assert all({"event", "level", "timestamp"} <= set(p) for p in parsed), parsed
    events = [p["event"] for p in parsed]
    # The service's own lines, from the parent and the worker, and granian's from both.
    for event in ("serve.listening", "routes.none", "service.started", "callback"):
        assert event in events, events
    assert parsed[-1]["logger"] == "granian"  # its last words come after ours
    granian = [p["event"] for p in parsed if p.get("logger") == "granian"]
    assert any(e.startswith("Starting granian") for e in granian), granian
    assert any(e.startswith("Stopping worker") for e in granian), granian
    assert events.index("service.stopped") < len(events) - 1


def test_console_format_gives_readable_lines(
    tmp_path: Path, write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    lines = serve_output(tmp_path, write_config, {**env, "RECEIVER_LOG_FORMAT": "console"})
    assert not [line for line in lines if line.startswith("{")]
    assert any("service.started" in line for line in lines)
    assert any("Starting granian" in line and "granian" in line for line in lines)


def test_a_wrong_log_format_stops_check_config_and_serve(
    write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    path = str(write_config(""))
    for command in (["check-config"], ["serve", "--port", "1"]):
        result = CliRunner().invoke(
            main, [*command, "--config", path], env={**env, "RECEIVER_LOG_FORMAT": "text"}
        )
        assert result.exit_code == 1
        assert result.output == (
            "Error: RECEIVER_LOG_FORMAT must be json (one JSON object per line, the default) or "
            "console (readable lines for a terminal), not 'text'\n"
        )


# -- the stdlib handler: what granian (and any library) logs, in our form ------------------------


def handled(record: logging.LogRecord, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    out = _Stderr()
    monkeypatch.setattr(sys, "stderr", out)
    logs.StdlibHandler("json").handle(record)
    logs.line_writer().flush()
    (line,) = out.buffer.getvalue().splitlines()
    parsed: dict[str, Any] = json.loads(line)
    return parsed


class _Stderr:
    """A stand-in for sys.stderr: the JSON lines go to its binary buffer."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()


def test_an_access_line_keeps_the_fields_and_hides_a_jobs_key_and_the_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = {
        "addr": "127.0.0.1",
        "method": "POST",
        "path": "/callbacks/qualitymax/k3y-0f-the-job",
        "query_string": "token=abc",
        "status": 200,
        "dt_ms": 1.23456,
        "protocol": "HTTP/1.1",
    }
    record = logging.LogRecord("granian.access", logging.INFO, "", 0, "%(path)s", (fields,), None)
    line = handled(record, monkeypatch)
    assert line["event"] == "http.access" and line["level"] == "info"
    assert line["path"] == "/callbacks/qualitymax/****"
    assert (line["method"], line["status"], line["duration_ms"]) == ("POST", 200, 1.235)
    assert "abc" not in json.dumps(line) and "k3y" not in json.dumps(line)


def test_an_error_with_a_traceback_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        info = sys.exc_info()
    record = logging.LogRecord(
        "_granian.asgi", logging.ERROR, "", 0, "Application callable raised", (), info
    )
    line = handled(record, monkeypatch)
    assert line["logger"] == "granian" and line["level"] == "error"
    assert "RuntimeError: boom" in line["exception"]


def test_uncaught_exceptions_and_warnings_of_a_process_are_json(tmp_path: Path) -> None:
    code = (
        "import threading, warnings\n"
        "from receiver import logs\n"
        "logs.configure(json=True)\n"
        "logs.capture_process_output()\n"
        "import logging.config\n"
        "logging.config.dictConfig(logs.stdlib_config('json'))\n"
        "warnings.warn('careful')\n"
        "t = threading.Thread(target=lambda: 1 / 0)\n"
        "t.start(); t.join()\n"
        "raise SystemError('the end')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    parsed = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(p["level"], p.get("logger")) for p in parsed] == [
        ("warning", "py.warnings"),
        ("error", None),
        ("critical", None),
    ]
    assert "ZeroDivisionError" in parsed[1]["exception"]
    assert "SystemError: the end" in parsed[2]["exception"]


def test_lines_of_threads_are_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Stderr()
    monkeypatch.setattr(sys, "stderr", out)
    handler = logs.StdlibHandler("json")

    def many() -> None:
        for n in range(200):
            handler.handle(logging.LogRecord("x", logging.WARNING, "", 0, "n=%d", (n,), None))

    threads = [threading.Thread(target=many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.buffer.getvalue().splitlines()
    assert len(lines) == 800 and all(json.loads(line)["logger"] == "x" for line in lines)
