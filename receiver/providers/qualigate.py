"""Qualigate (web tests): its REST API as documented, a client, and its runs normalised.

Qualigate does not call back: ``POST /api/v1/trigger`` starts a test case, a suite or a project,
and ``GET /api/v1/trigger`` / ``GET /api/v1/results`` tell how it went. Each of those three is
limited to 30 requests a minute per API key; the client keeps under that by itself.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from receiver.config import Config
from receiver.providers.base import JobBody, Outgoing, Progress, Sent, check_custom_data, kept
from receiver.providers.errors import RequestRejected
from receiver.providers.polled import PolledClient
from receiver.results import (
    TERMINAL_STATUSES,
    CustomData,
    Failure,
    Result,
    TestCase,
    normalise_status,
)

NAME: Final = "qualigate"
EVENT: Final = "test_results"
RATE_LIMIT: Final = 30  # requests per window, per endpoint, per API key
RATE_WINDOW: Final = 60.0  # seconds

# What an external id names, kept in jobs.external_kind.
TEST_RUN: Final = "test_run"  # a test case: test_run_id
SUITE_RUN: Final = "suite_run"  # a suite: suite_run_id
TEST_RUNS: Final = "test_runs"  # a project: test_run_ids, comma-separated

# A custom viewport side: the document says only "pixels". 16384 is past any screen a test
# emulates; the bound refuses an absurd number (2^63, 0) before Qualigate is asked.
MAX_VIEWPORT_PIXELS: Final = 16384
Pixels = Annotated[int, msgspec.Meta(ge=1, le=MAX_VIEWPORT_PIXELS)]

# The context's keys and where in custom_data they come from (DESIGN.md's conventions).
CONTEXT_KEYS: Final = {
    "branch": ("branch",),
    "sha": ("sha", "commit_sha", "head_sha"),
    "pr_number": ("pr_number",),
    "repository": ("repository", "repo"),
    "pr_url": ("pr_url",),
    "source": ("source",),
}


# ---------------------------------------------------------------------------------------------
# The API's shapes


class Context(msgspec.Struct, kw_only=True, omit_defaults=True):
    """CI metadata shown in Qualigate's dashboard; every field is a string."""

    source: str | None = None
    pr_number: str | None = None
    pr_url: str | None = None
    sha: str | None = None
    branch: str | None = None
    repository: str | None = None


class TriggerRequest(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """``POST /api/v1/trigger``: exactly one of the three ids."""

    test_case_id: str | None = None
    test_suite_id: str | None = None
    project_id: str | None = None
    browserType: str | None = None  # the API's own camelCase names
    viewportPreset: str | None = None
    viewportWidth: Pixels | None = None
    viewportHeight: Pixels | None = None
    context: Context | None = None


class QualigateJob(JobBody, tag=NAME, omit_defaults=True):
    """``POST /api/jobs`` for Qualigate: its trigger request; ``context`` is filled from
    custom_data (fields given by hand win)."""

    test_case_id: str | None = None
    test_suite_id: str | None = None
    project_id: str | None = None
    browserType: str | None = None
    viewportPreset: str | None = None
    viewportWidth: Pixels | None = None
    viewportHeight: Pixels | None = None
    context: Context | None = None


class TriggerResponse(msgspec.Struct, kw_only=True):
    success: bool = True
    test_run_id: str | None = None
    suite_run_id: str | None = None
    test_run_ids: list[str] = msgspec.field(default_factory=list)
    test_count: int | None = None
    status: str | None = None
    message: str | None = None


class RunStatus(msgspec.Struct, kw_only=True):
    """``GET /api/v1/trigger?test_run_id=`` (a suite's answer has the counts instead of steps)."""

    id: str | None = None
    status: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    duration_ms: int | float | None = None
    steps_completed: int | None = None
    steps_total: int | None = None
    error_message: str | None = None
    video_url: str | None = None
    total_tests: int | None = None
    passed_tests: int | None = None
    failed_tests: int | None = None


class RunResult(msgspec.Struct, kw_only=True):
    test_run_id: str | None = None
    test_case_name: str | None = None
    status: str | None = None
    duration_ms: int | float | None = None
    error_message: str | None = None
    dashboard_url: str | None = None


class Results(msgspec.Struct, kw_only=True):
    """``GET /api/v1/results?test_run_ids=|suite_run_id=``."""

    suite_run_id: str | None = None
    suite_name: str | None = None
    total_tests: int | None = None
    passed_tests: int | None = None
    failed_tests: int | None = None
    status: str | None = None
    results: list[RunResult] = msgspec.field(default_factory=list)


class CiSettings(msgspec.Struct, kw_only=True):
    provider: str | None = None
    trigger_on: list[str] = msgspec.field(default_factory=list)
    branches: list[str] = msgspec.field(default_factory=list)
    test_suite_id: str | None = None


class CiConfig(msgspec.Struct, kw_only=True):
    """``GET /api/v1/ci-config?project_id=``."""

    project_id: str | None = None
    project_name: str | None = None
    ci_config: CiSettings | None = None


# ---------------------------------------------------------------------------------------------
# The client


class Qualigate(PolledClient):
    """Qualigate's API for one key."""

    name = NAME
    label = "Qualigate"
    request_type = QualigateJob
    # Each endpoint of the three is limited on its own.
    WINDOWS = ("trigger_post", "trigger_get", "results")
    LIMIT = RATE_LIMIT
    WINDOW_SECONDS = RATE_WINDOW

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @classmethod
    def from_config(cls, config: Config) -> Qualigate | None:
        """Polled only when its key is set."""
        return cls(config.qualigate) if config.qualigate.api_key else None

    async def trigger_run(
        self, request: TriggerRequest, *, retry_limited: bool = True
    ) -> TriggerResponse:
        return await self.post_json(
            "/api/v1/trigger",
            request,
            TriggerResponse,
            window="trigger_post",
            retry_limited=retry_limited,
        )

    async def run_status(
        self, *, test_run_id: str | None = None, suite_run_id: str | None = None
    ) -> RunStatus:
        params = {"test_run_id": test_run_id} if test_run_id else {"suite_run_id": suite_run_id}
        return await self.get_json(
            "/api/v1/trigger", RunStatus, window="trigger_get", params=params
        )

    async def results(
        self, *, test_run_ids: list[str] | None = None, suite_run_id: str | None = None
    ) -> Results:
        params = (
            {"suite_run_id": suite_run_id}
            if suite_run_id
            else {"test_run_ids": ",".join(test_run_ids or [])}
        )
        return await self.get_json("/api/v1/results", Results, window="results", params=params)

    async def ci_config(self, project_id: str) -> CiConfig:
        # Not one of the three limited endpoints: no window.
        params = {"project_id": project_id}
        return await self.get_json("/api/v1/ci-config", CiConfig, window=None, params=params)

    # -- as a Provider -------------------------------------------------------------------------

    def prepare(self, request: QualigateJob, callback_url: str | None) -> Outgoing:
        check_custom_data(self.label, request.custom_data)
        fields = msgspec.structs.asdict(request)
        del fields["custom_data"]
        wire = with_context(TriggerRequest(**fields), request.custom_data)
        check_request(wire)
        return Outgoing(wire=wire, kept=kept(wire))

    def send_delay(self, request: QualigateJob) -> float:
        return self.api.delay(("trigger_post",))

    async def send(self, outgoing: Outgoing) -> Sent:
        answer = await self.trigger_run(outgoing.wire, retry_limited=False)
        if answer.suite_run_id:
            return Sent(external_kind=SUITE_RUN, external_id=answer.suite_run_id)
        if answer.test_run_id:
            return Sent(external_kind=TEST_RUN, external_id=answer.test_run_id)
        if answer.test_run_ids:
            return Sent(external_kind=TEST_RUNS, external_id=",".join(answer.test_run_ids))
        raise RequestRejected(
            self.label, f"Qualigate queued nothing: {answer.message or 'no run id in its answer'}"
        )

    async def poll(
        self, kind: str, external_id: str, custom_data: CustomData, request: str | None = None
    ) -> Progress:
        if kind == TEST_RUNS:
            ids = external_id.split(",")
            results = await self.results(test_run_ids=ids)
            if not runs_ended(results, ids):
                return Progress(state=open_state(results), raw_status=results.status)
            return Progress(state="ended", result=runs_result(results, external_id, custom_data))
        is_suite = kind == SUITE_RUN
        status = await (
            self.run_status(suite_run_id=external_id)
            if is_suite
            else self.run_status(test_run_id=external_id)
        )
        state = progress_state(status.status)
        if state != "ended":
            return Progress(state=state, raw_status=status.status)
        if is_suite:
            details = await self.results(suite_run_id=external_id)
            return Progress(state="ended", result=suite_result(status, details, custom_data))
        details = await self.results(test_run_ids=[external_id])
        entry = next((r for r in details.results if r.test_run_id == external_id), None)
        return Progress(state="ended", result=run_result(status, entry, external_id, custom_data))


def check_request(request: TriggerRequest) -> None:
    given = [n for n in ("test_case_id", "test_suite_id", "project_id") if getattr(request, n)]
    if len(given) != 1:
        raise RequestRejected(
            "Qualigate",
            "A Qualigate run needs exactly one of test_case_id, test_suite_id or project_id "
            f"(got {', '.join(given) or 'none'})",
        )


def with_context(request: TriggerRequest, custom_data: CustomData) -> TriggerRequest:
    """The request with ``context`` filled from custom_data; fields given by hand win."""
    given = msgspec.to_builtins(request.context) if request.context else {}
    for field, sources in CONTEXT_KEYS.items():
        if given.get(field):
            continue
        value = next(
            (custom_data[k] for k in sources if custom_data.get(k) not in (None, "")), None
        )
        if value is not None and not isinstance(value, dict | list | bool):
            given[field] = str(value)
    context = msgspec.convert(given, Context) if given else None
    return msgspec.structs.replace(request, context=context)


# ---------------------------------------------------------------------------------------------
# Normalisation: pure functions from the API's answers to a Result.


def progress_state(raw: str | None) -> str:
    """``pending``/``running`` while the run goes on, else ``ended`` (unknown values end it)."""
    status = normalise_status(raw) if raw != "completed" else "passed"
    return status if status in ("pending", "running") else "ended"


def verdict(raw: str | None, *, total: int, passed: int, failed: int) -> str:
    """A terminal status; a suite's ``completed`` is passed or failed by its counts."""
    if (raw or "").strip().lower() == "completed":
        return "passed" if failed == 0 and passed >= total else "failed"
    status = normalise_status(raw)
    return status if status in TERMINAL_STATUSES else "error"


def open_state(results: Results) -> str:
    statuses = [normalise_status(r.status) for r in results.results]
    return "running" if "running" in statuses or "passed" in statuses else "pending"


def runs_ended(results: Results, ids: list[str]) -> bool:
    seen = {r.test_run_id: r for r in results.results}
    return all(i in seen and progress_state(seen[i].status) == "ended" for i in ids)


def _test(entry: RunResult) -> TestCase:
    status = normalise_status(entry.status)
    return TestCase(
        name=entry.test_case_name or f"test run {entry.test_run_id}",
        status=status if status in TERMINAL_STATUSES else "error",
        duration_ms=_ms(entry.duration_ms),
        error=entry.error_message,
        execution_id=entry.test_run_id,
        url=entry.dashboard_url,
    )


def _failures(tests: list[TestCase]) -> list[Failure]:
    return [
        Failure(test=t.name, error=t.error or t.status)
        for t in tests
        if t.status not in ("passed", "pending", "running")
    ]


def run_result(
    status: RunStatus, entry: RunResult | None, run_id: str, custom_data: CustomData
) -> Result:
    """One test case's run: the status answer, named by its /results entry when we have one."""
    # A lone run has no counts: "completed" (not in the table for runs) passes unless it erred.
    failed = int(bool(status.error_message))
    final = verdict(status.status, total=1, passed=1 - failed, failed=failed)
    test = TestCase(
        name=(entry.test_case_name if entry else None) or f"test run {run_id}",
        status=final,
        duration_ms=_ms(status.duration_ms),
        error=status.error_message or (entry.error_message if entry else None),
        video_url=status.video_url,
        execution_id=run_id,
        url=entry.dashboard_url if entry else None,
    )
    steps = f" ({status.steps_completed}/{status.steps_total} steps)" if status.steps_total else ""
    return Result(
        provider=NAME,
        event=EVENT,
        status=final,
        raw_status=status.status,
        total=1,
        passed=int(final == "passed"),
        failed=int(final != "passed"),
        duration_ms=_ms(status.duration_ms),
        report_url=test.url,
        summary=f"{test.name}: {final}{steps}",
        external_job_id=run_id,
        custom_data=custom_data,
        tests=[test],
        failures=_failures([test]),
    )


def suite_result(status: RunStatus, details: Results | None, custom_data: CustomData) -> Result:
    tests = [_test(e) for e in details.results] if details else []
    total = status.total_tests if status.total_tests is not None else len(tests)
    passed = _count(status.passed_tests, tests, "passed")
    failed = _count(status.failed_tests, tests, "failed")
    final = verdict(status.status, total=total, passed=passed, failed=failed)
    name = details.suite_name if details and details.suite_name else "suite"
    return Result(
        provider=NAME,
        event=EVENT,
        status=final,
        raw_status=status.status,
        total=total,
        passed=passed,
        failed=failed,
        duration_ms=_ms(status.duration_ms),
        summary=f"{name}: {passed} of {total} tests passed",
        external_job_id=status.id,
        custom_data=custom_data,
        tests=tests,
        failures=_failures(tests),
    )


def runs_result(results: Results, external_id: str, custom_data: CustomData) -> Result:
    """A project's runs, aggregated by /results (or by their own statuses if it did not say)."""
    tests = [_test(e) for e in results.results]
    total = results.total_tests if results.total_tests is not None else len(tests)
    passed = _count(results.passed_tests, tests, "passed")
    failed = _count(results.failed_tests, tests, "failed")
    raw = results.status
    if raw is None or normalise_status(raw) in ("pending", "running"):
        raw = "completed"  # every run ended but the aggregate lags: judge by the counts
    final = verdict(raw, total=total, passed=passed, failed=failed)
    return Result(
        provider=NAME,
        event=EVENT,
        status=final,
        raw_status=results.status,
        total=total,
        passed=passed,
        failed=failed,
        duration_ms=sum(t.duration_ms or 0 for t in tests) or None,
        summary=f"project: {passed} of {total} tests passed",
        external_job_id=external_id,
        custom_data=custom_data,
        tests=tests,
        failures=_failures(tests),
    )


def _count(given: int | None, tests: list[TestCase], status: str) -> int:
    return given if given is not None else sum(1 for t in tests if t.status == status)


def _ms(value: int | float | None) -> int | None:
    return None if value is None else int(value)
