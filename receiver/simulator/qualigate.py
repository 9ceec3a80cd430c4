"""A local Qualigate: every documented endpoint, its auth, errors and rate limits, and runs that
go pending -> running -> an outcome chosen by which test case you run (see CATALOGUE).

A run moves one step each time someone asks about it (through either status endpoint), so a test
knows exactly how many polls an outcome takes, with no clock involved.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import JSONBody, QueryParameter

from receiver.simulator.common import Faults, RateWindow, group_of, retry_seconds, simulated_api

API_KEY: Final = "qg_sim_key"
LINK: Final = "https://qualigate.app/test-runs/"
STEPS: Final = ("pending", "running")  # then the outcome

QueryText = Annotated[str | None, QueryParameter()]


@dataclass(frozen=True)
class Case:
    name: str
    outcome: str  # a status of the document, "never" (runs forever) or an undocumented one
    error: str | None = None


def _id(group: int, n: int) -> str:
    return f"{group:08d}-0000-4000-8000-{n:012d}"


PASSING_CASE: Final = _id(1, 1)
FAILING_CASE: Final = _id(1, 2)
ERROR_CASE: Final = _id(1, 3)
TIMEOUT_CASE: Final = _id(1, 4)
CANCELED_CASE: Final = _id(1, 5)
ODD_CASE: Final = _id(1, 6)
ENDLESS_CASE: Final = _id(1, 7)
CASES: Final = {
    PASSING_CASE: Case("User Login Flow", "passed"),
    FAILING_CASE: Case(
        "Checkout Process", "failed", "Element not found: button[data-test='submit-order']"
    ),
    ERROR_CASE: Case("Search", "error", "Browser crashed"),
    TIMEOUT_CASE: Case("Slow Report", "timeout", "Test exceeded the maximum execution time"),
    CANCELED_CASE: Case("Settings", "canceled"),
    ODD_CASE: Case("Odd One", "exploded"),  # a status the document does not list
    ENDLESS_CASE: Case("Endless", "never"),
}
MIXED_SUITE: Final = _id(2, 1)  # answers "completed" with counts: 1 of 2 failed
GREEN_SUITE: Final = _id(2, 2)  # "completed", all passed
VERDICT_SUITE: Final = _id(2, 3)  # answers "failed" itself (the status table's form)
ENDLESS_SUITE: Final = _id(2, 4)
SUITES: Final = {
    MIXED_SUITE: ("Critical User Flows", [PASSING_CASE, FAILING_CASE], "completed"),
    GREEN_SUITE: ("Smoke", [PASSING_CASE, PASSING_CASE], "completed"),
    VERDICT_SUITE: ("Regression", [PASSING_CASE, FAILING_CASE], "verdict"),
    ENDLESS_SUITE: ("Stuck", [PASSING_CASE, ENDLESS_CASE], "completed"),
}
PROJECT: Final = _id(3, 1)
PROJECTS: Final = {PROJECT: ("E-commerce Site", [PASSING_CASE, FAILING_CASE, PASSING_CASE])}


@dataclass
class Run:
    id: str
    case: Case
    reads: int = 0
    started_at: str = ""
    context: dict[str, Any] = field(default_factory=dict)

    def status(self) -> str:
        if self.reads < len(STEPS) or self.case.outcome == "never":
            return STEPS[min(self.reads, len(STEPS) - 1)]
        return self.case.outcome

    def observe(self) -> str:
        status = self.status()
        self.reads += 1
        return status

    def ended(self) -> bool:
        return self.status() not in STEPS


@dataclass
class SuiteRun:
    id: str
    name: str
    runs: list[Run]
    form: str


@dataclass
class State:
    runs: dict[str, Run] = field(default_factory=dict)
    suites: dict[str, SuiteRun] = field(default_factory=dict)


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    test_case_id: str | None = None
    test_suite_id: str | None = None
    project_id: str | None = None
    browserType: str | None = None  # the API's own camelCase names
    viewportPreset: str | None = None
    viewportWidth: int | None = None
    viewportHeight: int | None = None
    context: dict[str, Any] | None = None


def _error(status: int, error: str, message: str, **extra: Any) -> Response[Any]:
    return Response({"error": error, "message": message, **extra}, status_code=status)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uuid(value: str, name: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise HTTPException(status_code=400, detail=f"{name} must be a UUID") from None


def create_app(*, api_key: str = API_KEY, limit: int = 30, window: float = 60.0) -> Litestar:
    """The simulator; ``limit`` requests per ``window`` seconds per endpoint, as documented."""
    state = State()
    rates = RateWindow(limit, window)
    faults = Faults()

    def before(request: Request[Any, Any, Any]) -> Response[Any] | None:
        group = group_of(request)
        if group is None:
            return None
        key = _key(request)
        if key != api_key:
            return _error(401, "Unauthorized", "Missing or invalid API key")
        fault = faults.take()
        if fault is not None:
            return _fault(fault)
        if group == "ci_config":  # the document sets no limit on it
            return None
        verdict = rates.admit(key, group)
        if not verdict.admitted:
            return _error(
                429,
                "Too Many Requests",
                "Rate limit exceeded. Please try again later.",
                retry_after=retry_seconds(verdict.retry_after),
            )
        return None

    def new_run(case_id: str, context: dict[str, Any]) -> Run:
        run = Run(id=str(uuid.uuid4()), case=CASES[case_id], started_at=_now(), context=context)
        state.runs[run.id] = run
        return run

    @post("/api/v1/trigger", opt={"limit": "trigger_post"}, sync_to_thread=False)
    def trigger(request: Request[Any, Any, Any], data: JSONBody[Any] = None) -> Response[Any]:
        body = _body(data)
        given = [n for n in ("test_case_id", "test_suite_id", "project_id") if getattr(body, n)]
        if len(given) != 1:
            return _error(
                400,
                "Bad Request",
                "You must provide exactly one of test_case_id, test_suite_id, or project_id",
            )
        context = body.context or {}
        if body.test_case_id:
            _uuid(body.test_case_id, "test_case_id")
            if body.test_case_id not in CASES:
                return _error(404, "Not Found", "Test case not found")
            run = new_run(body.test_case_id, context)
            answer: dict[str, Any] = {
                "test_run_id": run.id,
                "message": "Test run queued successfully",
            }
        elif body.test_suite_id:
            _uuid(body.test_suite_id, "test_suite_id")
            if body.test_suite_id not in SUITES:
                return _error(404, "Not Found", "Test suite not found")
            name, cases, form = SUITES[body.test_suite_id]
            suite = SuiteRun(str(uuid.uuid4()), name, [new_run(c, context) for c in cases], form)
            state.suites[suite.id] = suite
            answer = {
                "suite_run_id": suite.id,
                "test_count": len(cases),
                "message": f"{len(cases)} tests queued successfully",
            }
        else:
            project_id = body.project_id or ""
            _uuid(project_id, "project_id")
            if project_id not in PROJECTS:
                return _error(404, "Not Found", "Project not found")
            runs = [new_run(c, context) for c in PROJECTS[project_id][1]]
            answer = {
                "test_run_ids": [r.id for r in runs],
                "test_count": len(runs),
                "message": f"{len(runs)} tests queued successfully",
            }
        return Response({"success": True, **answer, "status": "pending"}, status_code=201)

    @get("/api/v1/trigger", opt={"limit": "trigger_get"}, sync_to_thread=False)
    def status(test_run_id: QueryText = None, suite_run_id: QueryText = None) -> Response[Any]:
        if test_run_id:
            run = state.runs.get(test_run_id)
            if run is None:
                return _error(404, "Not Found", "Test run not found")
            return Response(_run_status(run))
        if suite_run_id:
            suite = state.suites.get(suite_run_id)
            if suite is None:
                return _error(404, "Not Found", "Suite run not found")
            return Response(_suite_status(suite))
        return _error(400, "Bad Request", "Provide test_run_id or suite_run_id")

    @get("/api/v1/results", opt={"limit": "results"}, sync_to_thread=False)
    def results(test_run_ids: QueryText = None, suite_run_id: QueryText = None) -> Response[Any]:
        if suite_run_id:
            suite = state.suites.get(suite_run_id)
            if suite is None:
                return _error(404, "Not Found", "Suite run not found")
            extra = {"suite_run_id": suite.id, "suite_name": suite.name}
            return Response({**extra, **_aggregate(suite.runs)})
        if not test_run_ids:
            return _error(400, "Bad Request", "Provide test_run_ids or suite_run_id")
        runs = []
        for run_id in test_run_ids.split(","):
            run = state.runs.get(run_id.strip())
            if run is None:
                return _error(404, "Not Found", f"Test run {run_id} not found")
            runs.append(run)
        return Response(_aggregate(runs))

    @get("/api/v1/ci-config", opt={"limit": "ci_config"}, sync_to_thread=False)
    def ci_config(project_id: QueryText = None) -> Response[Any]:
        if not project_id or project_id not in PROJECTS:
            return _error(404, "Not Found", "Project not found")
        return Response(
            {
                "project_id": project_id,
                "project_name": PROJECTS[project_id][0],
                "ci_config": {
                    "provider": "github-actions",
                    "trigger_on": ["push", "pull_request"],
                    "branches": ["main", "develop"],
                    "test_suite_id": MIXED_SUITE,
                },
            }
        )

    def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        return _error(exc.status_code, "Bad Request", str(exc.detail))

    return simulated_api(
        [trigger, status, results, ci_config],
        rates=rates,
        faults=faults,
        runs=state.runs,
        before=before,
        http_error=http_error,
    )


def _key(request: Request[Any, Any, Any]) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def _fault(fault: Any) -> Response[Any]:
    if fault.status == 429:
        return _error(
            429,
            "Too Many Requests",
            "Rate limit exceeded. Please try again later.",
            retry_after=fault.retry_after if fault.retry_after is not None else 60,
        )
    return _error(
        fault.status,
        "Internal Server Error",
        "An unexpected error occurred. Please try again later.",
    )


def _body(data: Any) -> Body:
    if not isinstance(data, dict):
        raise HTTPException(status_code=400, detail="The body must be a JSON object")
    try:
        return msgspec.convert(data, Body)
    except msgspec.ValidationError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def _run_status(run: Run) -> dict[str, Any]:
    status = run.observe()
    ended = status not in STEPS
    duration = 45_000 if ended else None
    steps_total = 12
    return {
        "id": run.id,
        "status": status,
        "started_at": run.started_at if status != "pending" else None,
        "completed_at": _now() if ended else None,
        "duration_ms": duration,
        "steps_completed": steps_total if status == "passed" else (6 if ended else 0),
        "steps_total": steps_total,
        "error_message": run.case.error if ended else None,
        "video_url": f"https://storage.example/recordings/{run.id}.webm" if ended else None,
    }


def _suite_status(suite: SuiteRun) -> dict[str, Any]:
    statuses = [r.observe() for r in suite.runs]
    ended = all(s not in STEPS for s in statuses)
    passed = sum(1 for s in statuses if s == "passed")
    failed = sum(1 for s in statuses if s not in STEPS and s != "passed")
    if not ended:
        status = "running" if any(s != "pending" for s in statuses) else "pending"
    elif suite.form == "verdict":
        status = "passed" if failed == 0 else "failed"
    else:
        status = "completed"
    return {
        "id": suite.id,
        "status": status,
        "started_at": suite.runs[0].started_at,
        "completed_at": _now() if ended else None,
        "duration_ms": 45_000 * len(suite.runs) if ended else None,
        "total_tests": len(suite.runs),
        "passed_tests": passed,
        "failed_tests": failed,
    }


def _aggregate(runs: list[Run]) -> dict[str, Any]:
    entries = []
    for run in runs:
        status = run.observe()
        entry: dict[str, Any] = {
            "test_run_id": run.id,
            "test_case_name": run.case.name,
            "status": status,
            "duration_ms": 45_000 if status not in STEPS else None,
            "dashboard_url": f"{LINK}{run.id}",
        }
        if run.case.error and status not in STEPS:
            entry["error_message"] = run.case.error
        entries.append(entry)
    statuses = [e["status"] for e in entries]
    passed = statuses.count("passed")
    failed = sum(1 for s in statuses if s not in STEPS and s != "passed")
    if any(s in STEPS for s in statuses):
        overall = "running"
    else:
        overall = "passed" if failed == 0 else "failed"
    return {
        "total_tests": len(entries),
        "passed_tests": passed,
        "failed_tests": failed,
        "status": overall,
        "results": entries,
    }
