"""QualGent (mobile tests): its API as documented, a client, and its test runs normalised.

QualGent does not call back: ``POST /v1/test-cases/run`` (or ``run-all``) queues test runs and
answers only their links; ``GET /v1/jobs/status/{id}`` tells how each goes. The API allows 10
requests a second per key and says where one stands in ``X-RateLimit-*`` headers; the client keeps
under both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from receiver.config import Config
from receiver.providers.base import JobBody, Outgoing, Progress, Sent, check_custom_data, kept
from receiver.providers.errors import RequestRejected
from receiver.providers.polled import PolledClient
from receiver.results import TERMINAL_STATUSES, CustomData, Failure, Result, TestCase

NAME: Final = "qualgent"
EVENT: Final = "test_results"
RATE_LIMIT: Final = 10  # requests per window, per API key
RATE_WINDOW: Final = 1.0  # seconds
TEST_RUNS: Final = "test_runs"  # jobs.external_kind: comma-separated test run ids
# The status answer has no link; every link in the document has this form.
RUN_PAGE: Final = "https://app.qualgent.ai/test-runs/"
MAX_JOBS: Final = 10  # "a single batch request with up to 10 parallel tests"
ORIENTATIONS: Final = ("portrait", "landscape")
PLATFORM_NAMES: Final = {"android": "Android", "ios": "iOS"}

# Every status the document names, in its three places (jobs list, job status, test cases).
STATUSES: Final = {
    "queued": "pending",
    "running": "running",
    "passed": "passed",
    "completed": "passed",
    "failed": "failed",
}


# ---------------------------------------------------------------------------------------------
# The API's shapes

LATEST_APP: Final = "latest"  # GET /v1/apps/latest: the newest upload


class Device(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    platform: str
    os_version: str
    orientation: str | None = None


class RunJob(msgspec.Struct, kw_only=True, omit_defaults=True):
    test_case_id: str
    app_file_id: str | None = None
    device: Device | None = None
    platform: str | None = None  # lets QualGent pick app and device


class RunRequest(msgspec.Struct, kw_only=True):
    """``POST /v1/test-cases/run``."""

    jobs: list[RunJob]


class RunAllRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /v1/test-cases/run-all``."""

    app_file_id: str
    device: Device
    category_id: str | None = None


class JobLink(msgspec.Struct, kw_only=True):
    link: str | None = None
    id: str | None = None  # not in the document; taken if QualGent adds it


class RunResponse(msgspec.Struct, kw_only=True):
    success: bool = True
    jobs: list[JobLink] = msgspec.field(default_factory=list)


class QualgentJob(JobBody, tag=NAME, omit_defaults=True):
    """What POST /api/jobs takes for QualGent: one test case, ``jobs`` (the document's own
    ``POST /v1/test-cases/run`` body: up to 10 test cases in one request, a job each), or
    ``run_all`` (by category)."""

    test_case_id: str | None = None
    run_all: bool = False
    app_file_id: str | None = None
    device: Device | None = None
    platform: str | None = None
    category_id: str | None = None
    jobs: list[RunJob] | None = None


class KeptRequest(msgspec.Struct, kw_only=True):
    """What polling reads back of a job's kept request: where its tests run."""

    device: Device | None = None
    platform: str | None = None
    app_file_id: str | None = None


class UploadedFile(msgspec.Struct, kw_only=True):
    file_path: str | None = None
    filename: str | None = None
    original_name: str | None = None
    file_size: int | None = None
    file_type: str | None = None
    app_name: str | None = None
    version: str | None = None
    os: str | None = None
    user_id: str | None = None
    organization_id: str | None = None


class UploadResponse(msgspec.Struct, kw_only=True):
    success: bool = True
    file: UploadedFile | None = None


class App(msgspec.Struct, kw_only=True):
    """An entry of ``GET /v1/apps`` and the answer of ``GET /v1/apps/{id|latest}``."""

    id: str
    name: str | None = None
    version: str | None = None
    os: str | None = None
    link: str | None = None  # pre-signed, valid for 5 minutes


class Ref(msgspec.Struct, kw_only=True):
    id: str | None = None
    name: str | None = None


class Person(msgspec.Struct, kw_only=True):
    id: str | None = None
    name: str | None = None
    email: str | None = None


class TestRun(msgspec.Struct, kw_only=True):
    """An entry of ``GET /v1/jobs/list`` and the answer of ``GET /v1/jobs/status/{id}``."""

    id: str | None = None
    link: str | None = None
    test_case: Ref | None = None
    app: Ref | None = None
    status: str | None = None
    priority: str | None = None
    progress: int | float | None = None
    executed_by: Person | None = None
    device: str | None = None


class JobsList(msgspec.Struct, kw_only=True):
    test_runs: list[TestRun] = msgspec.field(default_factory=list)


class TestCaseInfo(msgspec.Struct, kw_only=True):
    """An entry of ``GET /v1/test-cases/list``."""

    id: str
    name: str | None = None
    status: str | None = None
    category: Ref | None = None
    latest_completed_run: TestRun | None = None


# ---------------------------------------------------------------------------------------------
# The client


class Qualgent(PolledClient):
    """QualGent's API for one key: every endpoint counts in the one window."""

    name = NAME
    label = "QualGent"
    request_type = QualgentJob
    WINDOWS = ("all",)
    LIMIT = RATE_LIMIT
    WINDOW_SECONDS = RATE_WINDOW

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"X-Api-Key": api_key}

    @classmethod
    def from_config(cls, config: Config) -> Qualgent | None:
        """Polled only when its key is set."""
        return cls(config.qualgent) if config.qualgent.api_key else None

    async def upload_app(
        self, path: Path, *, app_name: str, version: str, os: str | None = None
    ) -> UploadResponse:
        # The document's required fields, checked before anything is sent.
        for name, value in (("app_name", app_name), ("version", version)):
            if not value.strip():
                raise RequestRejected(self.label, f"{name}: is required")
        if not path.is_file():
            raise RequestRejected(self.label, f"file: {path} is not a file")
        if path.stat().st_size == 0:
            raise RequestRejected(self.label, f"file: {path} is empty")
        data = {"app_name": app_name, "version": version, **({"os": os} if os else {})}
        with path.open("rb") as file:
            response = await self.api.call(
                "POST",
                "/v1/apps/upload",
                window="all",
                data=data,
                files={"file": (path.name, file.read())},
            )
        return msgspec.json.decode(response.content, type=UploadResponse)

    async def list_apps(self) -> list[App]:
        return await self.get_json("/v1/apps", list[App], window="all")

    async def get_app(self, app_id: str = LATEST_APP) -> App:
        """One app, or with ``latest`` the newest upload (the upload answer has no id)."""
        return await self.get_json(f"/v1/apps/{app_id}", App, window="all")

    async def list_test_cases(self, category: str | None = None) -> list[TestCaseInfo]:
        params = {"category": category} if category else {}
        return await self.get_json(
            "/v1/test-cases/list", list[TestCaseInfo], window="all", params=params
        )

    async def run(self, request: RunRequest, *, retry_limited: bool = True) -> RunResponse:
        return await self.post_json(
            "/v1/test-cases/run", request, RunResponse, window="all", retry_limited=retry_limited
        )

    async def run_all(self, request: RunAllRequest, *, retry_limited: bool = True) -> RunResponse:
        return await self.post_json(
            "/v1/test-cases/run-all",
            request,
            RunResponse,
            window="all",
            retry_limited=retry_limited,
        )

    async def list_jobs(self) -> JobsList:
        return await self.get_json("/v1/jobs/list", JobsList, window="all")

    async def job_status(self, test_run_id: str) -> TestRun:
        return await self.get_json(f"/v1/jobs/status/{test_run_id}", TestRun, window="all")

    # -- as a Provider -------------------------------------------------------------------------

    def prepare(self, request: QualgentJob, callback_url: str | None) -> Outgoing:
        check_custom_data(self.label, request.custom_data)
        if request.jobs is not None:
            batch = batch_request(request)
            parts: list[JobBody] = [part_of(request, job) for job in batch.jobs]
            return Outgoing(wire=batch, kept=kept(request), parts=parts if len(parts) > 1 else [])
        wire = run_all_request(request) if request.run_all else run_request(request)
        return Outgoing(wire=wire, kept=kept(request))

    def send_delay(self, request: QualgentJob) -> float:
        return self.api.delay(("all",))

    async def send(self, outgoing: Outgoing) -> Sent:
        wire = outgoing.wire
        if _uses_latest_app(wire):  # run on the newest upload, named by its id
            wire = await self._on_latest_app(wire)
        answer = await (
            self.run_all(wire, retry_limited=False)
            if isinstance(wire, RunAllRequest)
            else self.run(wire, retry_limited=False)
        )
        ids = [i for i in (run_id(j) for j in answer.jobs) if i]
        if not ids:
            raise RequestRejected(
                self.label, "QualGent queued no test run (its answer had no link)"
            )
        if outgoing.parts:  # one job per test case, in the order of the request
            parts = [Sent(external_kind=TEST_RUNS, external_id=i) for i in ids]
            return Sent(external_kind=TEST_RUNS, external_id=ids[0], parts=parts)
        return Sent(external_kind=TEST_RUNS, external_id=",".join(ids))

    async def _on_latest_app(self, wire: RunRequest | RunAllRequest) -> RunRequest | RunAllRequest:
        latest = (await self.get_app(LATEST_APP)).id
        if isinstance(wire, RunAllRequest):
            return msgspec.structs.replace(wire, app_file_id=latest)
        jobs = [
            msgspec.structs.replace(job, app_file_id=latest)
            if job.app_file_id == LATEST_APP
            else job
            for job in wire.jobs
        ]
        return msgspec.structs.replace(wire, jobs=jobs)

    async def poll(
        self, kind: str, external_id: str, custom_data: CustomData, request: str | None = None
    ) -> Progress:
        runs = [await self.job_status(i) for i in external_id.split(",")]
        states = [run_state(r.status) for r in runs]
        if any(s in ("pending", "running") for s in states):
            state = (
                "running"
                if "running" in states or any(s in TERMINAL_STATUSES for s in states)
                else "pending"
            )
            return Progress(state=state, raw_status=_raw(runs), progress=_progress(runs))
        where = _kept_request(request)
        return Progress(state="ended", result=to_result(runs, external_id, custom_data, where))


def _uses_latest_app(wire: RunRequest | RunAllRequest) -> bool:
    if isinstance(wire, RunAllRequest):
        return wire.app_file_id == LATEST_APP
    return any(job.app_file_id == LATEST_APP for job in wire.jobs)


def batch_request(request: QualgentJob) -> RunRequest:
    """The document's ``jobs[]``, each job checked as the document lists its fields."""
    given = [n for n in ("test_case_id", "app_file_id", "device", "platform", "category_id")
             if getattr(request, n)]  # fmt: skip
    if given or request.run_all:
        raise RequestRejected(
            "QualGent", f"Give jobs or {given[0] if given else 'run_all'}, not both"
        )
    jobs = request.jobs or []
    if not 1 <= len(jobs) <= MAX_JOBS:
        raise RequestRejected(
            "QualGent", f"jobs: {len(jobs)} test cases; QualGent runs 1 to {MAX_JOBS} at once"
        )
    for index, job in enumerate(jobs):
        _check_job(job, f"jobs[{index}]")
    return RunRequest(jobs=jobs)


def part_of(request: QualgentJob, job: RunJob) -> QualgentJob:
    """One test case of a batch, as its own job's request (a re-run repeats it alone)."""
    return QualgentJob(
        test_case_id=job.test_case_id,
        app_file_id=job.app_file_id,
        device=job.device,
        platform=job.platform,
        custom_data=request.custom_data,
    )


def _check_job(job: RunJob, where: str) -> None:
    if not job.test_case_id:
        raise RequestRejected("QualGent", f"{where}.test_case_id is required")
    if not job.platform and not (job.app_file_id and job.device):
        raise RequestRejected(
            "QualGent", f"{where} needs app_file_id and device (or platform to auto-select)"
        )
    if job.device is not None:
        _check_device(job.device, f"{where}.device")


def _check_device(device: Device, where: str) -> None:
    for name in ("name", "platform", "os_version"):
        if not getattr(device, name).strip():
            raise RequestRejected("QualGent", f"{where}.{name} is required")
    if device.orientation is not None and device.orientation not in ORIENTATIONS:
        raise RequestRejected(
            "QualGent",
            f"{where}.orientation: {device.orientation!r} is not one of {', '.join(ORIENTATIONS)}",
        )


def run_request(request: QualgentJob) -> RunRequest:
    if not request.test_case_id:
        raise RequestRejected(
            "QualGent", "A QualGent run needs test_case_id, or run_all: true to run every test"
        )
    if not request.platform and not (request.app_file_id and request.device):
        raise RequestRejected(
            "QualGent", "A QualGent run needs app_file_id and device (or platform to auto-select)"
        )
    job = RunJob(
        test_case_id=request.test_case_id,
        app_file_id=request.app_file_id,
        device=request.device,
        platform=request.platform,
    )
    _check_job(job, "the run")
    return RunRequest(jobs=[job])


def run_all_request(request: QualgentJob) -> RunAllRequest:
    if request.test_case_id:
        raise RequestRejected("QualGent", "Give test_case_id or run_all, not both")
    if not request.app_file_id or request.device is None:
        raise RequestRejected("QualGent", "run_all needs app_file_id and device")
    _check_device(request.device, "device")
    return RunAllRequest(
        app_file_id=request.app_file_id, device=request.device, category_id=request.category_id
    )


def run_id(job: JobLink) -> str | None:
    """QualGent answers only a link; the run id is its last path segment."""
    if job.id:
        return job.id
    if job.link:
        return job.link.rstrip("/").rsplit("/", 1)[-1] or None
    return None


# ---------------------------------------------------------------------------------------------
# Normalisation


def run_state(raw: str | None) -> str:
    """pending/running, a terminal status, or ``error`` for a value the document does not list."""
    return STATUSES.get((raw or "").strip().lower(), "error")


def _raw(runs: list[TestRun]) -> str:
    return ",".join(r.status or "" for r in runs)


def _progress(runs: list[TestRun]) -> float | None:
    """The runs' mean progress (0-100), when QualGent says."""
    known = [float(r.progress) for r in runs if r.progress is not None]
    return round(sum(known) / len(known), 1) if known else None


def _kept_request(request: str | None) -> KeptRequest:
    if not request:
        return KeptRequest()
    try:
        return msgspec.json.decode(request, type=KeptRequest)
    except msgspec.DecodeError:
        return KeptRequest()


def platform_of(where: KeptRequest) -> str | None:
    """``Android 14``: the requested device's platform and OS version, else the platform."""
    device = where.device
    if device is not None:
        name = PLATFORM_NAMES.get(device.platform.strip().lower(), device.platform)
        return f"{name} {device.os_version}".strip()
    if where.platform:
        return PLATFORM_NAMES.get(where.platform.strip().lower(), where.platform)
    return None


def _test(run: TestRun, where: KeptRequest) -> TestCase:
    name = (run.test_case.name if run.test_case else None) or f"test run {run.id}"
    status = run_state(run.status)
    device = run.device or (where.device.name if where.device else None)
    return TestCase(
        name=name,
        status=status,
        error=None if status == "passed" else (run.status or "no status"),
        execution_id=run.id,
        url=run.link or (f"{RUN_PAGE}{run.id}" if run.id else None),
        device=device,
        platform=platform_of(where),
        progress=None if run.progress is None else float(run.progress),
    )


def to_result(
    runs: list[TestRun],
    external_id: str,
    custom_data: CustomData,
    where: KeptRequest | None = None,
) -> Result:
    tests = [_test(r, where or KeptRequest()) for r in runs]
    passed = sum(1 for t in tests if t.status == "passed")
    failed = sum(1 for t in tests if t.status == "failed")
    statuses = {t.status for t in tests}
    if statuses <= {"passed"}:
        final = "passed"
    elif "error" in statuses:  # a status the document does not list: never a silent pass
        final = "error"
    else:
        final = "failed"
    return Result(
        provider=NAME,
        event=EVENT,
        status=final,
        raw_status=_raw(runs),
        total=len(tests),
        passed=passed,
        failed=failed,
        report_url=tests[0].url if len(tests) == 1 else None,
        summary=_summary(tests, passed),
        external_job_id=external_id,
        custom_data=custom_data,
        tests=tests,
        failures=[
            Failure(test=t.name, error=t.error or t.status) for t in tests if t.status != "passed"
        ],
    )


def _summary(tests: list[TestCase], passed: int) -> str:
    """``Login Flow Test · Pixel 8 · Android 14: passed``, or for several ``2 of 3 ...``."""
    if len(tests) == 1:
        test = tests[0]
        where = f" · {test.where}" if test.where else ""
        return f"{test.name}{where}: {test.status}"
    return f"{passed} of {len(tests)} test runs passed"
