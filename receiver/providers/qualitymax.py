"""QualityMax: the callback payload as its partner API documents it, and its normalisation.

Unknown fields are ignored by the structs (the raw body is stored verbatim anyway), so a new field
or a new ``event`` value from QualityMax is taken, never rejected.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final, Literal

import msgspec

from receiver import limits
from receiver.config import Config, QualityMaxSettings
from receiver.providers.base import JobBody, Outgoing, Progress, Sent
from receiver.providers.errors import MaybeReceived, NotConfigured, RequestRejected
from receiver.providers.http import Api, RetryPolicy
from receiver.providers.window import Clock, Sleep, SlidingWindow
from receiver.results import (
    Coverage,
    CustomData,
    Failure,
    Finding,
    Result,
    Security,
    TestCase,
    normalise_status,
    severity_rank,
)
from receiver.signatures import sign

NAME = "qualitymax"
SIGNATURE_HEADER = "x-qualitymax-signature"


class CallbackTest(msgspec.Struct, kw_only=True):
    test: str | None = None
    name: str | None = None
    status: str | None = None
    duration_ms: int | float | None = None
    screenshot_url: str | None = None
    video_url: str | None = None
    execution_id: str | None = None
    error: str | None = None
    error_message: str | None = None


class CallbackFailure(msgspec.Struct, kw_only=True):
    test: str | None = None
    name: str | None = None
    error: str | None = None
    message: str | None = None
    error_message: str | None = None


class CallbackResults(msgspec.Struct, kw_only=True):
    status: str | None = None
    # Bounded while decoding: a count SQLite cannot hold is refused with its path named.
    total_tests: limits.Count | None = None
    passed: limits.Count | None = None
    failed: limits.Count | None = None
    duration_ms: int | float | None = None
    report_app_url: str | None = None
    report_url: str | None = None
    tests: list[CallbackTest] = msgspec.field(default_factory=list)
    # The document shows only an empty list; accept plain strings and objects alike.
    failures: list[str | CallbackFailure] = msgspec.field(default_factory=list)


class Callback(msgspec.Struct, kw_only=True):
    event: str = "test_results"
    job_id: str | None = None
    custom_data: CustomData = msgspec.field(default_factory=dict)
    workflow_summary: str | None = None
    results: CallbackResults | None = None


def decode_callback(body: bytes) -> Callback:
    """Decode a callback body; raises msgspec.DecodeError / ValidationError on bad input,
    nesting too deep included (anywhere, or in custom_data beyond MAX_CUSTOM_DATA_DEPTH)."""
    try:
        callback = msgspec.json.decode(body, type=Callback)
    except RecursionError:  # nested beyond Python's stack, even in a field that is skipped
        depth, field = limits.nesting(body)
        raise msgspec.ValidationError(
            f"Nested {depth} levels deep, too deep to decode - at `$.{field or '...'}`"
        ) from None
    if limits.too_deep(callback.custom_data, limits.MAX_CUSTOM_DATA_DEPTH):
        raise msgspec.ValidationError(
            f"Nested deeper than {limits.MAX_CUSTOM_DATA_DEPTH} levels, the most custom_data "
            "may have - at `$.custom_data`"
        )
    return callback


def to_result(callback: Callback) -> Result | None:
    """The normalised result a callback carries; None for an event without one."""
    results = callback.results
    if results is None:
        return None
    tests = [_test_case(t) for t in results.tests]
    passed = results.passed if results.passed is not None else _count(tests, "passed")
    failed = results.failed if results.failed is not None else _count(tests, "failed")
    return Result(
        provider=NAME,
        event=callback.event,
        status=normalise_status(results.status),
        raw_status=results.status,
        total=results.total_tests if results.total_tests is not None else len(tests),
        passed=passed,
        failed=failed,
        duration_ms=limits.duration_ms(results.duration_ms),
        report_url=results.report_app_url or results.report_url,
        summary=callback.workflow_summary,
        external_job_id=callback.job_id,
        custom_data=callback.custom_data,
        tests=tests,
        failures=_failures(results, tests),
    )


def _test_case(test: CallbackTest) -> TestCase:
    return TestCase(
        name=test.test or test.name or "(unnamed test)",
        status=normalise_status(test.status) if test.status else "error",
        duration_ms=limits.duration_ms(test.duration_ms),
        error=test.error or test.error_message,
        screenshot_url=test.screenshot_url,
        video_url=test.video_url,
        execution_id=test.execution_id,
    )


def _failures(results: CallbackResults, tests: list[TestCase]) -> list[Failure]:
    failures = [_failure(f) for f in results.failures]
    if failures:
        return failures
    # No explicit list: the failing tests with their errors are the failures.
    return [
        Failure(test=t.name, error=t.error or t.status)
        for t in tests
        if t.status in ("failed", "error", "timeout")
    ]


def _failure(failure: str | CallbackFailure) -> Failure:
    if isinstance(failure, str):
        return Failure(error=failure)
    error = failure.error or failure.message or failure.error_message or "(no message)"
    return Failure(test=failure.test or failure.name, error=error)


def _count(tests: list[TestCase], status: str) -> int:
    return sum(1 for t in tests if t.status == status)


# ---------------------------------------------------------------------------------------------
# The partner API: submit a job (the AI test-generation webhook), read reports and artifacts.
#
# Every documented limit is checked before anything is sent, so a refused job never reaches the
# partner. The shared client (receiver.providers.http) retries a submit only where QualityMax
# cannot have taken it (no connection, 429, 503): a submit may start a paid LLM job.

API_KEY_HEADER = "X-QualityMax-API-Key"
PARTNER_SIGNATURE_HEADER = "X-Partner-Signature"
PARTNER_API_PATH = "/api/v1/partner"
LABEL = "QualityMax"
BROWSERS = ("chromium", "firefox", "webkit")
AUTH_TYPES = ("user_login",)
MAX_URL_CHARS = 2048
MAX_FEATURE_CHARS = 8000
MAX_CUSTOM_DATA_BYTES = 4096
ARTIFACT_KINDS = ("screenshot", "video", "logs")
ENGINES: Final = ("semgrep", "bandit")
MASK: Final = "****"  # a secret the job row does not keep

# The kinds of job POST /api/jobs takes for QualityMax (DESIGN.md), and what a polled one's
# external id names (jobs.external_kind).
Kind = Literal["tests", "sast", "gap_analysis"]
SAST_SCAN: Final = "sast_scan"
GAP_ANALYSIS: Final = "gap_analysis"

# The documented limits, kept before sending: every LLM endpoint together 10 a minute, the free
# ones 60, and repository import and SAST scans 10 each on top of the free 60.
LLM: Final = "llm"
FREE: Final = "free"
IMPORT: Final = "import"
SCAN: Final = "sast_scan"
LIMITS: Final = {LLM: 10, FREE: 60, IMPORT: 10, SCAN: 10}
RATE_WINDOW: Final = 60.0
WEBHOOK_WINDOWS: Final = (LLM,)
SCAN_WINDOWS: Final = (SCAN, FREE)
GAP_WINDOWS: Final = (LLM,)
MAX_FINDINGS_KEPT: Final = 500  # worst first; findings_count still says how many there were
# The caller of POST /api/jobs waits meanwhile: a few quick tries, then say so.
SUBMIT_POLICY = RetryPolicy(attempts=4, wait_initial=0.5, wait_max=10.0, timeout=60.0)
MAYBE_RECEIVED = (
    "; QualityMax may or may not have received the job: check it there before submitting again"
)


class Auth(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Sent whole: the document's request carries ``type`` too."""

    type: str = "user_login"
    username: str | None = None
    password: str | None = None


class Options(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    browser: str = "chromium"
    headless: bool = True
    skip_cookie_consent: bool = False
    quality_threshold: int = 45
    auto_execute: bool = True


class WebhookRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of ``POST /api/webhooks/{partner_slug}``, as the partner API documents it."""

    url: str
    feature_description: str
    callback_url: str
    auth: Auth | None = None
    custom_data: CustomData = msgspec.field(default_factory=dict)
    options: Options | None = None


class WebhookResponse(msgspec.Struct, kw_only=True):
    accepted: bool
    job_id: str
    message: str | None = None


class ReportJob(msgspec.Struct, kw_only=True):
    id: str
    status: str | None = None
    url: str | None = None
    tests_generated: int | None = None
    duration_seconds: float | None = None
    quality_score: float | None = None


class JobReport(msgspec.Struct, kw_only=True):
    """``GET /jobs/{job_id}/report``; only the parts receiver shows are typed, the rest ignored."""

    job: ReportJob
    crawl: dict[str, Any] = msgspec.field(default_factory=dict)
    scripts: list[dict[str, Any]] = msgspec.field(default_factory=list)
    executions: list[dict[str, Any]] = msgspec.field(default_factory=list)


class ConsoleLog(msgspec.Struct, kw_only=True):
    message: str
    type: str | None = None


class ExecutionLogs(msgspec.Struct, kw_only=True):
    console_logs: list[ConsoleLog] = msgspec.field(default_factory=list)
    test_output: str | None = None
    error_message: str | None = None


def validate_request(request: WebhookRequest) -> None:
    """Raise RequestRejected naming the first field that breaks a documented limit."""
    _check_url("url", request.url)
    _check_text("feature_description", request.feature_description, MAX_FEATURE_CHARS)
    _check_url("callback_url", request.callback_url)
    custom_data = limits.custom_data_problem(request.custom_data)
    if custom_data is not None:
        raise _invalid(*custom_data)
    size = len(msgspec.json.encode(request.custom_data))
    if size > MAX_CUSTOM_DATA_BYTES:
        raise _invalid(
            "custom_data", f"is {size} bytes serialised; the limit is {MAX_CUSTOM_DATA_BYTES}"
        )
    auth = request.auth
    if auth is not None:
        if auth.type not in AUTH_TYPES:
            raise _invalid("auth.type", f"{auth.type!r} is not one of {', '.join(AUTH_TYPES)}")
        if not (auth.username and auth.password):
            raise _invalid("auth", "user_login needs both username and password")
    options = request.options
    if options is not None:
        if options.browser not in BROWSERS:
            raise _invalid(
                "options.browser", f"{options.browser!r} is not one of {', '.join(BROWSERS)}"
            )
        if not 0 <= options.quality_threshold <= 100:
            raise _invalid(
                "options.quality_threshold",
                f"{options.quality_threshold} is outside 0-100",
            )


def _check_text(field: str, value: str, limit: int) -> None:
    if not value.strip():
        raise _invalid(field, "is required")
    if len(value) > limit:
        raise _invalid(field, f"is {len(value)} characters; the limit is {limit}")


def _check_url(field: str, value: str) -> None:
    _check_text(field, value, MAX_URL_CHARS)
    if not value.startswith(("http://", "https://")):
        raise _invalid(field, f"must be an http:// or https:// URL, not {value[:60]!r}")


def encode_request(request: WebhookRequest) -> bytes:
    return msgspec.json.encode(request)


class ImportRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /repositories/import``."""

    url: str
    branch: str = "main"
    name: str | None = None
    base_url: str | None = None


class ImportAnswer(msgspec.Struct, kw_only=True):
    success: bool = True
    repository_id: int | None = None
    project_id: int | None = None
    name: str | None = None
    already_exists: bool | None = None


class SastScanRequest(msgspec.Struct, kw_only=True):
    """``POST /sast/scan``."""

    repository_id: int
    branch: str = "main"
    engines: list[str] = msgspec.field(default_factory=lambda: list(ENGINES))


class Started(msgspec.Struct, kw_only=True):
    """The answer of ``POST /sast/scan`` and ``POST /gap-analysis``: a job to poll."""

    job_id: str
    status: str | None = None
    status_url: str | None = None


class ScanFinding(msgspec.Struct, kw_only=True):
    rule_id: str | None = None
    severity: str | None = None
    file: str | None = None
    line_start: int | None = None
    message: str | None = None
    cwe_id: str | None = None


class ScanResult(msgspec.Struct, kw_only=True):
    """``GET /sast/scan/{scan_id}``."""

    scan_id: str | None = None
    status: str | None = None
    verdict: str | None = None
    findings_count: int | None = None
    critical_count: int | None = None
    high_count: int | None = None
    medium_count: int | None = None
    low_count: int | None = None  # not in the document; counted from the findings otherwise
    findings: list[ScanFinding] = msgspec.field(default_factory=list)


class GapAnalysisRequest(msgspec.Struct, kw_only=True):
    """``POST /gap-analysis``."""

    repository_id: int
    categories: list[str]
    max_tests_per_category: int = 10


class GapOutcome(msgspec.Struct, kw_only=True):
    tests_generated: int | None = None
    categories: dict[str, int] = msgspec.field(default_factory=dict)


class GapStatus(msgspec.Struct, kw_only=True):
    """``GET /gap-analysis/{job_id}``."""

    job_id: str | None = None
    status: str | None = None
    progress: float | None = None  # 0.0-1.0
    result: GapOutcome | None = None


class ApiTestsRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /api-tests/generate``: inline spec or its URL."""

    openapi_spec: str | None = None
    openapi_url: str | None = None
    project_id: int | None = None
    instructions: str | None = None


class TestCaseRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /test-cases``."""

    __test__ = False  # not a pytest class, whatever its name says

    project_id: int
    title: str
    description: str | None = None
    steps: str | None = None
    expected_results: str | None = None
    category: str | None = None
    priority: int | None = None
    tags: list[str] | None = None


class GenerateTestCasesRequest(msgspec.Struct, kw_only=True):
    """``POST /test-cases/generate``."""

    project_id: int
    description: str
    count: int = 5


# Where what the document does not show an answer for (API tests, test cases) goes as it came.
Answer = dict[str, Any]


class QualityMaxJob(JobBody, tag=NAME):
    """``POST /api/jobs`` for QualityMax (the default provider). ``kind`` ``tests`` (the
    default): its webhook request, with ``callback_url`` filled in by receiver so that the result
    is linked to the job; ``sast``: the fields of ``POST /sast/scan``; ``gap_analysis``: those of
    ``POST /gap-analysis``. Each kind refuses the others' fields."""

    kind: Kind = "tests"
    url: str = ""
    feature_description: str = ""
    auth: Auth | None = None
    options: Options | None = None
    callback_url: str | None = None
    repository_id: int | None = None
    branch: str | None = None
    engines: list[str] | None = None
    categories: list[str] | None = None
    max_tests_per_category: int | None = None

    @property
    def wants_callback(self) -> bool:
        return self.kind == "tests"

    def masked(self) -> QualityMaxJob:
        auth = self.auth
        if auth is None or not auth.password:
            return self
        return msgspec.structs.replace(self, auth=msgspec.structs.replace(auth, password=MASK))

    def missing_secrets(self) -> list[str]:
        auth = self.auth
        return ["auth.password"] if auth is not None and auth.password == MASK else []


# Which fields belong to which kind: a field of another kind is refused, naming it.
KIND_FIELDS: Final = {
    "tests": ("url", "feature_description", "auth", "options", "callback_url"),
    "sast": ("repository_id", "branch", "engines"),
    "gap_analysis": ("repository_id", "categories", "max_tests_per_category"),
}


class QualityMax:
    """One partner account: base URL, slug, API key and the webhook secret that signs requests.
    One instance per service, so that the documented limits are kept across all its jobs."""

    name = NAME
    label = LABEL
    request_type = QualityMaxJob
    calls_back = True
    polled = True  # SAST scans and gap analyses

    def __init__(
        self,
        settings: QualityMaxSettings,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy = SUBMIT_POLICY,
        limits: dict[str, int] | None = None,
        rate_window: float = RATE_WINDOW,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        windows = {
            name: SlidingWindow(limit, rate_window, clock=clock)
            for name, limit in {**LIMITS, **(limits or {})}.items()
        }
        self.api = Api(
            provider=LABEL,
            base_url=settings.base_url,
            headers={API_KEY_HEADER: settings.api_key or ""},
            windows=windows,
            policy=policy,
            timeout=timeout,
            sleep=sleep,
        )

    @classmethod
    def from_config(cls, config: Config) -> QualityMax | None:
        """Configured when anything of it is set; submitting then needs all of it."""
        settings = config.qualitymax
        if not (settings.api_key or settings.partner_slug):
            return None
        return cls(settings)

    async def aclose(self) -> None:
        await self.api.aclose()

    @property
    def webhook_path(self) -> str:
        return f"/api/webhooks/{self.settings.partner_slug}"

    # -- checking a job ----------------------------------------------------------------------

    def prepare(self, request: QualityMaxJob, callback_url: str | None) -> Outgoing:
        self._require_settings(request.kind)
        _only_fields_of(request)
        if request.kind == "sast":
            scan = sast_request(request)
            return Outgoing(wire=scan, kept=msgspec.json.encode(scan).decode())
        if request.kind == "gap_analysis":
            gap = gap_request(request)
            return Outgoing(wire=gap, kept=msgspec.json.encode(gap).decode())
        if request.callback_url is not None:
            raise _invalid(
                "callback_url",
                "receiver fills it in (so the result is linked to the job); remove it",
            )
        if callback_url is None:  # pragma: no cover - the submission always makes one
            raise _invalid("callback_url", "is required")
        wire = WebhookRequest(
            url=request.url,
            feature_description=request.feature_description,
            callback_url=callback_url,
            auth=request.auth,
            custom_data=request.custom_data,
            options=request.options,
        )
        validate_request(wire)
        return Outgoing(wire=wire, kept=_kept(wire), url=wire.url)

    def _require_settings(self, kind: str = "tests") -> None:
        settings = self.settings
        needed: list[tuple[str, object]] = [
            ("QUALITYMAX_API_KEY ([qualitymax] api_key)", settings.api_key)
        ]
        if kind == "tests":  # the webhook is signed and posted to the partner's slug
            needed += [
                ("QUALITYMAX_PARTNER_SLUG ([qualitymax] partner_slug)", settings.partner_slug),
                (
                    "QUALITYMAX_WEBHOOK_SECRET ([qualitymax] webhook_secret)",
                    settings.webhook_secrets,
                ),
            ]
        missing = [name for name, value in needed if not value]
        if missing:
            raise NotConfigured(
                LABEL,
                f"Submitting jobs needs {', '.join(missing)}: set it on the service and restart",
            )

    def send_delay(self, request: QualityMaxJob) -> float:
        windows = {"sast": SCAN_WINDOWS, "gap_analysis": GAP_WINDOWS}.get(
            request.kind, WEBHOOK_WINDOWS
        )
        return self.api.delay(windows)

    # -- sending -----------------------------------------------------------------------------

    async def send(self, outgoing: Outgoing) -> Sent:
        wire = outgoing.wire
        if isinstance(wire, SastScanRequest):
            started = await self.start_scan(wire)
            return Sent(external_id=started.job_id, external_kind=SAST_SCAN)
        if isinstance(wire, GapAnalysisRequest):
            started = await self.start_gap_analysis(wire)
            return Sent(external_id=started.job_id, external_kind=GAP_ANALYSIS)
        return await self._send_webhook(wire)

    async def _send_webhook(self, wire: WebhookRequest) -> Sent:
        """Sign exactly the bytes sent, post; only what was not taken is retried."""
        body = encode_request(wire)
        secret = self.settings.webhook_secrets[0]
        headers = {"Content-Type": "application/json", PARTNER_SIGNATURE_HEADER: sign(body, secret)}
        try:
            response = await self.api.call(
                "POST",
                self.webhook_path,
                window=WEBHOOK_WINDOWS,
                retry_limited=False,
                content=body,
                headers=headers,
            )
        except MaybeReceived as exc:
            raise MaybeReceived(
                LABEL, f"{exc}{MAYBE_RECEIVED}", status_code=exc.status_code
            ) from None
        try:
            answer = msgspec.json.decode(response.content, type=WebhookResponse)
        except msgspec.DecodeError:
            raise MaybeReceived(
                LABEL,
                f"QualityMax answered {response.status_code} to the submit with an unreadable "
                f"body{MAYBE_RECEIVED}",
            ) from None
        if not answer.accepted:
            raise RequestRejected(
                LABEL, f"QualityMax refused the job: {answer.message or 'not accepted'}"
            )
        return Sent(external_id=answer.job_id)

    async def _post(
        self, path: str, body: msgspec.Struct, windows: tuple[str, ...], *, job: bool = False
    ) -> bytes:
        response = await self.api.call(
            "POST",
            f"{PARTNER_API_PATH}{path}",
            window=windows,
            retry_limited=not job,
            content=msgspec.json.encode(body),
            headers={"Content-Type": "application/json"},
        )
        return response.content

    async def _get(self, path: str) -> bytes:
        response = await self.api.call("GET", f"{PARTNER_API_PATH}{path}", window=(FREE,))
        return response.content

    # -- the partner API, one method per endpoint --------------------------------------------

    async def import_repository(self, request: ImportRequest) -> ImportAnswer:
        body = await self._post("/repositories/import", request, (IMPORT, FREE))
        return msgspec.json.decode(body, type=ImportAnswer)

    async def start_scan(self, request: SastScanRequest) -> Started:
        body = await self._post("/sast/scan", request, SCAN_WINDOWS, job=True)
        return msgspec.json.decode(body, type=Started)

    async def scan_result(self, scan_id: str) -> ScanResult:
        return msgspec.json.decode(await self._get(f"/sast/scan/{scan_id}"), type=ScanResult)

    async def start_gap_analysis(self, request: GapAnalysisRequest) -> Started:
        body = await self._post("/gap-analysis", request, GAP_WINDOWS, job=True)
        return msgspec.json.decode(body, type=Started)

    async def gap_status(self, job_id: str) -> GapStatus:
        return msgspec.json.decode(await self._get(f"/gap-analysis/{job_id}"), type=GapStatus)

    async def generate_api_tests(self, request: ApiTestsRequest) -> Answer:
        if bool(request.openapi_spec) == bool(request.openapi_url):
            raise _invalid("openapi_spec", "give either openapi_spec or openapi_url (one)")
        body = await self._post("/api-tests/generate", request, (LLM,))
        return msgspec.json.decode(body, type=Answer)

    async def create_test_case(self, request: TestCaseRequest) -> Answer:
        if not request.title.strip():
            raise _invalid("title", "is required")
        return msgspec.json.decode(await self._post("/test-cases", request, (FREE,)), type=Answer)

    async def generate_test_cases(self, request: GenerateTestCasesRequest) -> Answer:
        if not request.description.strip():
            raise _invalid("description", "is required")
        if request.count < 1:
            raise _invalid("count", f"is {request.count}; ask for at least 1")
        body = await self._post("/test-cases/generate", request, (LLM,))
        return msgspec.json.decode(body, type=Answer)

    async def report(self, job_id: str) -> JobReport:
        return msgspec.json.decode(await self._get(f"/jobs/{job_id}/report"), type=JobReport)

    async def logs(self, execution_id: str) -> ExecutionLogs:
        body = await self._get(f"/artifacts/{_segment(execution_id)}/logs")
        return msgspec.json.decode(body, type=ExecutionLogs)

    async def artifact_location(self, execution_id: str, kind: str) -> str:
        """Where a screenshot or video lives: the target of the partner's 302 (the key stays
        here; the location it names is the partner's own, signed or public)."""
        path = _artifact_path(execution_id, kind)
        response = await self.api.call("GET", path, window=(FREE,))
        location: str | None = response.headers.get("location")
        if not location:
            raise RequestRejected(LABEL, f"QualityMax answered no location for the {kind}")
        return location

    # -- polling SAST scans and gap analyses ----------------------------------------------------

    async def poll(
        self, kind: str, external_id: str, custom_data: CustomData, request: str | None = None
    ) -> Progress:
        if kind == SAST_SCAN:
            scan = await self.scan_result(external_id)
            state = _open_state(scan.status)
            if state is not None:
                return Progress(state=state, raw_status=scan.status)
            return Progress(state="ended", result=sast_result(scan, external_id, custom_data))
        if kind == GAP_ANALYSIS:
            gap = await self.gap_status(external_id)
            state = _open_state(gap.status)
            percent = None if gap.progress is None else round(gap.progress * 100, 1)
            if state is not None:
                return Progress(state=state, raw_status=gap.status, progress=percent)
            return Progress(state="ended", result=gap_result(gap, external_id, custom_data))
        raise RequestRejected(LABEL, f"QualityMax has nothing to poll for a {kind!r} job")


def _only_fields_of(request: QualityMaxJob) -> None:
    """A field of another kind than the request's is refused, named."""
    own = KIND_FIELDS[request.kind]
    defaults = QualityMaxJob()
    for kind, fields in KIND_FIELDS.items():
        for field in fields:
            if field in own:
                continue
            if getattr(request, field) != getattr(defaults, field):
                raise _invalid(field, f"is for kind {kind}, not {request.kind}; remove it")


def sast_request(request: QualityMaxJob) -> SastScanRequest:
    repository = _repository_id(request)
    engines = request.engines if request.engines is not None else list(ENGINES)
    if not engines:
        raise _invalid("engines", f"give at least one of {', '.join(ENGINES)}")
    if unknown := [e for e in engines if e not in ENGINES]:
        raise _invalid("engines", f"{unknown[0]!r} is not one of {', '.join(ENGINES)}")
    branch = request.branch if request.branch is not None else "main"
    if not branch.strip():
        raise _invalid("branch", "is empty; leave it out to scan main")
    return SastScanRequest(repository_id=repository, branch=branch, engines=engines)


def gap_request(request: QualityMaxJob) -> GapAnalysisRequest:
    repository = _repository_id(request)
    categories = request.categories or []
    if not categories or not all(c.strip() for c in categories):
        raise _invalid("categories", 'give one or more, such as ["e2e", "security"]')
    most = request.max_tests_per_category
    if most is not None and most < 1:
        raise _invalid("max_tests_per_category", f"is {most}; it must be at least 1")
    return GapAnalysisRequest(
        repository_id=repository,
        categories=categories,
        max_tests_per_category=10 if most is None else most,
    )


def _repository_id(request: QualityMaxJob) -> int:
    if request.repository_id is None or request.repository_id < 1:
        raise _invalid(
            "repository_id",
            f"kind {request.kind} needs an imported repository's id "
            "(receiver qualitymax import-repo URL prints it)",
        )
    return request.repository_id


OPEN_STATES: Final = {"pending": "pending", "queued": "pending", "running": "running"}


def _open_state(raw: str | None) -> str | None:
    """pending/running while the scan or analysis goes on; None once it ended."""
    return OPEN_STATES.get((raw or "").strip().lower())


def sast_result(scan: ScanResult, external_id: str, custom_data: CustomData) -> Result:
    """A scan as a result: ``passed`` on verdict pass, ``failed`` on fail, ``error`` else (a
    failed scan, a verdict the document does not name), with its findings worst first."""
    findings = sorted(
        (_finding(f) for f in scan.findings), key=lambda f: -severity_rank(f.severity)
    )
    counted = {s: sum(1 for f in findings if f.severity == s) for s in ("critical", "high")}
    counted |= {s: sum(1 for f in findings if f.severity == s) for s in ("medium", "low")}
    given = {
        "critical": scan.critical_count,
        "high": scan.high_count,
        "medium": scan.medium_count,
        "low": scan.low_count,
    }
    counts = {s: n if (n := given[s]) is not None else counted[s] for s in given}
    verdict = (scan.verdict or "").strip().lower()
    status = {"pass": "passed", "fail": "failed"}.get(verdict, "error")
    if (scan.status or "").strip().lower() not in ("completed", "complete", "done"):
        status = "error"  # ended, but not with a verdict
    total = scan.findings_count if scan.findings_count is not None else len(findings)
    security = Security(
        verdict=scan.verdict,
        findings_count=total,
        counts=counts,
        findings=findings[:MAX_FINDINGS_KEPT],
    )
    return Result(
        provider=NAME,
        event=SAST_SCAN,
        kind="sast",
        status=status,
        raw_status=scan.status if status == "error" else scan.verdict,
        total=total,
        passed=0,
        failed=total if status == "failed" else 0,
        summary=f"SAST {verdict or scan.status or 'ended'}: {counts_text(security)}",
        external_job_id=external_id,
        custom_data=custom_data,
        security=security,
    )


def counts_text(security: Security) -> str:
    """``1 critical, 2 high, 1 medium`` (the levels with findings), or ``no findings``."""
    shown = [
        f"{security.counts[s]} {s}"
        for s in ("critical", "high", "medium", "low")
        if security.counts.get(s)
    ]
    return ", ".join(shown) or "no findings"


def _finding(finding: ScanFinding) -> Finding:
    return Finding(
        severity=(finding.severity or "unknown").strip().lower(),
        rule_id=finding.rule_id,
        file=finding.file,
        line=finding.line_start,
        message=finding.message,
        cwe=finding.cwe_id,
    )


def gap_result(gap: GapStatus, external_id: str, custom_data: CustomData) -> Result:
    outcome = gap.result or GapOutcome()
    generated = outcome.tests_generated
    if generated is None:
        generated = sum(outcome.categories.values())
    done = (gap.status or "").strip().lower() in ("completed", "complete", "done")
    per = ", ".join(f"{name} {count}" for name, count in outcome.categories.items())
    return Result(
        provider=NAME,
        event=GAP_ANALYSIS,
        kind="gap_analysis",
        status="passed" if done else "error",
        raw_status=gap.status,
        total=generated,
        passed=generated if done else 0,
        summary=f"{generated} tests generated" + (f": {per}" if per else ""),
        external_job_id=external_id,
        custom_data=custom_data,
        coverage=Coverage(tests_generated=generated, categories=dict(outcome.categories)),
    )


def _segment(value: str) -> str:
    """An id as one path segment: nothing that could climb to another endpoint."""
    if not value or "/" in value or value in (".", "..") or "?" in value or "#" in value:
        raise _invalid("execution_id", f"{value[:60]!r} is not an execution id")
    return value


def _artifact_path(execution_id: str, kind: str) -> str:
    if kind not in ARTIFACT_KINDS:
        raise _invalid("kind", f"{kind!r} is not one of {', '.join(ARTIFACT_KINDS)}")
    return f"{PARTNER_API_PATH}/artifacts/{_segment(execution_id)}/{kind}"


def _invalid(field: str, problem: str) -> RequestRejected:
    return RequestRejected(LABEL, f"{field}: {problem}")


def _kept(request: WebhookRequest) -> str:
    """The request as stored: the login password never reaches the database."""
    auth = request.auth
    if auth is not None and auth.password:
        masked = msgspec.structs.replace(auth, password=MASK)
        request = msgspec.structs.replace(request, auth=masked)
    return msgspec.json.encode(request).decode()
