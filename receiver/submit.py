"""``receiver submit``: send a job through the running service and, with ``--wait``, gate on it.

Everything goes through the service's API (so the callback is linked to the job): POST /api/jobs,
then GET /api/jobs/{id} until the job's state is a verdict. Exit codes: 0 passed, 1 failed or
error, 2 timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO

import httpx
import msgspec

from receiver.results import TERMINAL_STATUSES
from receiver.views import JobView

EXIT_PASSED: Final = 0
EXIT_FAILED: Final = 1
EXIT_TIMEOUT: Final = 2
# Not a TTY (a CI log): a line on every change of state, else one every this many seconds.
PLAIN_EVERY_SECONDS: Final = 15.0


class SubmitError(Exception):
    """The job could not be submitted or followed; the message says what to set or fix."""


def server_url(explicit: str | None, env: Mapping[str, str]) -> str:
    url = (explicit or env.get("RECEIVER_PUBLIC_URL") or "").rstrip("/")
    if not url:
        raise SubmitError(
            "No receiver to submit through: pass --server URL or set RECEIVER_PUBLIC_URL"
        )
    if not url.startswith(("http://", "https://")):
        raise SubmitError(f"--server {url!r} is not an http:// or https:// URL")
    return url


def api_token(env: Mapping[str, str]) -> str:
    token = env.get("RECEIVER_API_TOKEN", "").strip()
    if not token:
        raise SubmitError(
            "RECEIVER_API_TOKEN is not set: export the service's API token "
            "(the same value the service runs with)"
        )
    return token


def parse_custom_data(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmitError(
            f"--custom-data is not JSON ({exc.msg} at character {exc.pos}); "
            """pass an object such as '{"branch": "main", "pr_number": 42}'"""
        ) from None
    if not isinstance(value, dict):
        raise SubmitError('--custom-data must be a JSON object, such as \'{"branch": "main"}\'')
    return value


class Unreachable(SubmitError):
    """No answer from the service (down, restarting, wrong URL)."""


class ErrorBody(msgspec.Struct):
    detail: str | None = None


class Submitted(msgspec.Struct, kw_only=True, omit_defaults=True):
    """POST /api/jobs' answer, whichever the provider; ``--json`` prints what it answered."""

    id: int
    provider: str
    state: str
    external_id: str | None = None
    callback_url: str | None = None  # QualityMax
    external_kind: str | None = None  # Qualigate, QualGent: what external_id names
    jobs: list[int] | None = None  # a run of several QualGent test cases: a job each
    rerun_of: int | None = None


class ApiClient:
    """The service's API as ``submit`` needs it; every failure becomes one SubmitError line."""

    # Longer than the service's own retries of the partner (RetryPolicy.timeout).
    def __init__(self, base_url: str, token: str, timeout: float = 90) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def submit(self, body: dict[str, Any]) -> Submitted:
        response = self._call("POST", "/api/jobs", json=body)
        return msgspec.json.decode(response.content, type=Submitted)

    def rerun(self, job_id: int, password: str | None = None) -> Submitted:
        body = {"auth": {"password": password}} if password else None
        response = self._call("POST", f"/api/jobs/{job_id}/rerun", json=body)
        return msgspec.json.decode(response.content, type=Submitted)

    def job(self, job_id: int) -> JobView:
        response = self._call("GET", f"/api/jobs/{job_id}")
        return msgspec.json.decode(response.content, type=JobView)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(
                f"No receiver answers at {self.base_url} ({exc or type(exc).__name__}): "
                "start `receiver serve` there, or pass --server URL / set RECEIVER_PUBLIC_URL"
            ) from None
        if response.status_code >= 400:
            raise SubmitError(
                f"{method} {path} answered {response.status_code}: {_detail(response)}"
            )
        return response


def _detail(response: httpx.Response) -> str:
    try:
        detail = msgspec.json.decode(response.content, type=ErrorBody).detail
    except msgspec.DecodeError:
        detail = None
    return detail or response.text[:200] or response.reason_phrase


def job_body(url: str, feature: str, custom_data: dict[str, Any]) -> dict[str, Any]:
    return {"url": url, "feature_description": feature, "custom_data": custom_data}


VIEWPORT_PRESETS: Final = ("desktop", "tablet", "mobile")


class Target(msgspec.Struct, kw_only=True):
    """What to run, as ``receiver submit``'s options give it; each provider reads its own."""

    url: str | None = None
    feature: str | None = None
    test_case: tuple[str, ...] = ()
    kind: str | None = None
    repository_id: int | None = None
    scan_branch: str | None = None
    engines: str | None = None
    categories: str | None = None
    max_tests: int | None = None
    orientation: str | None = None
    suite: str | None = None
    project: str | None = None
    browser: str | None = None
    viewport: str | None = None
    run_all: bool = False
    category: str | None = None
    app: str | None = None
    device: str | None = None
    platform: str | None = None
    os_version: str | None = None


# The options only one provider reads: given with another provider, they are a mistake.
OWN_OPTIONS: Final = {
    "qualitymax": (
        "url", "feature", "kind", "repository_id", "scan_branch", "engines", "categories",
        "max_tests",
    ),
    "qualigate": ("suite", "project", "viewport"),
    "qualgent": ("run_all", "category", "app", "device", "platform", "os_version", "orientation"),
}  # fmt: skip


def body_for(provider: str, target: Target, custom_data: dict[str, Any]) -> dict[str, Any]:
    """POST /api/jobs' body for ``provider``; SubmitError names a missing or stray option."""
    for owner, names in OWN_OPTIONS.items():
        stray = [n for n in names if owner != provider and getattr(target, n)]
        if stray:
            option = "--" + stray[0].replace("_", "-")
            raise SubmitError(f"{option} is for --provider {owner}, not {provider}")
    build = {"qualitymax": _qualitymax, "qualigate": _qualigate, "qualgent": _qualgent}[provider]
    return {**build(target), "custom_data": custom_data}


def _words(text: str | None) -> list[str] | None:
    return [w.strip() for w in text.split(",") if w.strip()] if text else None


def _qualitymax(target: Target) -> dict[str, Any]:
    if target.kind in ("sast", "gap_analysis"):
        if target.url or target.feature or target.test_case:
            raise SubmitError(f"--kind {target.kind} takes --repository-id, not --url/--feature")
        if target.repository_id is None:
            raise SubmitError(
                f"--kind {target.kind} needs --repository-id ID "
                "(receiver qualitymax import-repo URL prints it)"
            )
        fields: dict[str, Any] = {"kind": target.kind, "repository_id": target.repository_id}
        if target.kind == "sast":
            fields |= {"branch": target.scan_branch, "engines": _words(target.engines)}
        else:
            fields |= {
                "categories": _words(target.categories),
                "max_tests_per_category": target.max_tests,
            }
        return {k: v for k, v in fields.items() if v is not None}
    if not (target.url and target.feature):
        raise SubmitError("--provider qualitymax needs --url URL and --feature TEXT")
    if target.test_case:
        raise SubmitError("--test-case is for --provider qualigate or qualgent")
    if any((target.repository_id, target.scan_branch, target.engines, target.categories)):
        raise SubmitError("--repository-id and its options are for --kind sast or gap_analysis")
    body = job_body(target.url, target.feature, {})
    if target.browser:
        body["options"] = {"browser": target.browser}
    return body


def _qualigate(target: Target) -> dict[str, Any]:
    if len(target.test_case) > 1:
        raise SubmitError("--provider qualigate runs one --test-case; use --suite for several")
    ids = {
        "test_case_id": target.test_case[0] if target.test_case else None,
        "test_suite_id": target.suite,
        "project_id": target.project,
    }
    given = {k: v for k, v in ids.items() if v}
    if len(given) != 1:
        raise SubmitError(
            "--provider qualigate needs exactly one of --test-case ID, --suite ID, --project ID"
        )
    body: dict[str, Any] = {"provider": "qualigate", **given}
    if target.browser:
        body["browserType"] = target.browser
    if target.viewport:
        body.update(_viewport(target.viewport))
    return body


def _viewport(text: str) -> dict[str, Any]:
    if text in VIEWPORT_PRESETS:
        return {"viewportPreset": text}
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise SubmitError(
            f"--viewport {text!r}: use {', '.join(VIEWPORT_PRESETS)} or WIDTHxHEIGHT (1280x720)"
        )
    return {"viewportWidth": int(width), "viewportHeight": int(height)}


def _qualgent(target: Target) -> dict[str, Any]:
    if bool(target.test_case) == target.run_all:
        raise SubmitError("--provider qualgent needs --test-case ID or --run-all (not both)")
    if target.browser:
        raise SubmitError("--browser is for --provider qualitymax or qualigate")
    body: dict[str, Any] = {"provider": "qualgent"}
    if target.run_all:
        body["run_all"] = True
        body["category_id"] = target.category
    elif len(target.test_case) == 1:
        body["test_case_id"] = target.test_case[0]
    body["app_file_id"] = target.app
    device = (target.device, target.platform, target.os_version)
    if target.orientation and not target.device:
        raise SubmitError("--orientation goes with --device NAME")
    if target.device:
        if not all(device):
            raise SubmitError("--device NAME needs --platform P and --os-version V too")
        body["device"] = {
            "name": target.device,
            "platform": target.platform,
            "os_version": target.os_version,
        }
        if target.orientation:
            body["device"]["orientation"] = target.orientation
    elif target.platform:
        body["platform"] = target.platform  # QualGent picks the app and device
    else:
        raise SubmitError(
            "--provider qualgent needs --app ID|latest with --device NAME --platform P "
            "--os-version V, or --platform P alone to let QualGent pick"
        )
    body = {k: v for k, v in body.items() if v is not None}
    if len(target.test_case) > 1:  # the document's jobs[]: one request, a job per test case
        each = {k: body.pop(k) for k in ("app_file_id", "device", "platform") if k in body}
        body["jobs"] = [{"test_case_id": case, **each} for case in target.test_case]
    return body


class Progress:
    """Elapsed time and state: rewritten in place on a terminal, plain lines in a CI log."""

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._last_state: str | None = None
        self._last_line = -PLAIN_EVERY_SECONDS

    def update(self, elapsed: float, state: str, progress: float | None = None) -> None:
        if progress is not None and state in ("pending", "running"):
            state = f"{state} {progress:.0f}%"
        if self.tty:
            self.out.write(f"\r  waiting {elapsed:5.0f}s · {state:<12}")
            self.out.flush()
            return
        if state != self._last_state or elapsed - self._last_line >= PLAIN_EVERY_SECONDS:
            self.out.write(f"waiting {elapsed:.0f}s: {state}\n")
            self.out.flush()
            self._last_state, self._last_line = state, elapsed

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def is_verdict(job: JobView) -> bool:
    return job.state in TERMINAL_STATUSES


def wait_for(
    api: ApiClient,
    job_id: int,
    *,
    timeout: float,
    interval: float,
    progress: Progress,
    clock: Callable[[], float] = time.monotonic,
) -> JobView | None:
    """Poll until the job has a verdict; None when ``timeout`` seconds passed without one."""
    started = clock()
    while True:
        job = _poll(api, job_id)
        elapsed = clock() - started
        progress.update(
            elapsed,
            job.state if job else "service unreachable, retrying",
            job.progress if job else None,
        )
        if job is not None and is_verdict(job):
            progress.done()
            return job
        if elapsed >= timeout:
            progress.done()
            return None
        time.sleep(min(interval, max(0.0, timeout - elapsed)))


def _poll(api: ApiClient, job_id: int) -> JobView | None:
    """The job, or None while the service does not answer (a redeploy must not fail CI)."""
    try:
        return api.job(job_id)
    except Unreachable:
        return None


def exit_code(job: JobView) -> int:
    return EXIT_PASSED if job.state == "passed" else EXIT_FAILED


def summary(job: JobView) -> list[str]:
    """What a person reads at the end of a CI log: the verdict, the failing tests, the links."""
    result = job.result
    if result is None:
        return [f"❌ {job.state}: job {job.id} {job.error or 'has no result'}"]
    mark = "✅" if result.status == "passed" else "❌"
    if result.kind != "tests":  # "SAST fail: 1 critical, 2 high", "15 tests generated: ..."
        head = result.summary or result.status
    elif result.status == "passed":
        head = f"{result.passed} of {result.total} tests passed"
    elif result.failed:
        head = f"{result.failed} of {result.total} tests failed"
    else:
        head = result.summary or "no tests ran"
    lines = [f"{mark} {result.status}: {head} · job {job.id} ({job.external_id or '-'})"]
    failing = [t for t in result.tests if t.status != "passed"]
    errors = {f.test: f.error for f in result.failures if f.test}
    for test in failing:
        where = f" · {test.where}" if test.where else ""
        error = test.error or errors.get(test.name) or test.status
        lines.append(f"  ✗ {test.name}{where}: {error}")
        if test.screenshot_url:
            lines.append(f"    screenshot: {test.screenshot_url}")
    if not failing:
        lines += [f"  ✗ {failure.error}" for failure in result.failures]
    for finding in (result.security.findings if result.security else [])[:10]:
        place = f"{finding.file}:{finding.line}" if finding.file else ""
        lines.append(f"  ! {finding.severity} {finding.rule_id or ''} {place} {finding.cwe or ''}")
    if result.links.report:
        lines.append(f"  report: {result.links.report}")
    return lines


def to_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()
