"""End to end: ``receiver serve`` as a real process, SIGKILLed with deliveries pending, restarted:
every delivery arrives exactly once."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from receiver.process import ServiceProcess
from tests.conftest import TOKEN, callback_body, signed
from tests.sinks import Answer, HttpSink, always

RESULTS = 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config_text(sink: HttpSink) -> str:
    return f"""
[delivery]
max_attempts = 50
backoff = [0.5]
timeout_seconds = 1

[[routes]]
name = "everything"
notify = ["{sink.url("/hook")}", "{sink.url("/slow")}"]
"""


def outbox(url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(
        f"{url}/api/deliveries", params={"limit": 500}, headers=AUTH, timeout=10
    ).json()["items"]
    return items


def until(test: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        time.sleep(0.05)


def result_ids(sink: HttpSink, path: str) -> Counter[int]:
    found: Counter[int] = Counter()
    for request in sink.delivered(path):
        match = re.search(r"result #(\d+)", request.json()["message"])
        assert match is not None
        found[int(match.group(1))] += 1
    return found


def test_sigkill_with_pending_deliveries_then_restart_delivers_each_once(
    sink: HttpSink, tmp_path: Path, env: dict[str, str]
) -> None:
    # The targets are down: /hook answers 503, /slow takes the request and never answers.
    sink.on("/hook", always(503))
    sink.on("/slow", lambda n, r: Answer(hang=True))
    config = tmp_path / "receiver.toml"
    config.write_text(config_text(sink))
    log = tmp_path / "serve.log"
    service = ServiceProcess(config, env, log).start()
    try:
        for i in range(RESULTS):
            body = callback_body(custom_data={"branch": "main", "deploy_id": f"d-{i}"})
            response = httpx.post(
                f"{service.url}/callbacks/qualitymax", content=body, headers=signed(body)
            )
            assert response.status_code == 200 and response.json()["duplicate"] is False
        # Each delivery was attempted at least once, and some are in flight, when the crash comes.
        until(lambda: len(sink.to("/hook")) >= RESULTS and len(sink.to("/slow")) >= 1, "attempts")
        before = outbox(service.url)
        assert len(before) == 2 * RESULTS and {d["state"] for d in before} == {"pending"}
    finally:
        service.kill()

    sink.on("/hook", always(200))
    sink.on("/slow", always(200))
    service = ServiceProcess(config, env, log, port=service.port).start()
    try:
        until(
            lambda: {d["state"] for d in outbox(service.url)} == {"sent"},
            "every delivery sent after the restart",
        )
    finally:
        service.stop()
    # And once more: a restart after everything was sent sends nothing again.
    delivered = len(sink.delivered("/hook")) + len(sink.delivered("/slow"))
    service = ServiceProcess(config, env, log, port=service.port).start()
    try:
        time.sleep(2.5)  # past the worker's fallback poll: it looked and found nothing due
        assert {d["state"] for d in outbox(service.url)} == {"sent"}
    finally:
        service.stop()

    expected = Counter(range(1, RESULTS + 1))
    assert result_ids(sink, "/hook") == expected
    assert result_ids(sink, "/slow") == expected
    assert len(sink.delivered("/hook")) + len(sink.delivered("/slow")) == delivered
