"""A local QualGent: the documented endpoints, X-Api-Key auth, FastAPI-style errors, the
10-a-second limit with its X-RateLimit-* headers and Retry-After, and test runs that go queued ->
running -> an outcome chosen by the test case (see TEST_CASES).

A run moves one step each time its status is asked, so tests know how many polls it takes.
It answers what the document shows, field for field, and refuses what it does not describe:
unknown fields (422), more than ``MAX_JOBS`` test cases in one run, and the paths the document
names no path for (categories, devices, deleting apps) answer 404.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.params import JSONBody, MultipartBody, PathParameter, QueryParameter

from receiver.simulator.common import Faults, RateWindow, group_of, retry_seconds, simulated_api

API_KEY: Final = "qg_sim_key"
APP_ID: Final = "file_sim_app"
LINK: Final = "https://app.qualgent.ai/test-runs/"
STEPS: Final = ("queued", "running")
MAX_JOBS: Final = 10  # "a single batch request with up to 10 parallel tests"
ORIENTATIONS: Final = ("portrait", "landscape")
DEVICE: Final = {"name": "Pixel 7", "platform": "Android", "os_version": "14"}

PathText = Annotated[str, PathParameter()]
QueryText = Annotated[str | None, QueryParameter()]


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    outcome: str  # "completed", "passed", "failed", "never", or a status the document lacks
    category: str | None = None
    active: bool = True


TEST_CASES: Final = {
    c.id: c
    for c in (
        Case("tc_pass", "Login Flow Test", "completed", "cat_smoke"),
        Case("tc_fail", "Payment Flow Test", "failed", "cat_smoke"),
        Case("tc_passed_form", "Profile Test", "passed", "cat_extra"),
        Case("tc_odd", "Odd Test", "exploded", active=False),
        Case("tc_endless", "Endless Test", "never", active=False),
    )
}
CATEGORIES: Final = {
    "cat_smoke": ("Smoke Tests", "Fast checks of the main flows"),
    "cat_extra": ("Extra", "Everything else"),
}


@dataclass
class Run:
    id: str
    case: Case
    app: dict[str, Any]
    device: str
    reads: int = 0

    def observe(self) -> str:
        if self.reads < len(STEPS) or self.case.outcome == "never":
            status = STEPS[min(self.reads, len(STEPS) - 1)]
        else:
            status = self.case.outcome
        self.reads += 1
        return status

    def view(self, status: str, *, link: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id}
        if link:
            body["link"] = f"{LINK}{self.id}"
        progress = {"queued": 0, "running": 45}.get(status, 100)
        return body | {
            "test_case": {"id": self.case.id, "name": self.case.name},
            "app": self.app,
            "status": status,
            "priority": "medium",
            "progress": progress,
            "executed_by": {"id": "user_sim", "name": "Sim User", "email": "sim@example.com"},
            "device": self.device,
        }


@dataclass
class State:
    runs: dict[str, Run] = field(default_factory=dict)
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class DeviceBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    platform: str
    os_version: str
    orientation: str | None = None


class JobBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    test_case_id: str
    app_file_id: str | None = None
    device: DeviceBody | None = None
    platform: str | None = None


class RunBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    jobs: list[JobBody]


class RunAllBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    app_file_id: str
    device: DeviceBody
    category_id: str | None = None


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"detail": detail}, status_code=status, headers=headers)


def _decode(data: Any, kind: type[msgspec.Struct]) -> Any:
    """FastAPI's 422: a list of {loc, msg, type}."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        where = str(exc).rsplit(" - at `$", 1)
        loc = ["body", *[p for p in where[1].rstrip("`").split(".") if p]] if len(where) > 1 else []
        detail = [{"loc": loc, "msg": where[0], "type": "value_error"}]
        raise HTTPException(status_code=422, detail=msgspec.json.encode(detail).decode()) from None


def create_app(*, api_key: str = API_KEY, limit: int = 10, window: float = 1.0) -> Litestar:
    """The simulator; ``limit`` requests per ``window`` seconds per key, as documented."""
    state = State()
    state.apps[APP_ID] = {"id": APP_ID, "name": "MyApp v1.0.0", "version": "1.0.0", "os": "android"}
    rates = RateWindow(limit, window)
    faults = Faults()

    def before(request: Request[Any, Any, Any]) -> Response[Any] | None:
        if group_of(request) is None:
            return None
        key = request.headers.get("x-api-key")
        if key != api_key:
            return _detail(401, "Invalid or missing API key")
        fault = faults.take()
        if fault is not None:
            if fault.status == 429:
                wait = fault.retry_after if fault.retry_after is not None else 1
                return _detail(429, "Rate limit exceeded", {"Retry-After": str(wait)})
            return _detail(fault.status, "Internal Server Error")
        verdict = rates.admit(key, "all")
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(verdict.remaining),
            "X-RateLimit-Reset": str(retry_seconds(verdict.reset)),
        }
        request.state.rate_headers = headers
        if not verdict.admitted:
            headers["Retry-After"] = str(retry_seconds(verdict.retry_after))
            return _detail(429, "Rate limit exceeded", headers)
        return None

    def start(case_id: str, app_id: str | None, device: str) -> Run:
        case = TEST_CASES.get(case_id)
        if case is None:
            raise HTTPException(status_code=404, detail=f"Test case {case_id} not found")
        app = state.apps.get(app_id or APP_ID)
        if app is None:
            raise HTTPException(status_code=404, detail=f"App file {app_id} not found")
        run = Run(
            id=f"run_{next(state.ids):06d}",
            case=case,
            app={"id": app["id"], "name": app["name"]},
            device=device,
        )
        state.runs[run.id] = run
        return run

    def answer(request: Request[Any, Any, Any], body: Any) -> Response[Any]:
        return Response(body, headers=getattr(request.state, "rate_headers", None))

    @post("/v1/apps/upload", opt={"limit": "all"}, status_code=200)
    async def upload(
        request: Request[Any, Any, Any],
        data: MultipartBody[dict[str, Any]],
    ) -> Response[Any]:
        missing = [k for k in ("file", "app_name", "version") if not data.get(k)]
        if missing:
            detail = [
                {"loc": ["body", k], "msg": "field required", "type": "value_error.missing"}
                for k in missing
            ]
            return _detail(422, detail)
        file: UploadFile = data["file"]
        content = await file.read()
        app_id = f"file_{next(state.ids):06d}"
        os_name = data.get("os") or ("ios" if file.filename.endswith(".ipa") else "android")
        name = f"{data['app_name']} v{data['version']}"
        state.apps[app_id] = {"id": app_id, "name": name, "version": data["version"], "os": os_name}
        stored = f"{app_id}-{data['app_name']}-{data['version']}"
        return answer(
            request,
            {
                "success": True,
                "file": {
                    "file_path": f"user_sim/{stored}",
                    "filename": stored,
                    "original_name": file.filename,
                    "file_size": len(content),
                    "file_type": file.content_type,
                    "app_name": data["app_name"],
                    "version": data["version"],
                    "os": os_name,
                    "user_id": "user_sim",
                    "organization_id": "org_sim",
                },
            },
        )  # fmt: skip  (the document's fields: no id; GET /v1/apps/latest names it)

    @get("/v1/apps", opt={"limit": "all"}, sync_to_thread=False)
    def list_apps(request: Request[Any, Any, Any]) -> Response[Any]:
        return answer(request, [_app(a) for a in state.apps.values()])

    @get("/v1/apps/{app_id:str}", opt={"limit": "all"}, sync_to_thread=False)
    def get_app(request: Request[Any, Any, Any], app_id: PathText) -> Response[Any]:
        apps = list(state.apps.values())
        app = apps[-1] if app_id == "latest" and apps else state.apps.get(app_id)
        if app is None:
            return _detail(404, f"App {app_id} not found")
        return answer(request, _app(app))

    @get("/v1/test-cases/list", opt={"limit": "all"}, sync_to_thread=False)
    def list_cases(request: Request[Any, Any, Any], category: QueryText = None) -> Response[Any]:
        cases = [c for c in TEST_CASES.values() if category is None or c.category == category]
        return answer(request, [_case(c, _latest(state, c)) for c in cases])

    @post("/v1/test-cases/run", opt={"limit": "all"}, sync_to_thread=False, status_code=200)
    def run(request: Request[Any, Any, Any], data: JSONBody[Any] = None) -> Response[Any]:
        body: RunBody = _decode(data, RunBody)
        if not body.jobs:
            return _detail(400, "jobs must not be empty")
        if len(body.jobs) > MAX_JOBS:
            return _detail(400, f"At most {MAX_JOBS} jobs in one request")
        for job in body.jobs:
            if job.device and job.device.orientation not in (None, *ORIENTATIONS):
                return _detail(422, f"device.orientation must be one of {ORIENTATIONS}")
            if job.device is None and not job.platform:
                return _detail(400, "Each job needs a device, or a platform to auto-select one")
            if job.app_file_id is None and not job.platform:
                return _detail(400, "Each job needs app_file_id, or a platform to auto-select one")
        runs = [
            start(j.test_case_id, j.app_file_id, j.device.name if j.device else DEVICE["name"])
            for j in body.jobs
        ]
        return answer(request, {"success": True, "jobs": [{"link": f"{LINK}{r.id}"} for r in runs]})

    @post("/v1/test-cases/run-all", opt={"limit": "all"}, sync_to_thread=False, status_code=200)
    def run_all(request: Request[Any, Any, Any], data: JSONBody[Any] = None) -> Response[Any]:
        body: RunAllBody = _decode(data, RunAllBody)
        if body.category_id and body.category_id not in CATEGORIES:
            return _detail(404, f"Category {body.category_id} not found")
        cases = [
            c for c in TEST_CASES.values()
            if c.active and (body.category_id is None or c.category == body.category_id)
        ]  # fmt: skip
        runs = [start(c.id, body.app_file_id, body.device.name) for c in cases]
        return answer(request, {"success": True, "jobs": [{"link": f"{LINK}{r.id}"} for r in runs]})

    @get("/v1/jobs/list", opt={"limit": "all"}, sync_to_thread=False)
    def list_jobs(request: Request[Any, Any, Any]) -> Response[Any]:
        views = [r.view(_listed(r.observe()), link=True) for r in state.runs.values()]
        for view in views:  # the list's example names the user without an id
            del view["executed_by"]["id"]
        return answer(request, {"test_runs": views})

    @get("/v1/jobs/status/{test_run_id:str}", opt={"limit": "all"}, sync_to_thread=False)
    def job_status(request: Request[Any, Any, Any], test_run_id: PathText) -> Response[Any]:
        found = state.runs.get(test_run_id)
        if found is None:
            return _detail(404, f"Test run {test_run_id} not found")
        return answer(request, found.view(found.observe(), link=False))

    def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        detail: Any = exc.detail
        if exc.status_code == 422:
            detail = msgspec.json.decode(detail)
        return _detail(exc.status_code, detail)

    handlers = [upload, list_apps, get_app, list_cases, run, run_all, list_jobs, job_status]
    return simulated_api(
        handlers, rates=rates, faults=faults, runs=state.runs, before=before, http_error=http_error
    )


def _listed(status: str) -> str:
    """The list documents passed/failed where the status endpoint says completed/failed."""
    return "passed" if status == "completed" else status


def _app(app: dict[str, Any]) -> dict[str, Any]:
    return {**app, "link": f"https://storage.example/apps/{app['id']}?expires=300"}


def _latest(state: State, case: Case) -> dict[str, Any] | None:
    """The case's newest ended run, as the document shows it (no test_case inside)."""
    ended = [r for r in state.runs.values() if r.case.id == case.id and r.reads > len(STEPS)]
    if not ended:
        return None
    run = ended[-1]
    view = run.view(_listed(run.case.outcome), link=True)
    del view["test_case"]
    return view


def _case(case: Case, latest: dict[str, Any] | None) -> dict[str, Any]:
    category = CATEGORIES.get(case.category or "")
    return {
        "id": case.id,
        "name": case.name,
        "status": "active" if case.active else "inactive",
        "category": {"id": case.category, "name": category[0]} if category else None,
        "latest_completed_run": latest,
    }
