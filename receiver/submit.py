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

from receiver.jobs import JobSubmitted
from receiver.results import TERMINAL_STATUSES
from receiver.store import JobView

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

    def submit(self, body: dict[str, Any]) -> JobSubmitted:
        response = self._call("POST", "/api/jobs", json=body)
        return msgspec.json.decode(response.content, type=JobSubmitted)

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


class Progress:
    """Elapsed time and state: rewritten in place on a terminal, plain lines in a CI log."""

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._last_state: str | None = None
        self._last_line = -PLAIN_EVERY_SECONDS

    def update(self, elapsed: float, state: str) -> None:
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
        progress.update(elapsed, job.state if job else "service unreachable, retrying")
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
    if result.status == "passed":
        head = f"{result.passed} of {result.total} tests passed"
    elif result.failed:
        head = f"{result.failed} of {result.total} tests failed"
    else:
        head = result.summary or "no tests ran"
    lines = [f"{mark} {result.status}: {head} · job {job.id} ({job.external_id or '-'})"]
    failing = [t for t in result.tests if t.status != "passed"]
    for test in failing:
        lines.append(f"  ✗ {test.name}: {test.error or test.status}")
        if test.screenshot_url:
            lines.append(f"    screenshot: {test.screenshot_url}")
    if not failing:
        lines += [f"  ✗ {failure.error}" for failure in result.failures]
    if result.links.report:
        lines.append(f"  report: {result.links.report}")
    return lines


def to_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()
