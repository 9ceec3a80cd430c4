"""What each dashboard page shows: read models built from the store's rows, one function per
page, each taking the read ``Tx`` (``Store.read``) and returning plain Structs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Final

import msgspec

from receiver import views
from receiver.clock import TIMESTAMP_FORMAT
from receiver.notify.message import run_headline
from receiver.results import CustomData, Failure
from receiver.store import NotFound, callbacks, deliveries, jobs, results, tests
from receiver.store.deliveries import DeliveryRow, TargetStats
from receiver.store.results import Day, HistoryMark, ResultFilter, ResultRow
from receiver.store.tests import Identity, Mark, Run
from receiver.store.tx import Tx
from receiver.tests_identity import scope, test_id
from receiver.web.dashboard.format import commit_link, pr_link, pretty_bytes

PAGE_SIZE: Final = 50
SEARCH_TESTS: Final = 25  # a search by name looks at most at this many matching tests
STRIP_RUNS: Final = 12  # a test's last runs on the branch, on a result's page
STRIP_RESULTS: Final = 30  # ... among this many results of the branch, repository and provider
STRIP_AMONG: Final = 2000  # ... found among the branch's last results
TEST_RUNS: Final = 200  # a test's page: its strip, duration trend and distinct errors
MAX_ERRORS: Final = 20
HISTORY_MARKS: Final = 200
HISTORY_DAYS: Final = 30
STATS_HOURS: Final = 24


class Row(msgspec.Struct, kw_only=True):
    """One result as the Results page lists it."""

    id: int
    status: str
    title: str
    provider: str
    branch: str | None
    repository: str | None
    pr_number: int | None
    pr_url: str | None
    sha: str | None
    commit_url: str | None
    created_at: str


class ResultsPage(msgspec.Struct, kw_only=True):
    rows: list[Row]
    next_cursor: int | None
    searched: list[Identity] = msgspec.field(default_factory=list)
    search_capped: bool = False


class TestRow(msgspec.Struct, kw_only=True):
    __test__ = False  # not a pytest class

    test_id: str
    name: str
    status: str
    duration_ms: int | None
    error: str | None
    screenshot_url: str | None
    video_url: str | None
    url: str | None
    strip: list[Mark]


class ResultPageModel(msgspec.Struct, kw_only=True):
    row: Row
    result: ResultRow
    custom_data: CustomData
    failures: list[Failure]
    tests: list[TestRow]
    deliveries: list[DeliveryRow]
    raw_callback: str | None
    job_id: int | None


class JobPageModel(msgspec.Struct, kw_only=True):
    job: jobs.JobRow
    request: str | None
    result: Row | None


class DeliveriesPage(msgspec.Struct, kw_only=True):
    items: list[DeliveryRow]
    next_cursor: int | None
    targets: list[TargetStats]
    dead: dict[str, int]


class HistoryPage(msgspec.Struct, kw_only=True):
    scope: str | None  # "branch" or "repository"
    value: str | None
    marks: list[HistoryMark]
    days: list[Day]
    recent_branches: list[str]
    recent_repositories: list[str]


class ErrorCount(msgspec.Struct, kw_only=True):
    error: str
    count: int


class TestPage(msgspec.Struct, kw_only=True):
    __test__ = False

    identity: Identity
    runs: list[Run]
    errors: list[ErrorCount]


def row(result: ResultRow | views.ResultSummary, github_web: str) -> Row:
    return Row(
        id=result.id,
        status=result.status,
        title=run_headline(result.status, result.total, result.passed, result.failed),
        provider=result.provider,
        branch=result.branch,
        repository=result.repository,
        pr_number=result.pr_number,
        pr_url=pr_link(github_web, result.repository, result.pr_number),
        sha=result.sha,
        commit_url=commit_link(github_web, result.repository, result.sha),
        created_at=result.created_at,
    )


def results_page(tx: Tx, where: ResultFilter, search: str | None, github_web: str) -> ResultsPage:
    wanted = msgspec.structs.replace(where, limit=where.limit + 1)
    searched: list[Identity] = []
    capped = False
    if search:
        searched = tests.search(tx, search, limit=SEARCH_TESTS + 1)
        capped = len(searched) > SEARCH_TESTS
        searched = searched[:SEARCH_TESTS]
        ids = [found.test_id for found in searched]
        found = results.newest_with_test(tx, wanted, ids)
    else:
        found = results.newest(tx, wanted)
    page = found[: where.limit]
    return ResultsPage(
        rows=[row(item, github_web) for item in page],
        next_cursor=page[-1].id if len(found) > where.limit else None,
        searched=searched,
        search_capped=capped,
    )


def matches(result: ResultRow, where: ResultFilter) -> bool:
    """Whether a new result belongs on a Results page showing ``where``."""
    return all(
        not getattr(where, column) or getattr(where, column) == getattr(result, column)
        for column in results.FILTER_COLUMNS
    )


def result_page(tx: Tx, result_id: int, github_web: str) -> ResultPageModel:
    result = results.get(tx, result_id)
    where = scope(result.repository, result.custom_data)
    cases = results.tests_of(tx, result_id)
    ids = [test_id(result.provider, where, case.name) for case in cases]
    recent = results.siblings(tx, result, among=STRIP_AMONG, limit=STRIP_RESULTS)
    strips = tests.marks_in(tx, recent, sorted(set(ids)))
    rows = [
        TestRow(
            test_id=identity,
            name=case.name,
            status=case.status,
            duration_ms=case.duration_ms,
            error=case.error,
            screenshot_url=case.screenshot_url,
            video_url=case.video_url,
            url=case.url,
            strip=list(reversed(strips[identity][:STRIP_RUNS])),  # oldest first, this run last
        )
        for identity, case in zip(ids, cases, strict=True)
    ]
    raw = None
    if result.callback_id is not None:
        try:
            raw = pretty_bytes(callbacks.body_of(tx, result.callback_id))
        except NotFound:
            raw = None
    return ResultPageModel(
        row=row(result, github_web),
        result=result,
        custom_data=result.custom_data,
        failures=result.failures,
        tests=rows,
        deliveries=deliveries.of_result(tx, result_id),
        raw_callback=raw,
        job_id=result.job_id,
    )


def job_page(tx: Tx, job_id: int, github_web: str) -> JobPageModel:
    job = jobs.get(tx, job_id)
    found = None
    if job.result_id is not None:
        try:
            found = row(results.get(tx, job.result_id), github_web)
        except NotFound:
            found = None
    request = None
    if job.request:
        request = pretty_bytes(job.request.encode())
    return JobPageModel(job=job, request=request, result=found)


def jobs_page(tx: Tx, *, before: int | None) -> views.JobPage:
    return views.job_page(tx, limit=PAGE_SIZE, before=before)


def deliveries_page(tx: Tx, *, state: str | None, before: int | None) -> DeliveriesPage:
    where = deliveries.DeliveryFilter(state=state, limit=PAGE_SIZE, before=before)
    page = views.delivery_page(tx, where)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=STATS_HOURS)).strftime(TIMESTAMP_FORMAT)
    stats = deliveries.target_stats(tx, since)
    dead = deliveries.dead_by_target(tx)
    known = {item.target for item in stats}
    stats += [
        TargetStats(target=target, sent=0, dead=0, pending=0)
        for target in dead
        if target not in known
    ]
    return DeliveriesPage(items=page.items, next_cursor=page.next_cursor, targets=stats, dead=dead)


def history_page(tx: Tx, scope_name: str | None, value: str | None) -> HistoryPage:
    marks: list[HistoryMark] = []
    days: list[Day] = []
    if scope_name and value:
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%d")
        marks = list(reversed(results.history_marks(tx, scope_name, value, limit=HISTORY_MARKS)))
        days = results.days(tx, scope_name, value, since=since)
    return HistoryPage(
        scope=scope_name,
        value=value,
        marks=marks,
        days=days,
        recent_branches=[
            r.value for r in results.recent_values(tx, "branch", among=2000, limit=20)
        ],
        recent_repositories=[
            r.value for r in results.recent_values(tx, "repository", among=2000, limit=20)
        ],
    )


def test_page(tx: Tx, identity: str) -> TestPage:
    found = tests.identity(tx, identity)
    if found is None:
        raise NotFound(f"No test {identity}")
    runs = tests.runs(tx, identity, limit=TEST_RUNS)
    counted = Counter(run.error for run in runs if run.error)
    return TestPage(
        identity=found,
        runs=list(reversed(runs)),
        errors=[ErrorCount(error=e, count=n) for e, n in counted.most_common(MAX_ERRORS)],
    )
