"""Results and their tests: a provider's outcome for a job, normalised (receiver.results)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from receiver import tests_identity
from receiver.clock import utcnow
from receiver.results import Coverage, CustomData, Failure, Result, Security, TestCase
from receiver.store.errors import NotFound
from receiver.store.tx import POSTGRESQL, Tx, marks, row_as, rows_as
from receiver.triage import Verdict


class ResultRow(msgspec.Struct, kw_only=True):
    id: int
    callback_id: int | None
    job_id: int | None
    provider: str
    event: str
    status: str
    raw_status: str | None
    total: int
    passed: int
    failed: int
    duration_ms: int | None
    report_url: str | None
    summary: str | None
    external_job_id: str | None
    branch: str | None
    repository: str | None
    pr_number: int | None
    sha: str | None
    created_at: str
    custom_data: CustomData = msgspec.field(default_factory=dict)
    failures: list[Failure] = msgspec.field(default_factory=list)
    replaces: int | None = None  # the timeout result this late real result replaces
    labels: dict[str, int] = msgspec.field(default_factory=dict)  # triage: count per label
    kind: str = "tests"
    security: Security | None = None
    coverage: Coverage | None = None


class ResultFilter(msgspec.Struct, kw_only=True):
    status: str | None = None
    branch: str | None = None
    provider: str | None = None
    repository: str | None = None
    limit: int = 50
    before: int | None = None  # the cursor: the last id of the previous page


FILTER_COLUMNS: Final = ("status", "branch", "provider", "repository")


COLUMNS: Final = (
    "id, callback_id, job_id, provider, event, status, raw_status, total, passed, failed, "
    "duration_ms, report_url, summary, external_job_id, branch, repository, pr_number, sha, "
    "custom_data, failures, labels, created_at, replaces, kind, security, coverage"
)
JSON_COLUMNS: Final = ("custom_data", "failures", "labels", "security", "coverage")
INSERT: Final = """
INSERT INTO results (id, callback_id, job_id, provider, event, status, raw_status, total, passed,
    failed, duration_ms, report_url, summary, external_job_id, branch, repository, pr_number, sha,
    custom_data, failures, created_at, kind, security, coverage, labels)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_TEST: Final = """
INSERT INTO tests (result_id, position, name, status, duration_ms, error, screenshot_url,
    video_url, execution_id, url, test_id, label, triage, device, platform, progress)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_IDENTITY: Final = """
INSERT INTO test_identities (test_id, provider, scope, name) VALUES (?, ?, ?, ?)
ON CONFLICT (test_id) DO NOTHING
"""
# A test's logs, once fetched (receiver.artifacts), come with it.
SELECT_TESTS: Final = """
SELECT t.name, t.status, t.duration_ms, t.error, t.screenshot_url, t.video_url, t.execution_id,
    t.url, t.label, t.triage, t.device, t.platform, t.progress, l.logs
FROM tests t LEFT JOIN test_logs l
    ON l.result_id = t.result_id AND l.execution_id = t.execution_id AND l.state = 'fetched'
WHERE t.result_id = ? ORDER BY t.position
"""
# Is this execution one of a stored result's tests? (the artifact links ask for no other)
SELECT_EXECUTION: Final = "SELECT result_id FROM tests WHERE execution_id = ? LIMIT 1"
RESULTS_CHANNEL: Final = "receiver_results"


def reserve_id(tx: Tx) -> int:
    """The id the next result will get, so that the rows written before it (its callback, a job
    made for it) point at it from the start instead of being updated after it."""
    return tx.next_id("results")


def insert(
    tx: Tx,
    result: Result,
    *,
    callback_id: int | None,
    job_id: int | None,
    result_id: int | None = None,
    verdicts: Sequence[Verdict | None] = (),
    labels: Mapping[str, int] | None = None,
) -> int:
    """Store ``result`` and its tests (under ``result_id`` when one was reserved), with the
    triage's verdict of each test (``verdicts``, in the tests' order) and ``labels``, the
    count of each label."""
    if result_id is None:
        result_id = reserve_id(tx)
    created_at = utcnow()
    fields = _row(result_id, result, callback_id, job_id, created_at)
    fields.append(msgspec.json.encode(labels).decode() if labels else None)
    # Kept for the batch's one statement (Tx.later), like its tests: the id is known already.
    tx.later(INSERT, [fields])
    stored_id = result_id
    _count_day(tx, result, created_at)
    if result.tests:
        ids = _test_ids(result)
        tx.later(INSERT_TEST, _test_rows(stored_id, result, ids, verdicts))
        tx.later(INSERT_IDENTITY, _identity_rows(result, ids))
    if tx.dialect == POSTGRESQL:  # the live pages of every instance (sent at COMMIT)
        tx.execute("SELECT pg_notify(?, ?)", [RESULTS_CHANNEL, str(stored_id)])
    return stored_id


def mark_late(tx: Tx, result_id: int, *, replaces: int) -> None:
    """``result_id`` came after its job's timeout result ``replaces``, and replaces it."""
    tx.execute("UPDATE results SET replaces = ? WHERE id = ?", [replaces, result_id])


def status_of(tx: Tx, result_id: int) -> str | None:
    row = tx.execute("SELECT status FROM results WHERE id = ?", [result_id]).fetchone()
    return row[0] if row else None


def get(tx: Tx, result_id: int) -> ResultRow:
    cursor = tx.execute(f"SELECT {COLUMNS} FROM results WHERE id = ?", [result_id])
    row = row_as(cursor, ResultRow, json=JSON_COLUMNS)
    if row is None:
        raise NotFound(f"No result {result_id}")
    return row


def tests_of(tx: Tx, result_id: int) -> list[TestCase]:
    return rows_as(tx.execute(SELECT_TESTS, [result_id]), TestCase, json=("triage",))


def newest(tx: Tx, where: ResultFilter) -> list[ResultRow]:
    """Up to ``where.limit`` results, newest first (keyset paging on the id)."""
    clauses, params = _where(where)
    sql = f"SELECT {COLUMNS} FROM results"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY id DESC LIMIT ?"
    return rows_as(tx.execute(sql, [*params, where.limit]), ResultRow, json=JSON_COLUMNS)


def _where(
    where: ResultFilter, table: str = "", *, cursor: bool = True
) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for column in FILTER_COLUMNS:
        value = getattr(where, column)
        if value:
            clauses.append(f"{table}{column} = ?")
            params.append(value)
    if cursor and where.before is not None:
        clauses.append(f"{table}id < ?")
        params.append(where.before)
    return clauses, params


def newest_with_test(tx: Tx, where: ResultFilter, test_ids: list[str]) -> list[ResultRow]:
    """Like ``newest``, among the results that ran one of ``test_ids``: each test's newest
    results (one index range per test), merged."""
    clauses, params = _where(where, "r.", cursor=False)
    condition = "".join(f" AND {clause}" for clause in clauses)
    sql = (
        "SELECT t.result_id FROM tests t JOIN results r ON r.id = t.result_id "
        f"WHERE t.test_id = ? AND t.result_id < ?{condition} ORDER BY t.result_id DESC LIMIT ?"
    )
    found: set[int] = set()
    before = where.before if where.before is not None else 2**63 - 1
    for test in test_ids:
        rows = tx.execute(sql, [test, before, *params, where.limit]).fetchall()
        found.update(row[0] for row in rows)
    chosen = sorted(found, reverse=True)[: where.limit]
    return by_ids(tx, chosen)


def by_ids(tx: Tx, ids: list[int]) -> list[ResultRow]:
    """The results ``ids``, newest first."""
    if not ids:
        return []
    sql = f"SELECT {COLUMNS} FROM results WHERE id IN ({marks(ids)}) ORDER BY id DESC"
    return rows_as(tx.execute(sql, ids), ResultRow, json=JSON_COLUMNS)


def _row(
    result_id: int | None,
    result: Result,
    callback_id: int | None,
    job_id: int | None,
    created_at: str,
) -> list[Any]:
    return [
        result_id,
        callback_id,
        job_id,
        result.provider,
        result.event,
        result.status,
        result.raw_status,
        result.total,
        result.passed,
        result.failed,
        result.duration_ms,
        result.report_url,
        result.summary,
        result.external_job_id,
        result.branch,
        result.repository,
        result.pr_number,
        result.sha,
        msgspec.json.encode(result.custom_data).decode(),
        msgspec.json.encode(result.failures).decode(),
        created_at,
        result.kind,
        _json(result.security),
        _json(result.coverage),
    ]


def _json(value: msgspec.Struct | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def result_of_execution(tx: Tx, execution_id: str) -> int | None:
    """The stored result one of whose tests ran as ``execution_id``; None when none did."""
    row = tx.execute(SELECT_EXECUTION, [execution_id]).fetchone()
    return None if row is None else int(row[0])


def _test_ids(result: Result) -> list[str]:
    where = tests_identity.scope(result.repository, result.custom_data)
    return [tests_identity.test_id(result.provider, where, t.name) for t in result.tests]


def _identity_rows(result: Result, ids: list[str]) -> list[tuple[str, str, str, str]]:
    where = tests_identity.scope(result.repository, result.custom_data)
    return [(i, result.provider, where, t.name) for i, t in zip(ids, result.tests, strict=True)]


def _test_rows(
    result_id: int, result: Result, ids: list[str], verdicts: Sequence[Verdict | None]
) -> list[tuple[Any, ...]]:
    judged = list(verdicts) or [None] * len(result.tests)
    return [
        (
            result_id,
            position,
            t.name,
            t.status,
            t.duration_ms,
            t.error,
            t.screenshot_url,
            t.video_url,
            t.execution_id,
            t.url,
            ids[position],
            verdict.label if verdict else None,
            _note(verdict),
            t.device,
            t.platform,
            t.progress,
        )
        for position, (t, verdict) in enumerate(zip(result.tests, judged, strict=True))
    ]


# -- history: one branch or repository over time ----------------------------------------------

SCOPES: Final = ("branch", "repository")


class Day(msgspec.Struct, kw_only=True):
    day: str  # 2026-12-07
    total: int
    passed: int
    duration_ms: float | None  # the mean


class HistoryMark(msgspec.Struct, kw_only=True):
    id: int
    status: str
    total: int
    failed: int
    duration_ms: int | None
    created_at: str


class Recent(msgspec.Struct, kw_only=True):
    value: str
    last_id: int


DAYS: Final = """
SELECT day, total, passed,
    CASE WHEN timed > 0 THEN 1.0 * duration_total / timed END AS duration_ms
FROM result_days WHERE scope = ? AND value = ? AND day >= ? ORDER BY day
"""
# The result's day of its branch and of its repository, one more result in each.
COUNT_DAY: Final = """
INSERT INTO result_days (scope, value, day, total, passed, duration_total, timed)
VALUES (?, ?, ?, 1, ?, ?, ?)
ON CONFLICT (scope, value, day) DO UPDATE SET
    total = result_days.total + 1,
    passed = result_days.passed + excluded.passed,
    duration_total = result_days.duration_total + excluded.duration_total,
    timed = result_days.timed + excluded.timed
"""
MARKS: Final = """
SELECT id, status, total, failed, duration_ms, created_at FROM results
WHERE {column} = ? ORDER BY id DESC LIMIT ?
"""
# The branches or repositories of the newest results: what the history page offers.
RECENT: Final = """
SELECT {column} AS value, max(id) AS last_id
FROM (SELECT {column}, id FROM results ORDER BY id DESC LIMIT ?) newest
WHERE {column} IS NOT NULL GROUP BY {column} ORDER BY last_id DESC LIMIT ?
"""


def days(tx: Tx, scope: str, value: str, *, since: str) -> list[Day]:
    """Per day since ``since`` (``2026-12-07``): results, how many passed, their mean
    duration."""
    return rows_as(tx.execute(DAYS, [_scope_column(scope), value, since]), Day)


def _count_day(tx: Tx, result: Result, created_at: str) -> None:
    passed = 1 if result.status == "passed" else 0
    timed = 0 if result.duration_ms is None else 1
    rows = [
        (scope, value, created_at[:10], passed, result.duration_ms or 0, timed)
        for scope, value in (("branch", result.branch), ("repository", result.repository))
        if value is not None
    ]
    if rows:
        # Every result of a branch's day adds to one row: its lock is taken as late as can be.
        tx.at_commit(COUNT_DAY, rows)


def history_marks(tx: Tx, scope: str, value: str, *, limit: int) -> list[HistoryMark]:
    """The newest ``limit`` results of a branch or repository, newest first."""
    sql = MARKS.format(column=_scope_column(scope))
    return rows_as(tx.execute(sql, [value, limit]), HistoryMark)


def recent_values(tx: Tx, scope: str, *, among: int, limit: int) -> list[Recent]:
    """The branches (or repositories) of the newest ``among`` results, most recent first."""
    sql = RECENT.format(column=_scope_column(scope))
    return rows_as(tx.execute(sql, [among, limit]), Recent)


def _scope_column(scope: str) -> str:
    if scope not in SCOPES:  # a column name goes into the SQL: only these two
        raise ValueError(f"history is by {' or '.join(SCOPES)}, not {scope!r}")
    return scope


def newest_id(tx: Tx) -> int:
    """The id of the newest result; 0 when there is none."""
    row = tx.execute("SELECT coalesce(max(id), 0) FROM results").fetchone()
    return int(row[0])


def after(tx: Tx, last_id: int, *, limit: int) -> list[ResultRow]:
    """Results stored after result ``last_id``, oldest first: what a follower has not seen."""
    sql = f"SELECT {COLUMNS} FROM results WHERE id > ? ORDER BY id LIMIT ?"
    return rows_as(tx.execute(sql, [last_id, limit]), ResultRow, json=JSON_COLUMNS)


# The newest results of the same branch, repository and provider up to one result, among the
# branch's last `among` (a bounded walk of idx_results_branch, however busy the branch is).
SIBLINGS: Final = """
SELECT id FROM (
    SELECT id, repository, provider FROM results
    WHERE {branch} AND id <= ? ORDER BY id DESC LIMIT ?
) recent
WHERE {repository} AND provider = ? LIMIT ?
"""


def siblings(tx: Tx, result: ResultRow, *, among: int, limit: int) -> list[int]:
    """Up to ``limit`` results like ``result`` (its branch, repository and provider), newest
    first, ``result`` itself included."""
    params: list[object] = []
    branch = "branch IS NULL"
    if result.branch is not None:
        branch, params = "branch = ?", [result.branch]
    repository = "repository IS NULL"
    tail: list[object] = []
    if result.repository is not None:
        repository, tail = "repository = ?", [result.repository]
    sql = SIBLINGS.format(branch=branch, repository=repository)
    rows = tx.execute(sql, [*params, result.id, among, *tail, result.provider, limit]).fetchall()
    return [row[0] for row in rows]


def _note(verdict: Verdict | None) -> str | None:
    if verdict is None or verdict.note is None:
        return None
    return msgspec.json.encode(verdict.note).decode()
