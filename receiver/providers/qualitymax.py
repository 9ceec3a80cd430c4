"""QualityMax: the callback payload as its partner API documents it, and its normalisation.

Unknown fields are ignored by the structs (the raw body is stored verbatim anyway), so a new field
or a new ``event`` value from QualityMax is taken, never rejected.
"""

from __future__ import annotations

from typing import Any

import msgspec

from receiver import limits
from receiver.config import Config, QualityMaxSettings
from receiver.providers.base import CallsBack, JobBody, Outgoing, Sent
from receiver.providers.errors import MaybeReceived, NotConfigured, RequestRejected
from receiver.providers.http import Api, RetryPolicy
from receiver.results import CustomData, Failure, Result, TestCase, normalise_status
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


class QualityMaxJob(JobBody, tag=NAME):
    """``POST /api/jobs`` for QualityMax (the default provider): its webhook request, with
    ``callback_url`` filled in by receiver so that the result is linked to the job."""

    url: str = ""
    feature_description: str = ""
    auth: Auth | None = None
    options: Options | None = None
    callback_url: str | None = None


class QualityMax(CallsBack):
    """One partner account: base URL, slug, API key and the webhook secret that signs requests."""

    name = NAME
    label = LABEL
    request_type = QualityMaxJob
    calls_back = True

    def __init__(
        self,
        settings: QualityMaxSettings,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy = SUBMIT_POLICY,
    ) -> None:
        self.settings = settings
        self.api = Api(
            provider=LABEL,
            base_url=settings.base_url,
            headers={API_KEY_HEADER: settings.api_key or ""},
            policy=policy,
            timeout=timeout,
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

    def prepare(self, request: QualityMaxJob, callback_url: str | None) -> Outgoing:
        self._require_settings()
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

    def _require_settings(self) -> None:
        settings = self.settings
        missing = [
            name
            for name, value in (
                ("QUALITYMAX_API_KEY ([qualitymax] api_key)", settings.api_key),
                ("QUALITYMAX_PARTNER_SLUG ([qualitymax] partner_slug)", settings.partner_slug),
                (
                    "QUALITYMAX_WEBHOOK_SECRET ([qualitymax] webhook_secret)",
                    settings.webhook_secrets,
                ),
            )
            if not value
        ]
        if missing:
            raise NotConfigured(
                LABEL,
                f"Submitting jobs needs {', '.join(missing)}: set it on the service and restart",
            )

    async def send(self, outgoing: Outgoing) -> Sent:
        """Sign exactly the bytes sent, post; only what was not taken is retried."""
        body = encode_request(outgoing.wire)
        secret = self.settings.webhook_secrets[0]
        headers = {"Content-Type": "application/json", PARTNER_SIGNATURE_HEADER: sign(body, secret)}
        try:
            response = await self.api.call("POST", self.webhook_path, content=body, headers=headers)
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

    async def report(self, job_id: str) -> JobReport:
        response = await self.api.call("GET", f"{PARTNER_API_PATH}/jobs/{job_id}/report")
        return msgspec.json.decode(response.content, type=JobReport)

    async def logs(self, execution_id: str) -> ExecutionLogs:
        response = await self.api.call("GET", _artifact_path(execution_id, "logs"))
        return msgspec.json.decode(response.content, type=ExecutionLogs)

    async def artifact_location(self, execution_id: str, kind: str) -> str:
        """Where a screenshot or video lives: the target of the partner's 302."""
        path = _artifact_path(execution_id, kind)
        response = await self.api.call("GET", path)
        return response.headers.get("location") or f"{self.settings.base_url.rstrip('/')}{path}"


def _artifact_path(execution_id: str, kind: str) -> str:
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"kind must be one of {ARTIFACT_KINDS}")
    return f"{PARTNER_API_PATH}/artifacts/{execution_id}/{kind}"


def _invalid(field: str, problem: str) -> RequestRejected:
    return RequestRejected(LABEL, f"{field}: {problem}")


def _kept(request: WebhookRequest) -> str:
    """The request as stored: the login password never reaches the database."""
    auth = request.auth
    if auth is not None and auth.password:
        masked = msgspec.structs.replace(auth, password="****")
        request = msgspec.structs.replace(request, auth=masked)
    return msgspec.json.encode(request).decode()
