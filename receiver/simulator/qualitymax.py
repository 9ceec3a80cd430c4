"""A local QualityMax partner API, built from its document (shared/providers/...partner-api.txt).

It answers exactly what the document shows, field for field, and refuses what it does not
describe: its request shapes are its own (not the client's, so a field the client drops cannot
go unseen), each refusing unknown fields; paths the document lacks answer 404. It checks
``X-QualityMax-API-Key`` and ``X-Partner-Signature``, applies the documented rate limits (10/min
for the LLM endpoints, 60/min for the free ones, 10/min more for repository import and SAST
scans; 429 with ``Retry-After``), answers ``{accepted, job_id}`` and, after a short delay, POSTs
a signed ``test_results`` callback (without a ``job_id``: the document's has none) to the job's
``callback_url``. Reports, artifacts, repositories, SAST scans, gap analyses and test cases live
in memory; a scan or an analysis moves one step each time it is asked about.
``custom_data.simulate`` steers a webhook job's outcome: ``passed`` (the default), ``failed`` or
``error``; ``custom_data.simulate_failing`` (a list of test names) which tests fail (``failed``
alone fails the second); ``custom_data.simulate_delay`` the seconds before the callback.
Repository 42 (the document's) scans with verdict ``pass``; repository 43 (``insecure-shop``)
with ``fail``.

Two extra paths under ``/_simulator`` exist for tests only: inject faults (``503`` once, say) and
count the webhook requests that arrived.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import math
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, TypeVar

import httpx
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, PathParameter
from litestar.response import Redirect

from receiver.logs import get_logger
from receiver.providers import qualitymax as qm
from receiver.signatures import sign, verify
from receiver.simulator.common import RateWindow

Item = TypeVar("Item")
Step = TypeVar("Step")

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
    webhook_per_minute: int = 10  # every LLM endpoint together: the webhook is one
    free_per_minute: int = 60
    endpoint_per_minute: int = 10  # repository import and SAST scan, each on top of free
    window_seconds: float = 60.0  # the document's minute; tests shorten it

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


# -- the requests, as the document describes them (refusing any other field) -----------------


class DocAuth(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str  # the document's request carries it: a client that drops it is refused
    username: str | None = None
    password: str | None = None


class DocOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    browser: str = "chromium"
    headless: bool = True
    skip_cookie_consent: bool = False
    quality_threshold: int = 45
    auto_execute: bool = True


class DocWebhook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: str
    feature_description: str
    callback_url: str
    auth: DocAuth | None = None
    custom_data: dict[str, Any] = msgspec.field(default_factory=dict)
    options: DocOptions | None = None


class DocImport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: str
    branch: str = "main"
    name: str | None = None
    base_url: str | None = None


class DocScan(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    repository_id: int
    branch: str = "main"
    engines: list[str] = msgspec.field(default_factory=lambda: ["semgrep", "bandit"])


class DocApiTests(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    openapi_spec: str | None = None
    openapi_url: str | None = None
    project_id: int | None = None
    instructions: str | None = None


class DocTestCase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_id: int
    title: str
    description: str | None = None
    steps: str | None = None
    expected_results: str | None = None
    category: str | None = None
    priority: int | None = None
    tags: list[str] = msgspec.field(default_factory=list)


class DocGenerate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_id: int
    description: str
    count: int = 5


class DocGap(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    repository_id: int
    categories: list[str]
    max_tests_per_category: int = 10


BROWSERS: Final = ("chromium", "firefox", "webkit")
ENGINES: Final = ("semgrep", "bandit")
MAX_URL: Final = 2048
MAX_FEATURE: Final = 8000
MAX_CUSTOM_DATA: Final = 4096


def _webhook_problem(body: DocWebhook) -> str | None:
    """The document's limits, checked here on their own (not with the client's code)."""
    for field_name, value, limit in (
        ("url", body.url, MAX_URL),
        ("feature_description", body.feature_description, MAX_FEATURE),
        ("callback_url", body.callback_url, MAX_URL),
    ):
        if not value.strip() or len(value) > limit:
            return f"{field_name} is required, at most {limit} characters"
    if len(msgspec.json.encode(body.custom_data)) > MAX_CUSTOM_DATA:
        return "custom_data is over 4KB"
    if body.auth is not None and body.auth.type != "user_login":
        return f"auth.type {body.auth.type!r} is not supported; use user_login"
    options = body.options
    if options is not None and options.browser not in BROWSERS:
        return f"options.browser must be one of {', '.join(BROWSERS)}"
    if options is not None and not 0 <= options.quality_threshold <= 100:
        return "options.quality_threshold must be 0-100"
    return None


class SimTest(msgspec.Struct, kw_only=True):
    """A test of the callback, exactly the document's fields (its error is kept aside)."""

    test: str
    status: str
    duration_ms: int
    screenshot_url: str
    video_url: str
    execution_id: str


class SimJob(msgspec.Struct, kw_only=True):
    id: str
    request: DocWebhook
    outcome: str
    base_url: str
    status: str = "processing"
    tests: list[SimTest] = msgspec.field(default_factory=list)
    errors: dict[str, str] = msgspec.field(default_factory=dict)  # execution id -> failure
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
    requests: dict[str, int] = msgspec.field(default_factory=dict)  # by endpoint, all answers


class Rates(msgspec.Struct, kw_only=True):
    """``GET /_simulator/rates``: per window, requests admitted and the most seen in one window."""

    limits: dict[str, int]
    window_seconds: float
    admitted: dict[str, int]
    max_in_window: dict[str, int]
    limited: int


@dataclass
class Repository:
    id: int
    project_id: int
    name: str
    url: str
    insecure: bool = False


@dataclass
class Scan:
    id: str
    repository: Repository
    reads: int = 0


@dataclass
class Gap:
    id: str
    request: DocGap
    reads: int = 0


@dataclass
class SimState:
    settings: SimulatorSettings
    llm: RateWindow
    free: RateWindow
    endpoints: RateWindow
    jobs: dict[str, SimJob] = field(default_factory=dict)
    executions: dict[str, SimTest] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # execution id -> its failure
    faults: list[Fault] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    repositories: dict[int, Repository] = field(default_factory=dict)
    scans: dict[str, Scan] = field(default_factory=dict)
    gaps: dict[str, Gap] = field(default_factory=dict)
    test_cases: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))


def _state(request: Request[Any, Any, Any]) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _error(status_code: int, detail: Any, headers: dict[str, str] | None = None) -> Response[Any]:
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


def _rate_limited(state: SimState, *groups: str) -> Response[Any] | None:
    """Counted in each window its endpoint belongs to: ``llm``, ``free``, or its own."""
    for group in groups:
        window = {"llm": state.llm, "free": state.free}.get(group, state.endpoints)
        verdict = window.admit(state.settings.api_key, group)
        if not verdict.admitted:
            wait = max(1, math.ceil(verdict.retry_after))
            return _error(
                429,
                f"Rate limit exceeded ({window.limit} requests/minute) -- wait and retry",
                {"Retry-After": str(wait)},
            )
    return None


def _count(state: SimState, endpoint: str) -> None:
    state.counters.requests[endpoint] = state.counters.requests.get(endpoint, 0) + 1


def _decode(body: bytes, kind: type[Any]) -> Any:
    """FastAPI's 422 for a body of the wrong shape, naming where."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=422, detail=f"Invalid request: {exc}") from None


class Refused(Exception):
    """What the partner API answers instead of doing the work (401, 404, 429): raised from
    anywhere in a handler, answered as it is (see create_simulator)."""

    def __init__(self, response: Response[Any]) -> None:
        super().__init__(response.status_code)
        self.response = response


def _admitted(request: Request[Any, Any, Any], endpoint: str, *groups: str) -> SimState:
    """The request counted, then let through by the key and its rate windows (else Refused)."""
    state = _state(request)
    _count(state, endpoint)
    refused = _check_key(state, request) or _rate_limited(state, *groups)
    if refused is not None:
        raise Refused(refused)
    return state


def _found(items: Mapping[str, Item], key: str, what: str) -> Item:
    """``items[key]``, or the partner's 404 naming ``what``."""
    item = items.get(key)
    if item is None:
        raise Refused(_error(404, f"{what} {key} not found"))
    return item


def _next_step(job: Scan | Gap, steps: tuple[Step, ...]) -> Step | None:
    """What a poll sees while the job runs (each poll moves it one step); None once it ended."""
    job.reads += 1
    return steps[job.reads - 1] if job.reads <= len(steps) else None


def _started(job_id: str, status: str, status_url: str) -> Response[Any]:
    """The answer of ``POST /sast/scan`` and ``POST /gap-analysis``: a job to poll."""
    return Response({"job_id": job_id, "status": status, "status_url": status_url})


# ---------------------------------------------------------------------------------------------
# The webhook


@post("/api/webhooks/{slug:str}", status_code=200)
async def webhook(request: Request[Any, Any, Any], slug: PathText) -> Response[Any]:
    state = _state(request)
    state.counters.webhook_requests += 1
    _count(state, "webhook")
    body = await request.body()
    refused = _refuse_webhook(state, request, slug, body)
    if refused is not None:
        return refused
    try:
        job_request = msgspec.json.decode(body, type=DocWebhook)
    except msgspec.DecodeError as exc:
        return _error(400, f"Invalid request: {exc}")
    if problem := _webhook_problem(job_request):
        return _error(400, f"Invalid request: {problem}")
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
    limited = _rate_limited(state, "llm")
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


def _new_job(state: SimState, request: DocWebhook, base_url: str) -> SimJob:
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


def _failing(request: DocWebhook) -> list[str]:
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
        )
        if failed:
            job.errors[execution_id] = state.errors[execution_id] = FAILURES.get(name, FAILURE)
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
        "failures": [{"test": t.test, "error": job.errors[t.execution_id]} for t in failed],
    }
    if job.outcome == "error":
        # No report page for a run that never started: receiver links its own result page.
        results["failures"] = [f"Crawl failed: {job.request.url} did not load within 30s"]
    else:
        results["report_app_url"] = f"{job.base_url}/reports/{job.id}"
    summary = (
        "AI crawl failed, no tests generated"
        if job.outcome == "error"
        else f"AI crawl completed, {len(job.tests)} tests generated and executed"
    )
    return {  # the document's callback: no job_id (receiver knows the job by its URL)
        "event": "test_results",
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


@get("/api/v1/partner/jobs/{job_id:str}/report")
async def report(request: Request[Any, Any, Any], job_id: PathText) -> Response[Any]:
    state = _admitted(request, "report", "free")
    return Response(_report(_found(state.jobs, job_id, "Job")))


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
    state = _admitted(request, f"artifact_{kind}", "free")
    test = _found(state.executions, execution_id, "Execution")
    if kind == "screenshot":
        return Redirect(test.screenshot_url, status_code=302)
    if kind == "video":
        return Redirect(test.video_url, status_code=302)
    if kind == "logs":
        return Response(_logs(test, state.errors.get(execution_id)))
    return _error(404, f"No artifact {kind!r}; use screenshot, video or logs")


def _logs(test: SimTest, error: str | None) -> dict[str, Any]:
    verdict = "FAIL" if test.status == "failed" else "PASS"
    slug = test.test.lower().replace(" ", "-")
    return {
        "console_logs": [{"message": f"Navigation to {test.test}", "type": "info"}],
        "test_output": f"Running 1 test...\n  {verdict} {slug}.spec.ts",
        "error_message": error,
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
# Repositories, SAST scans, API tests, test cases and gap analysis


REPO_NOT_FOUND: Final = (
    "Repository not found. Import it first via POST /api/v1/partner/repositories/import"
)
PASS_FINDINGS: Final = (  # the document's example: a high finding does not fail the verdict
    ("sql-injection", "high", "src/db.py", 42, "Possible SQL injection", "CWE-89"),
    ("weak-hash", "medium", "src/auth.py", 17, "MD5 used for hashing", "CWE-328"),
    ("debug-enabled", "medium", "src/settings.py", 3, "Debug mode enabled", "CWE-489"),
)
FAIL_FINDINGS: Final = (
    ("hardcoded-secret", "critical", "src/config.py", 8, "Hard-coded API secret", "CWE-798"),
    *PASS_FINDINGS[:2],
    ("shell-injection", "high", "src/run.py", 55, "subprocess with shell=True", "CWE-78"),
    ("assert-used", "low", "src/check.py", 12, "assert used for a check", "CWE-703"),
)
SCAN_STEPS: Final = ("pending", "running")
GAP_STEPS: Final = (("queued", 0.0), ("running", 0.5))


@post("/api/v1/partner/repositories/import", status_code=200)
async def import_repository(request: Request[Any, Any, Any]) -> Response[Any]:
    state = _admitted(request, "repositories_import", "import", "free")
    body: DocImport = _decode(await request.body(), DocImport)
    if not body.url.startswith(("https://github.com/", "https://gitlab.com/")):
        return _error(400, "url must be a GitHub or GitLab HTTPS URL")
    found = next((r for r in state.repositories.values() if r.url == body.url), None)
    if found is None:
        name = body.name or body.url.rstrip("/").rsplit("/", 1)[-1]
        found = Repository(
            next(state.ids), next(state.ids), name, body.url, insecure="insecure" in body.url
        )
        state.repositories[found.id] = found
        existed = False
    else:
        existed = True
    return Response(
        {
            "success": True,
            "repository_id": found.id,
            "project_id": found.project_id,
            "name": found.name,
            "already_exists": existed,
        }
    )


@post("/api/v1/partner/sast/scan", status_code=200)
async def sast_scan(request: Request[Any, Any, Any]) -> Response[Any]:
    state = _admitted(request, "sast_scan", "sast_scan", "free")
    body: DocScan = _decode(await request.body(), DocScan)
    repository = state.repositories.get(body.repository_id)
    if repository is None:
        return _error(404, REPO_NOT_FOUND)
    if unknown := [e for e in body.engines if e not in ENGINES]:
        return _error(400, f"Unknown engine {unknown[0]!r}; use semgrep or bandit")
    scan = Scan(f"scan_{secrets.token_hex(6)}", repository)
    state.scans[scan.id] = scan
    return _started(scan.id, "pending", f"/api/v1/partner/sast/scan/{scan.id}")


@get("/api/v1/partner/sast/scan/{scan_id:str}")
async def sast_result(request: Request[Any, Any, Any], scan_id: PathText) -> Response[Any]:
    scan = _found(_admitted(request, "sast_result", "free").scans, scan_id, "Scan")
    if (status := _next_step(scan, SCAN_STEPS)) is not None:
        return Response({"scan_id": scan.id, "status": status, "verdict": None})
    found = FAIL_FINDINGS if scan.repository.insecure else PASS_FINDINGS
    findings = [
        {"rule_id": r, "severity": sev, "file": f, "line_start": n, "message": m, "cwe_id": c}
        for r, sev, f, n, m, c in found
    ]
    severities = [f[1] for f in found]
    return Response(
        {
            "scan_id": scan.id,
            "status": "completed",
            "verdict": "fail" if "critical" in severities else "pass",
            "findings_count": len(findings),
            "critical_count": severities.count("critical"),
            "high_count": severities.count("high"),
            "medium_count": severities.count("medium"),
            "findings": findings,
        }
    )


@post("/api/v1/partner/api-tests/generate", status_code=200)
async def generate_api_tests(request: Request[Any, Any, Any]) -> Response[Any]:
    _admitted(request, "api_tests_generate", "llm")
    body: DocApiTests = _decode(await request.body(), DocApiTests)
    if bool(body.openapi_spec) == bool(body.openapi_url):
        return _error(400, "Provide either openapi_spec or openapi_url")
    # The document shows no answer; this is the least a caller needs to go on.
    return Response({"success": True, "project_id": body.project_id, "tests_generated": 4})


@post("/api/v1/partner/test-cases", status_code=200)
async def create_test_case(request: Request[Any, Any, Any]) -> Response[Any]:
    state = _admitted(request, "test_cases", "free")
    body: DocTestCase = _decode(await request.body(), DocTestCase)
    if not _has_project(state, body.project_id):
        return _error(404, f"Project {body.project_id} not found")
    state.test_cases += 1
    # The document shows no answer; an id and the title are the least a caller needs.
    return Response({"id": state.test_cases, "project_id": body.project_id, "title": body.title})


@post("/api/v1/partner/test-cases/generate", status_code=200)
async def generate_test_cases(request: Request[Any, Any, Any]) -> Response[Any]:
    state = _admitted(request, "test_cases_generate", "llm")
    body: DocGenerate = _decode(await request.body(), DocGenerate)
    if not _has_project(state, body.project_id):
        return _error(404, f"Project {body.project_id} not found")
    if not 1 <= body.count <= 50:
        return _error(400, "count must be 1-50")
    made = []
    for n in range(body.count):
        state.test_cases += 1
        made.append({"id": state.test_cases, "title": f"{body.description[:60]} ({n + 1})"})
    return Response({"project_id": body.project_id, "test_cases": made})


@post("/api/v1/partner/gap-analysis", status_code=200)
async def gap_analysis(request: Request[Any, Any, Any]) -> Response[Any]:
    state = _admitted(request, "gap_analysis", "llm")
    body: DocGap = _decode(await request.body(), DocGap)
    if body.repository_id not in state.repositories:
        return _error(404, REPO_NOT_FOUND)
    if not body.categories:
        return _error(400, "categories must not be empty")
    gap = Gap(f"gap_analysis_{secrets.token_hex(6)}", body)
    state.gaps[gap.id] = gap
    return _started(gap.id, "queued", f"/api/v1/partner/gap-analysis/{gap.id}")


@get("/api/v1/partner/gap-analysis/{job_id:str}")
async def gap_status(request: Request[Any, Any, Any], job_id: PathText) -> Response[Any]:
    gap = _found(_admitted(request, "gap_analysis_status", "free").gaps, job_id, "Gap analysis")
    if (step := _next_step(gap, GAP_STEPS)) is not None:
        status, progress = step
        return Response({"job_id": gap.id, "status": status, "progress": progress})
    per = min(gap.request.max_tests_per_category, 5)
    categories = {c: per for c in gap.request.categories}
    return Response(
        {
            "job_id": gap.id,
            "status": "completed",
            "progress": 1.0,
            "result": {"tests_generated": sum(categories.values()), "categories": categories},
        }
    )


def _has_project(state: SimState, project_id: int) -> bool:
    return any(r.project_id == project_id for r in state.repositories.values())


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


@get("/_simulator/rates", sync_to_thread=False)
def rates(request: Request[Any, Any, Any]) -> Rates:
    state = _state(request)
    windows = (state.llm, state.free, state.endpoints)
    admitted: dict[str, int] = {}
    most: dict[str, int] = {}
    for window in windows:
        admitted.update(window.admitted)
        most.update(window.max_in_window)
    return Rates(
        limits={
            "llm": state.llm.limit,
            "free": state.free.limit,
            "import": state.endpoints.limit,
            "sast_scan": state.endpoints.limit,
        },
        window_seconds=state.settings.window_seconds,
        admitted=admitted,
        max_in_window=most,
        limited=sum(w.limited for w in windows),
    )


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
            import_repository,
            sast_scan,
            sast_result,
            generate_api_tests,
            create_test_case,
            generate_test_cases,
            gap_analysis,
            gap_status,
            add_fault,
            counters,
            rates,
            health,
        ],
        exception_handlers={HTTPException: _http_error, Refused: _refused},
        debug=False,
        logging_config=None,
        openapi_config=None,
    )
    window = settings.window_seconds
    state = app.state.sim = SimState(
        settings=settings,
        llm=RateWindow(settings.webhook_per_minute, window),
        free=RateWindow(settings.free_per_minute, window),
        endpoints=RateWindow(settings.endpoint_per_minute, window),
    )
    # The document's own examples name repository 42 of project 15: they work as shown.
    state.repositories[42] = Repository(
        42, 15, "your-repo", "https://github.com/your-org/your-repo"
    )
    state.repositories[43] = Repository(
        43, 16, "insecure-shop", "https://github.com/your-org/insecure-shop", insecure=True
    )
    return app


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return _error(exc.status_code, exc.detail)


def _refused(_: Request[Any, Any, Any], exc: Refused) -> Response[Any]:
    return exc.response


def app_from_environment() -> Litestar:
    """The factory granian calls in its worker: settings from the environment."""
    from receiver.logs import configure
    from receiver.server import die_with_parent

    configure()
    die_with_parent()
    return create_simulator(SimulatorSettings.from_environment(os.environ))
