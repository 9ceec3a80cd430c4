"""The QualityMax client: limits checked before sending, against the real simulator on loopback."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest
import stamina

from receiver.config import QualityMaxSettings
from receiver.process import free_port
from receiver.providers import http
from receiver.providers import qualitymax as qm
from receiver.providers.base import Outgoing
from receiver.providers.errors import (
    AuthRejected,
    MaybeReceived,
    ProviderUnavailable,
    RequestRejected,
    UnknownTarget,
)
from receiver.signatures import verify
from receiver.simulator.process import SimulatorProcess
from tests.conftest import QM_KEY, QM_SLUG, SECRET
from tests.sinks import Answer, HttpSink

FAST = http.RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, wait_jitter=0, timeout=30)


class Capture:
    """A stand-in for receiver's callback endpoint: keeps what the partner posts."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/results"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self) -> tuple[dict[str, str], dict[str, Any]]:
        headers, body = self.received.get(timeout=15)
        assert verify(body, headers.get("x-qualitymax-signature"), [SECRET])
        return headers, json.loads(body)


@pytest.fixture
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.server.shutdown()


def client_for(
    base_url: str, *, key: str = QM_KEY, policy: http.RetryPolicy = FAST, timeout: float = 30
) -> qm.QualityMax:
    settings = QualityMaxSettings(
        base_url=base_url, api_key=key, webhook_secret=SECRET, partner_slug=QM_SLUG
    )
    return qm.QualityMax(settings, policy=policy, timeout=timeout)


def submit(client: qm.QualityMax, wire: qm.WebhookRequest) -> str:
    """Send an already built request; the partner's job id."""

    async def go() -> str:
        try:
            return (await client.send(Outgoing(wire=wire, kept=""))).external_id
        finally:
            await client.aclose()

    return asyncio.run(go())


def request(
    callback_url: str = "https://receiver.example.com/cb", **changes: Any
) -> qm.WebhookRequest:
    fields: dict[str, Any] = {
        "url": "https://preview-1.example.com",
        "feature_description": "Users can log in",
        "callback_url": callback_url,
        "custom_data": {"branch": "main"},
    }
    fields.update(changes)
    return qm.WebhookRequest(**fields)


def counters(simulator: SimulatorProcess) -> dict[str, int]:
    answer: dict[str, int] = httpx.get(f"{simulator.url}/_simulator/counters").json()
    return answer


def fault(simulator: SimulatorProcess, **spec: Any) -> None:
    httpx.post(f"{simulator.url}/_simulator/faults", json=spec).raise_for_status()


# -- limits: each just inside and just over its edge ---------------------------------------------


def custom_data_of(size: int) -> dict[str, str]:
    """A custom_data object whose JSON is exactly ``size`` bytes: {"k":"xxx..."}."""
    return {"k": "x" * (size - len('{"k":""}'))}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": ""}, "url"),
        ({"url": "ftp://preview.example.com"}, "url"),
        ({"url": "https://e.com/" + "a" * (2048 - 14 + 1)}, "url"),
        ({"feature_description": " "}, "feature_description"),
        ({"feature_description": "f" * 8001}, "feature_description"),
        ({"callback_url": "https://r.com/" + "c" * (2048 - 14 + 1)}, "callback_url"),
        ({"callback_url": "receiver.example.com/cb"}, "callback_url"),
        ({"custom_data": custom_data_of(4097)}, "custom_data"),
        ({"options": qm.Options(quality_threshold=101)}, "options.quality_threshold"),
        ({"options": qm.Options(quality_threshold=-1)}, "options.quality_threshold"),
        ({"options": qm.Options(browser="safari")}, "options.browser"),
        ({"auth": qm.Auth(type="oauth", username="u", password="p")}, "auth.type"),
        ({"auth": qm.Auth(username="qa@example.com")}, "auth"),
    ],
)
def test_a_limit_just_over_its_edge_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        qm.validate_request(request(**changes))
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "changes",
    [
        {"url": "https://e.com/" + "a" * (2048 - 14)},
        {"feature_description": "f" * 8000},
        {"callback_url": "http://r.com/" + "c" * (2048 - 13)},
        {"custom_data": custom_data_of(4096)},
        {"options": qm.Options(quality_threshold=0, browser="webkit")},
        {"options": qm.Options(quality_threshold=100, browser="firefox")},
    ],
)
def test_a_limit_exactly_at_its_edge_passes(changes: dict[str, Any]) -> None:
    qm.validate_request(request(**changes))


def test_custom_data_helper_is_exact() -> None:
    assert len(msgspec.json.encode(custom_data_of(4096))) == 4096


def test_an_invalid_request_is_refused_before_sending(simulator: SimulatorProcess) -> None:
    client = client_for(simulator.url)
    job = qm.QualityMaxJob(url="https://preview.example.com", feature_description="f" * 8001)
    with pytest.raises(RequestRejected, match=r"^feature_description: is 8001 characters"):
        client.prepare(job, "https://receiver.example.com/cb")
    assert counters(simulator)["webhook_requests"] == 0


def test_auth_is_sent_whole_with_its_type() -> None:
    """The document's request carries auth.type; leaving the default out dropped it."""
    wire = request(auth=qm.Auth(username="qa@example.com", password="pw"))
    sent = json.loads(qm.encode_request(wire))
    assert sent["auth"] == {"type": "user_login", "username": "qa@example.com", "password": "pw"}


# -- talking to the partner ----------------------------------------------------------------------


def test_submit_is_accepted_and_the_signed_callback_follows(
    simulator: SimulatorProcess, capture: Capture
) -> None:
    custom = {"branch": "feat/login", "pr_number": 42, "simulate": "failed"}
    job_id = submit(client_for(simulator.url), request(capture.url, custom_data=custom))
    assert job_id.startswith("pwj_")
    _headers, callback = capture.next()
    assert callback["event"] == "test_results"
    assert "job_id" not in callback  # the document's callback has none
    assert callback["custom_data"] == custom
    results = callback["results"]
    assert (results["status"], results["total_tests"], results["failed"]) == ("failed", 3, 1)
    assert results["failures"][0]["test"] == "Dashboard shows the task sections"
    assert all(t["screenshot_url"].startswith(simulator.url) for t in results["tests"])


def test_report_logs_and_artifacts_of_a_finished_job(
    simulator: SimulatorProcess, capture: Capture
) -> None:
    job_id = submit(client_for(simulator.url), request(capture.url))
    _, callback = capture.next()
    execution_id = callback["results"]["tests"][0]["execution_id"]

    async def read() -> tuple[qm.JobReport, qm.ExecutionLogs, str]:
        client = client_for(simulator.url)  # one client, one event loop: its pooled connections
        try:
            report = await client.report(job_id)
            logs = await client.logs(execution_id)
            return report, logs, await client.artifact_location(execution_id, "screenshot")
        finally:
            await client.aclose()

    report, logs, location = asyncio.run(read())
    assert report.job.id == job_id and report.job.tests_generated == 3
    assert report.job.status == "callback_sent"
    assert "PASS" in (logs.test_output or "")
    assert location == callback["results"]["tests"][0]["screenshot_url"]
    image = httpx.get(location)
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")


def test_an_unknown_report_surfaces_the_partners_404_detail(simulator: SimulatorProcess) -> None:
    with pytest.raises(UnknownTarget) as caught:
        asyncio.run(client_for(simulator.url).report("pwj_nope"))
    assert caught.value.status_code == 404
    assert str(caught.value) == "QualityMax answered 404: Job pwj_nope not found"


def test_a_wrong_api_key_shows_the_partners_401_detail(simulator: SimulatorProcess) -> None:
    client = client_for(simulator.url, key="qm-wrong-key")
    with pytest.raises(AuthRejected) as caught:
        submit(client, request())
    assert caught.value.status_code == 401
    assert str(caught.value) == "QualityMax answered 401: Invalid API key"
    assert counters(simulator)["webhook_requests"] == 1  # a 4xx is not retried


def test_the_partner_down_is_retried_then_reported() -> None:
    """Connection refused: nothing was sent, so the submit is tried FAST.attempts times."""
    retries: list[int] = []
    hooks = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([lambda details: retries.append(details.retry_num)])
    try:
        client = client_for(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(ProviderUnavailable) as caught:
            submit(client, request())
    finally:
        stamina.instrumentation.set_on_retry_hooks(hooks)
    assert "QualityMax is unreachable" in str(caught.value)
    assert f"(gave up after {FAST.attempts} attempts; try again later)" in str(caught.value)
    assert retries == list(range(1, FAST.attempts))


def test_a_503_once_then_success(simulator: SimulatorProcess) -> None:
    fault(simulator, status=503, count=1)
    assert submit(client_for(simulator.url), request()).startswith("pwj_")
    assert counters(simulator)["webhook_requests"] == 2


def test_a_503_waits_for_its_retry_after_then_succeeds(simulator: SimulatorProcess) -> None:
    fault(simulator, status=503, count=1, retry_after=1)
    started = time.monotonic()
    submit(client_for(simulator.url), request())
    waited = time.monotonic() - started
    assert counters(simulator)["webhook_requests"] == 2
    assert waited >= 1.0  # FAST alone would have waited 0.01 s


def test_a_429_to_a_submit_is_raised_at_once_for_the_queue(simulator: SimulatorProcess) -> None:
    """A job waits in receiver's queue (receiver.sender), not in the request submitting it."""
    fault(simulator, status=429, count=1, retry_after=7, detail="Rate limit exceeded")
    with pytest.raises(ProviderUnavailable) as caught:
        submit(client_for(simulator.url), request())
    assert (caught.value.status_code, caught.value.retry_after) == (429, 7)
    assert counters(simulator)["webhook_requests"] == 1


def test_503_every_time_gives_up_after_the_attempts(simulator: SimulatorProcess) -> None:
    fault(simulator, status=503, count=10)
    with pytest.raises(ProviderUnavailable) as caught:
        submit(client_for(simulator.url), request())
    assert caught.value.status_code == 503
    assert "Service unavailable -- try again later" in str(caught.value)
    assert counters(simulator)["webhook_requests"] == FAST.attempts


MAYBE = "QualityMax may or may not have received the job: check it there before submitting again"


def test_another_5xx_to_a_submit_is_reported_not_repeated(simulator: SimulatorProcess) -> None:
    for sent, status in enumerate((500, 502, 504), start=1):
        fault(simulator, status=status, count=1, detail="upstream trouble")
        with pytest.raises(MaybeReceived) as caught:
            submit(client_for(simulator.url), request())
        assert str(caught.value) == f"QualityMax answered {status}: upstream trouble; {MAYBE}"
        assert counters(simulator)["webhook_requests"] == sent  # this one once, not again


@pytest.fixture
def silent_partner() -> Iterator[HttpSink]:
    """A QualityMax stand-in that reads each request and never answers it."""
    sink = HttpSink()
    sink.default = lambda n, r: Answer(hang=True)
    yield sink
    sink.close()


def test_a_submit_that_times_out_reading_is_posted_once(silent_partner: HttpSink) -> None:
    client = client_for(silent_partner.base_url, timeout=0.3)
    with pytest.raises(MaybeReceived) as caught:
        submit(client, request())
    assert str(caught.value).startswith(
        f"QualityMax is unreachable at {silent_partner.base_url}/api/webhooks/{QM_SLUG} "
    )
    assert str(caught.value).endswith(MAYBE)
    assert len(silent_partner.to(f"/api/webhooks/{QM_SLUG}")) == 1


def test_a_report_that_times_out_is_asked_again(silent_partner: HttpSink) -> None:
    """Reads are idempotent GETs: a timeout is retried."""
    client = client_for(silent_partner.base_url, timeout=0.3)
    with pytest.raises(ProviderUnavailable, match=r"gave up after 3 attempts; try again later\)$"):
        asyncio.run(client.report("pwj_1"))
    assert len(silent_partner.to(f"{qm.PARTNER_API_PATH}/jobs/pwj_1/report")) == FAST.attempts


# -- pure parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (http._NotNow(ProviderUnavailable("QualityMax", "down")), True),
        (http._NotNow(ProviderUnavailable("QualityMax", "429", retry_after=3)), 3.0),
        (http._NotNow(ProviderUnavailable("QualityMax", "429", retry_after=3600)), 3600.0),
        (AuthRejected("QualityMax", "Invalid API key"), False),
        (MaybeReceived("QualityMax", "POST timed out"), False),
        (RequestRejected("QualityMax", "url: is required"), False),
        (ValueError("bug"), False),
    ],
)
def test_retry_decisions(error: Exception, decision: bool | float) -> None:
    """Retry-After is obeyed in full, whatever its length (the window may be long)."""
    assert http._wait(error) == decision


def test_the_signature_covers_exactly_the_bytes_sent() -> None:
    body = qm.encode_request(request())
    assert json.loads(body)["callback_url"] == "https://receiver.example.com/cb"
    assert b"options" not in body  # unset options are left to the partner's defaults
