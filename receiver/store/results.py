"""Results and their tests: a provider's outcome for a job, normalised (receiver.results)."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from receiver.clock import utcnow
from receiver.results import Coverage, CustomData, Failure, Result, Security, TestCase
from receiver.store.errors import NotFound
from receiver.store.tx import POSTGRESQL, Tx, row_as, rows_as


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
    kind: str = "tests"
    security: Security | None = None
    coverage: Coverage | None = None


class ResultFilter(msgspec.Struct, kw_only=True):
    status: str | None = None
    branch: str | None = None
    provider: str | None = None
    limit: int = 50
    before: int | None = None  # the cursor: the last id of the previous page


COLUMNS: Final = (
    "id, callback_id, job_id, provider, event, status, raw_status, total, passed, failed, "
    "duration_ms, report_url, summary, external_job_id, branch, repository, pr_number, sha, "
    "custom_data, failures, created_at, replaces, kind, security, coverage"
)
JSON_COLUMNS: Final = ("custom_data", "failures", "security", "coverage")
INSERT: Final = """
INSERT INTO results (id, callback_id, job_id, provider, event, status, raw_status, total, passed,
    failed, duration_ms, report_url, summary, external_job_id, branch, repository, pr_number, sha,
    custom_data, failures, created_at, kind, security, coverage)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id
"""
INSERT_TEST: Final = """
INSERT INTO tests (result_id, position, name, status, duration_ms, error, screenshot_url,
    video_url, execution_id, url, device, platform, progress)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# A test's logs, once fetched (receiver.artifacts), come with it.
SELECT_TESTS: Final = """
SELECT t.name, t.status, t.duration_ms, t.error, t.screenshot_url, t.video_url, t.execution_id,
    t.url, t.device, t.platform, t.progress, l.logs
FROM tests t LEFT JOIN test_logs l
    ON l.result_id = t.result_id AND l.execution_id = t.execution_id AND l.state = 'fetched'
WHERE t.result_id = ? ORDER BY t.position
"""
# Is this execution one of a stored result's tests? (the artifact links ask for no other)
SELECT_EXECUTION: Final = "SELECT result_id FROM tests WHERE execution_id = ? LIMIT 1"
# SQLite gives a row without an id max(id) + 1, and the writer holds the write lock until its
# COMMIT, so the id read here is the one the result gets. PostgreSQL hands out its sequence.
RESERVE_ID: Final = {
    "sqlite": "SELECT coalesce(max(id), 0) + 1 FROM results",
    POSTGRESQL: "SELECT nextval(pg_get_serial_sequence('results', 'id'))",
}


def reserve_id(tx: Tx) -> int:
    """The id the next result will get, so that the rows written before it (its callback, a job
    made for it) point at it from the start instead of being updated after it."""
    row = tx.execute(RESERVE_ID[tx.dialect]).fetchone()
    return int(row[0])


def insert(
    tx: Tx,
    result: Result,
    *,
    callback_id: int | None,
    job_id: int | None,
    result_id: int | None = None,
) -> int:
    """Store ``result`` and its tests (under ``result_id`` when one was reserved)."""
    row = tx.execute(INSERT, _row(result_id, result, callback_id, job_id)).fetchone()
    stored_id: int = row[0]
    if result.tests:
        tx.executemany(INSERT_TEST, _test_rows(stored_id, result))
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
    return rows_as(tx.execute(SELECT_TESTS, [result_id]), TestCase)


def newest(tx: Tx, where: ResultFilter) -> list[ResultRow]:
    """Up to ``where.limit`` results, newest first (keyset paging on the id)."""
    clauses: list[str] = []
    params: list[object] = []
    for column in ("status", "branch", "provider"):
        value = getattr(where, column)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.before is not None:
        clauses.append("id < ?")
        params.append(where.before)
    sql = f"SELECT {COLUMNS} FROM results"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY id DESC LIMIT ?"
    return rows_as(tx.execute(sql, [*params, where.limit]), ResultRow, json=JSON_COLUMNS)


def _row(
    result_id: int | None, result: Result, callback_id: int | None, job_id: int | None
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
        utcnow(),
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


def _test_rows(result_id: int, result: Result) -> list[tuple[Any, ...]]:
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
            t.device,
            t.platform,
            t.progress,
        )
        for position, t in enumerate(result.tests)
    ]
