"""A local QualityMax partner API, built from its document (shared/providers/...partner-api.txt).

It checks ``X-QualityMax-API-Key`` and ``X-Partner-Signature``, validates the webhook request with
the same limits as the client, applies the documented rate limits (10/min for the LLM webhook,
60/min for the free endpoints; 429 with ``Retry-After``), answers ``{accepted, job_id}`` and, after
a short delay, POSTs a signed ``test_results`` callback to the job's ``callback_url``. Reports and
artifacts are served from memory. ``custom_data.simulate`` steers the outcome: ``passed`` (the
default), ``failed`` or ``error``; ``custom_data.simulate_failing`` (a list of test names) which
tests fail (``failed`` alone fails the second); ``custom_data.simulate_delay`` the seconds
before the callback.

Two extra paths under ``/_simulator`` exist for tests only: inject faults (``503`` once, say) and
count the webhook requests that arrived.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import httpx
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.response import Redirect

from receiver.logs import get_logger
from receiver.providers import qualitymax as qm
from receiver.providers.errors import RequestRejected
from receiver.signatures import sign, verify

log = get_logger("receiver.simulator")

DEV_API_KEY: Final = "qm-simulator-dev-key"
DEV_WEBHOOK_SECRET: Final = "simulator-dev-secret"
OUTCOMES: Final = ("passed", "failed", "error")
PathText = Annotated[str, PathParameter()]
# The smallest valid PNG (1x1, transparent): a real image for the screenshot links.
PIXEL_PNG: Final = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
# The four bytes that open every WebM (EBML) file; enough for a link that answers.
WEBM_STUB: Final = bytes.fromhex("1a45dfa3") + b"\x00" * 28


class SimulatorSettings(msgspec.Struct, kw_only=True, frozen=True):
    api_key: str = DEV_API_KEY
    webhook_secret: str = DEV_WEBHOOK_SECRET
    partner_slug: str | None = None  # None: any slug is taken
    delay: float = 1.0  # seconds between accepting a job and posting its callback
    webhook_per_minute: int = 10
    free_per_minute: int = 60

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> SimulatorSettings:
        return cls(
            api_key=env.get("QUALITYMAX_API_KEY") or DEV_API_KEY,
            webhook_secret=_first_secret(env.get("QUALITYMAX_WEBHOOK_SECRET")),
            partner_slug=env.get("QUALITYMAX_PARTNER_SLUG") or None,
            delay=float(env.get("RECEIVER_SIMULATOR_DELAY") or 1.0),
            webhook_per_minute=int(env.get("RECEIVER_SIMULATOR_WEBHOOK_PER_MINUTE") or 10),
            free_per_minute=int(env.get("RECEIVER_SIMULATOR_FREE_PER_MINUTE") or 60),
        )


def _first_secret(value: str | None) -> str:
    for part in (value or "").split(","):
        if part.strip():
            return part.strip()
    return DEV_WEBHOOK_SECRET


class SimTest(msgspec.Struct, kw_only=True):
    test: str
    status: str
    duration_ms: int
    screenshot_url: str
    video_url: str
    execution_id: str
    error: str | None = None


class SimJob(msgspec.Struct, kw_only=True):
    id: str
    request: qm.WebhookRequest
    outcome: str
    base_url: str
    status: str = "processing"
    tests: list[SimTest] = msgspec.field(default_factory=list)
    started: float = msgspec.field(default_factory=time.monotonic)
    duration_seconds: float | None = None


class Fault(msgspec.Struct, kw_only=True):
    """Answer the next ``count`` webhook requests with ``status`` (tests' partner outages)."""

    status: int = 503
    count: int = 1
    retry_after: int | None = None
    detail: str = "Service unavailable -- try again later"


class Counters(msgspec.Struct, kw_only=True):
    webhook_requests: int = 0
    jobs: int = 0
    callbacks_sent: int = 0
    callbacks_failed: int = 0


@dataclass
class RateLimiter:
    """A sliding one-minute window per API key and endpoint type."""

    per_minute: int
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, key: str) -> int | None:
        """None when the request may pass (and is counted); else seconds until it may."""
        now = time.monotonic()
        window = self.hits.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.per_minute:
            return max(1, math.ceil(window[0] + 60 - now))
        window.append(now)
        return None


@dataclass
class SimState:
    settings: SimulatorSettings
    webhook_limit: RateLimiter
    free_limit: RateLimiter
    jobs: dict[str, SimJob] = field(default_factory=dict)
    executions: dict[str, SimTest] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _state(request: Request[Any, Any, Any]) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _error(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"detail": detail}, status_code=status_code, headers=headers)


def _check_key(state: SimState, request: Request[Any, Any, Any]) -> Response[Any] | None:
    given = request.headers.get(qm.API_KEY_HEADER.lower())
    if not given:
        return _error(401, "Missing X-QualityMax-API-Key header")
    well_formed = given.startswith(("qm-", "qm_"))
    matches = hmac.compare_digest(given.encode(), state.settings.api_key.encode())
    if not (well_formed and matches):
        return _error(401, "Invalid API key")
    return None


def _rate_limited(limiter: RateLimiter, key: str) -> Response[Any] | None:
    wait = limiter.retry_after(key)
    if wait is None:
        return None
    return _error(
        429,
        f"Rate limit exceeded ({limiter.per_minute} requests/minute) -- wait and retry",
        {"Retry-After": str(wait)},
    )


# ---------------------------------------------------------------------------------------------
# The webhook


@post("/api/webhooks/{slug:str}", status_code=200)
async def webhook(request: Request[Any, Any, Any], slug: PathText) -> Response[Any]:
    state = _state(request)
    state.counters.webhook_requests += 1
    body = await request.body()
    refused = _refuse_webhook(state, request, slug, body)
    if refused is not None:
        return refused
    try:
        job_request = msgspec.json.decode(body, type=qm.WebhookRequest)
        qm.validate_request(job_request)
    except (msgspec.DecodeError, RequestRejected) as exc:
        return _error(400, f"Invalid request: {exc}")
    job = _new_job(state, job_request, str(request.base_url).rstrip("/"))
    task = asyncio.create_task(_run_job(state, job))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return Response(
        {"accepted": True, "job_id": job.id, "message": "Webhook accepted, processing started"}
    )


def _refuse_webhook(
    state: SimState, request: Request[Any, Any, Any], slug: str, body: bytes
) -> Response[Any] | None:
    """The checks in the partner's order: key, signature, rate limit, then injected faults."""
    refused = _check_key(state, request)
    if refused is not None:
        return refused
    signature = request.headers.get(qm.PARTNER_SIGNATURE_HEADER.lower())
    if not verify(body, signature, (state.settings.webhook_secret,)):
        return _error(401, "Invalid or missing X-Partner-Signature")
    if state.settings.partner_slug and slug != state.settings.partner_slug:
        return _error(404, f"Unknown partner {slug!r}")
    limited = _rate_limited(state.webhook_limit, state.settings.api_key)
    if limited is not None:
        return limited
    if state.faults:
        fault = state.faults[0]
        fault.count -= 1
        if fault.count <= 0:
            state.faults.pop(0)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return _error(fault.status, fault.detail, headers)
    return None


def _new_job(state: SimState, request: qm.WebhookRequest, base_url: str) -> SimJob:
    outcome = str(request.custom_data.get("simulate", "passed"))
    if _failing(request) and outcome != "error":
        outcome = "failed"
    job = SimJob(
        id=f"pwj_{secrets.token_hex(12)}",
        request=request,
        outcome=outcome if outcome in OUTCOMES else "passed",
        base_url=base_url,
    )
    state.jobs[job.id] = job
    state.counters.jobs += 1
    return job


# What the AI "generated": plausible tests for a login-and-dashboard feature.
TEST_NAMES: Final = (
    "Login with valid credentials",
    "Dashboard shows the task sections",
    "Logout returns to the sign-in page",
)
FAILURE: Final = "Expected 4 task sections on /dashboard, found 3 (locator '.task-section')"
FAILURES: Final = {
    TEST_NAMES[0]: "Timed out after 30s waiting for the dashboard after signing in",
    TEST_NAMES[2]: "Expected the sign-in page after logout, stayed on /dashboard",
}


async def _run_job(state: SimState, job: SimJob) -> None:
    await asyncio.sleep(_delay(state, job))
    job.tests = _tests(state, job)
    job.duration_seconds = round(time.monotonic() - job.started, 2)
    body = msgspec.json.encode(_callback(job))
    job.status = await _deliver(state, job.request.callback_url, body)
    log.info("simulator.callback", job_id=job.id, outcome=job.outcome, delivery=job.status)


def _delay(state: SimState, job: SimJob) -> float:
    """``custom_data.simulate_delay`` (seconds) overrides the configured delay for one job."""
    value = job.request.custom_data.get("simulate_delay")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 3600:
        return float(value)
    return state.settings.delay


def _failing(request: qm.WebhookRequest) -> list[str]:
    """``custom_data.simulate_failing``: the names of the tests to fail, if it lists any."""
    names = request.custom_data.get("simulate_failing")
    if not isinstance(names, list):
        return []
    return [name for name in names if name in TEST_NAMES]


def _tests(state: SimState, job: SimJob) -> list[SimTest]:
    if job.outcome == "error":
        return []
    failing = _failing(job.request) or ([TEST_NAMES[1]] if job.outcome == "failed" else [])
    tests = []
    for index, name in enumerate(TEST_NAMES):
        execution_id = f"exec_{job.id[4:16]}_{index + 1}"
        failed = name in failing
        test = SimTest(
            test=name,
            status="failed" if failed else "passed",
            duration_ms=2100 + 900 * index,
            screenshot_url=f"{job.base_url}/static/test-executions/{execution_id}/screenshot.png",
            video_url=f"{job.base_url}/static/test-executions/{execution_id}/video.webm",
            execution_id=execution_id,
            error=FAILURES.get(name, FAILURE) if failed else None,
        )
        state.executions[execution_id] = test
        tests.append(test)
    return tests


def _callback(job: SimJob) -> dict[str, Any]:
    failed = [t for t in job.tests if t.status == "failed"]
    results: dict[str, Any] = {
        "status": job.outcome,
        "total_tests": len(job.tests),
        "passed": len(job.tests) - len(failed),
        "failed": len(failed),
        "duration_ms": int((job.duration_seconds or 0) * 1000) + 52_000,
        "tests": [msgspec.to_builtins(t) for t in job.tests],
        "failures": [{"test": t.test, "error": t.error} for t in failed],
    }
    if job.outcome == "error":
        # No report page for a run that never started: receiver links the job report instead.
        results["failures"] = [f"Crawl failed: {job.request.url} did not load within 30s"]
    else:
        results["report_app_url"] = f"{job.base_url}/reports/{job.id}"
    summary = (
        "AI crawl failed, no tests generated"
        if job.outcome == "error"
        else f"AI crawl completed, {len(job.tests)} tests generated and executed"
    )
    return {
        "event": "test_results",
        "job_id": job.id,
        "custom_data": job.request.custom_data,
        "workflow_summary": summary,
        "results": results,
    }


async def _deliver(state: SimState, url: str, body: bytes) -> str:
    """POST the signed callback; a few quick retries, as a partner would."""
    headers = {
        "Content-Type": "application/json",
        "X-QualityMax-Signature": sign(body, state.settings.webhook_secret),
        "User-Agent": "QualityMax-Simulator/1",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        for attempt in range(3):
            try:
                response = await http.post(url, content=body, headers=headers)
                if response.status_code < 500:
                    state.counters.callbacks_sent += 1
                    return "callback_sent" if response.is_success else "callback_refused"
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5 * (attempt + 1))
    state.counters.callbacks_failed += 1
    return "callback_failed"


# ---------------------------------------------------------------------------------------------
# Free endpoints: reports and artifacts (API key, 60/min)


def _free_endpoint(state: SimState, request: Request[Any, Any, Any]) -> Response[Any] | None:
    return _check_key(state, request) or _rate_limited(state.free_limit, state.settings.api_key)


@get("/api/v1/partner/jobs/{job_id:str}/report")
async def report(request: Request[Any, Any, Any], job_id: PathText) -> Response[Any]:
    state = _state(request)
    refused = _free_endpoint(state, request)
    if refused is not None:
        return refused
    job = state.jobs.get(job_id)
    if job is None:
        return _error(404, f"Job {job_id} not found")
    return Response(_report(job))


def _report(job: SimJob) -> dict[str, Any]:
    failed = sum(1 for t in job.tests if t.status == "failed")
    score = 0 if job.outcome == "error" else 96 - 30 * failed
    return {
        "job": {
            "id": job.id,
            "status": job.status,
            "url": job.request.url,
            "tests_generated": len(job.tests),
            "duration_seconds": job.duration_seconds,
            "quality_score": score,
        },
        "crawl": {
            "status": "failed" if job.outcome == "error" else "completed",
            "pages_crawled": 0 if job.outcome == "error" else 1,
        },
        "scripts": [
            {"id": 100 + i, "name": t.test.lower().replace(" ", "-"), "framework": "playwright"}
            for i, t in enumerate(job.tests)
        ],
        "executions": [{"status": t.status, "duration": t.duration_ms} for t in job.tests],
    }


@get("/api/v1/partner/artifacts/{execution_id:str}/{kind:str}")
async def artifact(
    request: Request[Any, Any, Any], execution_id: PathText, kind: PathText
) -> Response[Any]:
    state = _state(request)
    refused = _free_endpoint(state, request)
    if refused is not None:
        return refused
    test = state.executions.get(execution_id)
    if test is None:
        return _error(404, f"Execution {execution_id} not found")
    if kind == "screenshot":
        return Redirect(test.screenshot_url, status_code=302)
    if kind == "video":
        return Redirect(test.video_url, status_code=302)
    if kind == "logs":
        return Response(_logs(test))
    return _error(404, f"No artifact {kind!r}; use screenshot, video or logs")


def _logs(test: SimTest) -> dict[str, Any]:
    verdict = "FAIL" if test.status == "failed" else "PASS"
    slug = test.test.lower().replace(" ", "-")
    return {
        "console_logs": [{"message": f"Running {test.test}", "type": "info"}],
        "test_output": f"Running 1 test...\n  {verdict} {slug}.spec.ts",
        "error_message": test.error,
    }


@get("/static/test-executions/{execution_id:str}/{name:str}", sync_to_thread=False)
def static_artifact(
    request: Request[Any, Any, Any], execution_id: PathText, name: PathText
) -> Response[Any]:
    if execution_id not in _state(request).executions:
        return _error(404, "Not found")
    if name == "screenshot.png":
        return Response(PIXEL_PNG, media_type="image/png")
    if name == "video.webm":
        return Response(WEBM_STUB, media_type="video/webm")
    return _error(404, "Not found")


@get("/reports/{job_id:str}", sync_to_thread=False)
def report_page(request: Request[Any, Any, Any], job_id: PathText) -> Response[Any]:
    job = _state(request).jobs.get(job_id)
    if job is None:
        return _error(404, f"Job {job_id} not found")
    rows = "".join(f"<li>{t.status}: {t.test}</li>" for t in job.tests)
    html = f"<h1>QualityMax (simulated) report {job.id}</h1><p>{job.request.url}</p><ul>{rows}</ul>"
    return Response(html, media_type="text/html")


# ---------------------------------------------------------------------------------------------
# Test controls and health


@post("/_simulator/faults", status_code=200)
async def add_fault(
    request: Request[Any, Any, Any],
    data: Annotated[Fault, Body(media_type=RequestEncodingType.JSON)],
) -> dict[str, int]:
    state = _state(request)
    state.faults.append(data)
    return {"pending_faults": len(state.faults)}


@get("/_simulator/counters", sync_to_thread=False)
def counters(request: Request[Any, Any, Any]) -> Counters:
    return _state(request).counters


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def create_simulator(settings: SimulatorSettings) -> Litestar:
    app = Litestar(
        route_handlers=[
            webhook,
            report,
            artifact,
            static_artifact,
            report_page,
            add_fault,
            counters,
            health,
        ],
        debug=False,
        logging_config=None,
        openapi_config=None,
    )
    app.state.sim = SimState(
        settings=settings,
        webhook_limit=RateLimiter(settings.webhook_per_minute),
        free_limit=RateLimiter(settings.free_per_minute),
    )
    return app


def app_from_environment() -> Litestar:
    """The factory granian calls in its worker: settings from the environment."""
    from receiver.logs import configure
    from receiver.server import die_with_parent

    configure()
    die_with_parent()
    return create_simulator(SimulatorSettings.from_environment(os.environ))
