"""What the API, the CLI and the notifiers show: read models built from the store's rows.

The store returns rows (receiver.store); these Structs are the public shapes of
``GET /api/results``, ``/api/jobs`` and ``/api/deliveries``, and what a notification is made of.
"""

from __future__ import annotations

import msgspec

from receiver.results import Coverage, CustomData, Failure, Security, TestCase
from receiver.store import deliveries, jobs, results
from receiver.store.deliveries import DeliveryFilter, DeliveryRow
from receiver.store.results import ResultFilter, ResultRow
from receiver.store.tx import Tx

DeliveryView = DeliveryRow  # the row is the view: the target already masked

__all__ = [
    "DeliveryFilter",
    "DeliveryPage",
    "DeliveryView",
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
    page: str | None = None  # the result's page in receiver, when public_url is set (links.py)
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


def result_page(tx: Tx, where: ResultFilter) -> ResultPage:
    rows = results.newest(tx, msgspec.structs.replace(where, limit=where.limit + 1))
    page = rows[: where.limit]
    return ResultPage(
        items=[summary(row) for row in page],
        next_cursor=page[-1].id if len(rows) > where.limit else None,
    )


def summary(row: ResultRow) -> ResultSummary:
    return msgspec.convert(row, ResultSummary, from_attributes=True)


def result_detail(tx: Tx, result_id: int) -> ResultDetail:
    return detail(tx, results.get(tx, result_id))


def detail(tx: Tx, row: ResultRow) -> ResultDetail:
    tests = results.tests_of(tx, row.id)
    fields = msgspec.structs.asdict(row)
    fields.update(
        tests=tests,
        links=Links(
            report=row.report_url,
            screenshots=[t.screenshot_url for t in tests if t.screenshot_url],
            videos=[t.video_url for t in tests if t.video_url],
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
