"""QualityMax: the callback payload as its partner API documents it, and its normalisation.

Unknown fields are ignored by the structs (the raw body is stored verbatim anyway), so a new field
or a new ``event`` value from QualityMax is taken, never rejected.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import stamina

from receiver import limits, redact
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
# The partner API client: submit a job (the AI test-generation webhook), read reports, artifacts.
#
# Every documented limit is checked before anything is sent, so a refused job never reaches the
# partner. A submit may start a paid LLM job, so it is retried (by stamina, a bounded number of
# times) only where QualityMax cannot have taken it: no connection, 429, 503. A timeout or any
# other failure once the request was sent is reported as MaybeReceived, never repeated. Reads
# (report, logs, artifacts) are idempotent and are retried on any transient failure. Any other
# refusal surfaces the partner's own ``detail``.

API_KEY_HEADER = "X-QualityMax-API-Key"
PARTNER_SIGNATURE_HEADER = "X-Partner-Signature"
PARTNER_API_PATH = "/api/v1/partner"
BROWSERS = ("chromium", "firefox", "webkit")
AUTH_TYPES = ("user_login",)
MAX_URL_CHARS = 2048
MAX_FEATURE_CHARS = 8000
MAX_CUSTOM_DATA_BYTES = 4096
ARTIFACT_KINDS = ("screenshot", "video", "logs")
# Never wait longer than this for one Retry-After, whatever the partner asks for.
MAX_RETRY_AFTER_SECONDS = 30.0
# Answers that say the request was not taken: safe to send again, even a submit.
NOT_TAKEN_STATUSES = (429, 503)


class QualityMaxError(Exception):
    """A job could not be submitted or a report read; the message says why."""


class RequestInvalid(QualityMaxError):
    """The request breaks a documented limit; nothing was sent. ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class PartnerRefused(QualityMaxError):
    """QualityMax answered with a 4xx other than 429: its ``detail`` says why."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"QualityMax refused the request ({status_code}): {detail}")
        self.status_code = status_code
        self.detail = detail


class PartnerUnavailable(QualityMaxError):
    """QualityMax could not be reached, or kept answering 429/5xx after every retry.

    For a submit, only what proves the job was not taken (no connection, 429, 503)."""

    def __init__(
        self, detail: str, *, status_code: int | None = None, retry_after: float | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.retry_after = retry_after

    def after(self, attempts: int) -> PartnerUnavailable:
        """The same failure, saying how many attempts were made."""
        plural = "s" if attempts != 1 else ""
        return PartnerUnavailable(
            f"{self.detail} (gave up after {attempts} attempt{plural})",
            status_code=self.status_code,
            retry_after=self.retry_after,
        )


class MaybeReceived(QualityMaxError):
    """A submit was sent but its answer never came or was an error other than 429/503: the job
    may or may not exist at QualityMax, so it is not sent again (it may start a paid run)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}; QualityMax may or may not have received the job: check it there "
            "before submitting again"
        )
        self.what = what


class Auth(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
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


class ErrorBody(msgspec.Struct):
    detail: str | None = None


def validate_request(request: WebhookRequest) -> None:
    """Raise RequestInvalid naming the first field that breaks a documented limit."""
    _check_url("url", request.url)
    _check_text("feature_description", request.feature_description, MAX_FEATURE_CHARS)
    _check_url("callback_url", request.callback_url)
    custom_data = limits.custom_data_problem(request.custom_data)
    if custom_data is not None:
        raise RequestInvalid(*custom_data)
    size = len(msgspec.json.encode(request.custom_data))
    if size > MAX_CUSTOM_DATA_BYTES:
        raise RequestInvalid(
            "custom_data", f"is {size} bytes serialised; the limit is {MAX_CUSTOM_DATA_BYTES}"
        )
    auth = request.auth
    if auth is not None:
        if auth.type not in AUTH_TYPES:
            raise RequestInvalid(
                "auth.type", f"{auth.type!r} is not one of {', '.join(AUTH_TYPES)}"
            )
        if not (auth.username and auth.password):
            raise RequestInvalid("auth", "user_login needs both username and password")
    options = request.options
    if options is not None:
        if options.browser not in BROWSERS:
            raise RequestInvalid(
                "options.browser", f"{options.browser!r} is not one of {', '.join(BROWSERS)}"
            )
        if not 0 <= options.quality_threshold <= 100:
            raise RequestInvalid(
                "options.quality_threshold",
                f"{options.quality_threshold} is outside 0-100",
            )


def _check_text(field: str, value: str, limit: int) -> None:
    if not value.strip():
        raise RequestInvalid(field, "is required")
    if len(value) > limit:
        raise RequestInvalid(field, f"is {len(value)} characters; the limit is {limit}")


def _check_url(field: str, value: str) -> None:
    _check_text(field, value, MAX_URL_CHARS)
    if not value.startswith(("http://", "https://")):
        raise RequestInvalid(field, f"must be an http:// or https:// URL, not {value[:60]!r}")


def encode_request(request: WebhookRequest) -> bytes:
    return msgspec.json.encode(request)


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """How stubbornly to retry transient failures (stamina's parameters)."""

    attempts: int = 4
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_jitter: float = 0.5
    timeout: float = 60.0  # in all: the caller waits on POST /api/jobs meanwhile


def _backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry transient failures, honouring the partner's Retry-After.

    MaybeReceived is not among them: ``_once`` raises it instead of PartnerUnavailable for a
    submit whose request may have been taken."""
    if isinstance(exc, PartnerUnavailable):
        if exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)
        return True
    return False


class QualityMaxClient:
    """One partner account: base URL, slug, API key and the webhook secret that signs requests."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        webhook_secret: str,
        partner_slug: str,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.partner_slug = partner_slug
        self._api_key = api_key
        self._secret = webhook_secret
        self._timeout = timeout
        self.retry = retry or RetryPolicy()

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/api/webhooks/{self.partner_slug}"

    def report_url(self, job_id: str) -> str:
        return f"{self.base_url}{PARTNER_API_PATH}/jobs/{job_id}/report"

    def artifact_url(self, execution_id: str, kind: str) -> str:
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"kind must be one of {ARTIFACT_KINDS}")
        return f"{self.base_url}{PARTNER_API_PATH}/artifacts/{execution_id}/{kind}"

    async def submit(self, request: WebhookRequest) -> WebhookResponse:
        """Validate, sign exactly the bytes sent, post; retry what is transient."""
        validate_request(request)
        body = encode_request(request)
        headers = {
            "Content-Type": "application/json",
            API_KEY_HEADER: self._api_key,
            PARTNER_SIGNATURE_HEADER: sign(body, self._secret),
        }
        response = await self._send(
            "POST", self.webhook_url, content=body, headers=headers, idempotent=False
        )
        try:
            answer = msgspec.json.decode(response.content, type=WebhookResponse)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise MaybeReceived(
                f"QualityMax answered {response.status_code} to the submit with an unreadable body"
            ) from None
        if not answer.accepted:
            raise PartnerRefused(response.status_code, answer.message or "not accepted")
        return answer

    async def report(self, job_id: str) -> JobReport:
        response = await self._send("GET", self.report_url(job_id), headers=self._key())
        return msgspec.json.decode(response.content, type=JobReport)

    async def logs(self, execution_id: str) -> ExecutionLogs:
        url = self.artifact_url(execution_id, "logs")
        response = await self._send("GET", url, headers=self._key())
        return msgspec.json.decode(response.content, type=ExecutionLogs)

    async def artifact_location(self, execution_id: str, kind: str) -> str:
        """Where a screenshot or video lives: the target of the partner's 302."""
        url = self.artifact_url(execution_id, kind)
        response = await self._send("GET", url, headers=self._key())
        return response.headers.get("location") or url

    def _key(self) -> dict[str, str]:
        return {API_KEY_HEADER: self._api_key}

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        content: bytes | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        policy = self.retry
        attempts = 0
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
            try:
                async for attempt in stamina.retry_context(
                    on=_backoff,
                    attempts=policy.attempts,
                    timeout=policy.timeout,
                    wait_initial=policy.wait_initial,
                    wait_max=policy.wait_max,
                    wait_jitter=policy.wait_jitter,
                ):
                    with attempt:
                        attempts = attempt.num
                        return await _once(
                            http,
                            method,
                            url,
                            headers=headers,
                            content=content,
                            idempotent=idempotent,
                        )
            except PartnerUnavailable as exc:
                raise exc.after(attempts) from None
        shown = redact.url(url)
        raise PartnerUnavailable(f"QualityMax could not be reached at {shown}")  # pragma: no cover


async def _once(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes | None,
    idempotent: bool,
) -> httpx.Response:
    """One request. Not ``idempotent`` (a submit): a failure once the request may have
    reached QualityMax raises MaybeReceived, which is never retried."""
    shown = redact.url(url)
    try:
        response = await http.request(method, url, headers=headers, content=content)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
        raise PartnerUnavailable(
            f"QualityMax could not be reached at {shown}: {exc or type(exc).__name__}"
        ) from None
    except httpx.TransportError as exc:
        what = f"{method} {shown} failed after it was sent ({exc or type(exc).__name__})"
        if not idempotent:
            raise MaybeReceived(what) from None
        raise PartnerUnavailable(what) from None
    status = response.status_code
    if status < 400:
        return response
    detail = _detail(response)
    if status in NOT_TAKEN_STATUSES:
        what = "is rate limiting (429)" if status == 429 else "answered 503"
        raise PartnerUnavailable(
            f"QualityMax {what}: {detail}", status_code=status, retry_after=_retry_after(response)
        )
    if status >= 500:
        if not idempotent:
            raise MaybeReceived(f"QualityMax answered {status} to the submit: {detail}")
        raise PartnerUnavailable(f"QualityMax answered {status}: {detail}", status_code=status)
    raise PartnerRefused(status, detail)


def _detail(response: httpx.Response) -> str:
    try:
        detail = msgspec.json.decode(response.content, type=ErrorBody).detail
    except msgspec.DecodeError:
        detail = None
    return detail or response.reason_phrase or f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def enrich(result: Result, *, report_url: str | None) -> Result:
    """Fill a missing report link with the partner's job report (the callback lacked one)."""
    if result.report_url or not report_url:
        return result
    return msgspec.structs.replace(result, report_url=report_url)
