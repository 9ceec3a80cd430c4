"""What the API, the CLI and the notifiers show: read models built from the store's rows.

The store returns rows (receiver.store); these Structs are the public shapes of
``GET /api/results``, ``/api/jobs`` and ``/api/deliveries``, and what a notification is made of.
"""

from __future__ import annotations

import msgspec

from receiver import tests_identity
from receiver.results import Coverage, CustomData, Failure, Security, TestCase
from receiver.store import deliveries, jobs, results, test_history
from receiver.store.deliveries import DeliveryFilter, DeliveryRow
from receiver.store.results import ResultFilter, ResultRow
from receiver.store.test_history import FlakyRow
from receiver.store.tx import Tx
from receiver.triage import window_stats

DeliveryView = DeliveryRow  # the row is the view: the target already masked

__all__ = [
    "DeliveryFilter",
    "DeliveryPage",
    "DeliveryView",
    "FlakyList",
    "FlakyTest",
    "JobPage",
    "JobView",
    "Links",
    "ResultDetail",
    "ResultFilter",
    "ResultPage",
    "ResultSummary",
]


class Links(msgspec.Struct, kw_only=True):
    report: str | None = None  # the provider's report page, when it gave one
    dashboard: str | None = None  # the result's page in receiver, when public_url is set
    screenshots: list[str] = msgspec.field(default_factory=list)
    videos: list[str] = msgspec.field(default_factory=list)


class ResultSummary(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    event: str
    status: str
    total: int
    passed: int
    failed: int
    duration_ms: int | None
    branch: str | None
    repository: str | None
    pr_number: int | None
    sha: str | None
    report_url: str | None
    job_id: int | None
    callback_id: int | None
    created_at: str
    # Triage: how many tests carry each label (new, still failing, failing on main, flaky,
    # fixed); each test of a ResultDetail carries its own.
    labels: dict[str, int] = msgspec.field(default_factory=dict)
    kind: str = "tests"  # tests, sast or gap_analysis


class ResultDetail(ResultSummary, kw_only=True):
    raw_status: str | None
    summary: str | None
    external_job_id: str | None
    custom_data: CustomData
    failures: list[Failure]
    tests: list[TestCase]
    links: Links
    deliveries: list[DeliveryView] = msgspec.field(default_factory=list)
    replaces: int | None = None  # came after its job's timeout result, which it replaces
    security: Security | None = None  # a SAST result's verdict, counts and findings
    coverage: Coverage | None = None  # a gap analysis's tests per category


class ResultPage(msgspec.Struct, kw_only=True):
    items: list[ResultSummary]
    next_cursor: int | None


class JobView(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    job_key: str | None
    external_id: str | None
    state: str
    url: str | None
    callback_url: str | None
    custom_data: CustomData
    error: str | None
    result_id: int | None
    created_at: str
    updated_at: str
    result: ResultDetail | None = None
    progress: float | None = None  # 0-100 while it runs, when the provider says
    rerun_of: int | None = None  # the job this one re-runs


class JobPage(msgspec.Struct, kw_only=True):
    items: list[JobView]
    next_cursor: int | None


class DeliveryPage(msgspec.Struct, kw_only=True):
    items: list[DeliveryView]
    next_cursor: int | None


class FlakyTest(msgspec.Struct, kw_only=True):
    """One test of the quarantine list, judged on its window (its last ``[triage] window``
    runs, on any branch)."""

    test: str  # the test's name as its provider reports it
    test_id: str  # its stable id (receiver.tests_identity): /tests/{test_id} on the dashboard
    provider: str
    cell: str | None  # the matrix cell (browser, device ...) it is flaky in; each is judged apart
    repository: str | None  # or the provider's project when the results named no repository
    runs: int  # runs in the window
    failures: int  # of which failed
    flake_rate: float  # flips (an outcome other than the previous one on its branch) / runs
    same_commit_failures: int  # failures on a commit where the test also passed
    last_failure: str | None
    last_seen: str


class FlakyList(msgspec.Struct, kw_only=True):
    items: list[FlakyTest]


def flaky_list(tx: Tx, repository: str | None = None) -> FlakyList:
    """The quarantine list, latest failure first; of one repository (or project)."""
    return FlakyList(items=[_flaky(row) for row in test_history.flaky(tx, scope=repository)])


def _flaky(row: FlakyRow) -> FlakyTest:
    stats = window_stats(row.recent)
    return FlakyTest(
        test=row.name,
        test_id=tests_identity.test_id(row.provider, row.scope, row.name),
        provider=row.provider,
        cell=row.cell or None,
        repository=row.scope or None,
        runs=stats.runs,
        failures=stats.failures,
        flake_rate=round(stats.flake_rate, 3),
        same_commit_failures=stats.same_commit,
        last_failure=row.last_failed_at,
        last_seen=row.last_seen_at,
    )


def result_page(tx: Tx, where: ResultFilter) -> ResultPage:
    rows = results.newest(tx, msgspec.structs.replace(where, limit=where.limit + 1))
    page = rows[: where.limit]
    return ResultPage(
        items=[summary(row) for row in page],
        next_cursor=page[-1].id if len(rows) > where.limit else None,
    )


def summary(row: ResultRow) -> ResultSummary:
    return msgspec.convert(row, ResultSummary, from_attributes=True)


def result_detail(tx: Tx, result_id: int, *, public_url: str | None = None) -> ResultDetail:
    return detail(tx, results.get(tx, result_id), public_url=public_url)


def dashboard_url(public_url: str | None, result_id: int) -> str | None:
    """The result's page on the dashboard, at the service's public URL."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/results/{result_id}"


def detail(tx: Tx, row: ResultRow, *, public_url: str | None = None) -> ResultDetail:
    tests = results.tests_of(tx, row.id)
    fields = msgspec.structs.asdict(row)
    fields.update(
        tests=tests,
        links=Links(
            report=row.report_url,
            screenshots=[t.screenshot_url for t in tests if t.screenshot_url],
            videos=[t.video_url for t in tests if t.video_url],
            dashboard=dashboard_url(public_url, row.id),
        ),
        deliveries=deliveries.of_result(tx, row.id),
    )
    return msgspec.convert(fields, ResultDetail, from_attributes=True)


def job_page(tx: Tx, *, limit: int, before: int | None = None) -> JobPage:
    rows = jobs.newest(tx, limit=limit + 1, before=before)
    page = rows[:limit]
    return JobPage(
        items=[_job(row) for row in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


def job_view(tx: Tx, job_id: int) -> JobView:
    view = _job(jobs.get(tx, job_id))
    if view.result_id is not None:
        view.result = result_detail(tx, view.result_id)
    return view


def delivery_page(tx: Tx, where: DeliveryFilter) -> DeliveryPage:
    rows = deliveries.newest(tx, msgspec.structs.replace(where, limit=where.limit + 1))
    page = rows[: where.limit]
    return DeliveryPage(items=page, next_cursor=page[-1].id if len(rows) > where.limit else None)


def _job(row: jobs.JobRow) -> JobView:
    return msgspec.convert(row, JobView, from_attributes=True)
