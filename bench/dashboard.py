"""Every dashboard page's server time at scale: p99 per page on a store of 1,000,000 results and
10,000,000 test rows (issue 20: each page within 50 ms).

The store is built straight through SQL (recursive CTEs, one transaction per table), on the
schema the migrations make: results over 90 days on 3 providers, 20 repositories, a busy `main`
and 300 other branches, each result with 10 tests drawn from 100 names per repository (6,000
distinct tests), a job and two deliveries (a chat target and a commit status; some dead).
Then each page is requested in process through Litestar's TestClient, signed in, with varied
ids and filters; the time is the request's time in process (no network), after a warm-up.
The time is wall time; "cpu p99" is the process's CPU time per request (server and in-process
client together), which other work on a shared machine does not inflate. It also prints the
bytes each page transfers before images: its HTML (as rendered, and as sent gzipped) and the CSS
and JavaScript it loads.

    .venv/bin/python -m bench.dashboard                       # build (once) and measure
    .venv/bin/python -m bench.dashboard --results 100000      # smaller, quicker
    .venv/bin/python -m bench.dashboard --db /tmp/d.db --keep # keep the store for another run

Building 1M results takes a few minutes and about 4 GB of disk.
"""

from __future__ import annotations

import argparse
import random
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import Config, QualityMaxSettings
from receiver.store import open_store
from receiver.store.sqlite import connect
from receiver.web.dashboard.session import COOKIE, session_key, sign_session

TOKEN: Final = "bench-token"
TESTS_PER_RESULT: Final = 10
NAMES_PER_REPOSITORY: Final = 100
REPOSITORIES: Final = 20
BRANCHES: Final = 300
DAYS: Final = 90

RESULTS_SQL: Final = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO results (id, callback_id, job_id, provider, event, status, raw_status, total, passed,
    failed, duration_ms, report_url, summary, external_job_id, branch, repository, pr_number, sha,
    custom_data, failures, created_at)
SELECT i, NULL, i, provider, 'test_results', status, status, 10,
    10 - failed, failed, 20000 + (i * 7919) % 90000, 'https://reports.example.com/' || i, NULL,
    'ext-' || i, branch, repository, pr, sha,
    json_object('branch', branch, 'repository', repository, 'pr_number', pr, 'sha', sha,
        'deploy_id', 'deploy-' || i),
    CASE WHEN failed > 0 THEN json_array(json_object('test', 'test ' || ((i / 60 * 10) % 100),
        'error', 'Expected 4 task sections, found ' || (i % 4))) ELSE '[]' END,
    strftime('%Y-%m-%dT%H:%M:%S', :start + i * :step, 'unixepoch') || '.000000Z'
FROM (
    SELECT i,
        CASE i % 3 WHEN 0 THEN 'qualitymax' WHEN 1 THEN 'qualigate' ELSE 'qualgent' END AS provider,
        CASE WHEN i % 100 < 80 THEN 'passed' WHEN i % 100 < 95 THEN 'failed'
             WHEN i % 100 < 98 THEN 'error' ELSE 'timeout' END AS status,
        CASE WHEN i % 100 < 80 THEN 0 WHEN i % 100 < 95 THEN 1 + i % 2 ELSE 0 END AS failed,
        CASE WHEN i % 5 < 2 THEN 'main' ELSE 'feat/b' || (i % :branches) END AS branch,
        'acme/r' || (i % :repositories) AS repository,
        1 + i % 5000 AS pr,
        printf('%010x%030x', i, i * 2654435761) AS sha
    FROM n
)
"""
# Test k of result i: one of its repository's 100 names; the first `failed` of them failed.
TESTS_SQL: Final = """
INSERT INTO tests (result_id, position, name, status, duration_ms, error, screenshot_url,
    video_url, execution_id, url, test_id)
SELECT r.id, k.k, 'test ' || ((r.id / 60 * 10 + k.k) % 100),
    CASE WHEN k.k < r.failed THEN 'failed' ELSE 'passed' END,
    1000 + (r.id * 31 + k.k * 17) % 9000,
    CASE WHEN k.k < r.failed THEN 'Expected 4 task sections, found ' || (r.id % 4) END,
    CASE WHEN k.k < r.failed THEN 'https://shots.example.com/' || r.id || '-' || k.k || '.png' END,
    NULL, NULL, NULL,
    receiver_test_id(r.provider, r.repository, r.custom_data,
        'test ' || ((r.id / 60 * 10 + k.k) % 100))
FROM results r, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
    UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7
    UNION ALL SELECT 8 UNION ALL SELECT 9) k
WHERE r.id BETWEEN :low AND :high
ORDER BY r.id, k.k
"""
# Every (provider, repository) pair occurs (i % 3, i % 20), each with its 100 names.
IDENTITIES_SQL: Final = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 5999),
named AS (
    SELECT CASE (i / 2000) WHEN 0 THEN 'qualitymax' WHEN 1 THEN 'qualigate' ELSE 'qualgent' END
        AS provider, 'acme/r' || ((i / 100) % 20) AS repository, 'test ' || (i % 100) AS name
    FROM n
)
INSERT INTO test_identities (test_id, provider, scope, name)
SELECT receiver_test_id(provider, repository, '{}', name), provider, repository, name FROM named
"""
JOBS_SQL: Final = """
INSERT INTO jobs (id, provider, job_key, external_id, state, url, request, custom_data,
    callback_url, error, result_id, created_at, updated_at)
SELECT id, provider, 'key-' || id, external_job_id, status, 'https://preview.example.com',
    '{"url": "https://preview.example.com", "feature_description": "log in"}', custom_data,
    'https://receiver.example.com/callbacks/qualitymax/key-' || id, NULL, id,
    created_at, created_at
FROM results
"""
DELIVERIES_SQL: Final = """
INSERT INTO deliveries (result_id, route, target, target_display, state, attempts, last_error,
    next_attempt_at, lease, sent_at, created_at, updated_at)
SELECT id, 'team-chat', 'json://chat.example.com/hook?token=secret', 'json://chat.example.com/hook',
    CASE WHEN id % 100 = 0 THEN 'dead' ELSE 'sent' END, CASE WHEN id % 100 = 0 THEN 8 ELSE 1 END,
    CASE WHEN id % 100 = 0 THEN 'json://chat.example.com answered 500' END,
    NULL, NULL, created_at, created_at, created_at
FROM results
UNION ALL
SELECT id, 'pull-requests', 'github://commit-status', 'github://commit-status', 'sent', 1, NULL,
    NULL, NULL, created_at, created_at, created_at
FROM results
"""


# As migration 0004 fills result_days from the results it finds.
DAYS_SQL: Final = """
INSERT INTO result_days (scope, value, day, total, passed, duration_total, timed)
SELECT :scope, {column}, substr(created_at, 1, 10), count(*),
   sum(CASE WHEN status = 'passed' THEN 1 ELSE 0 END), coalesce(sum(duration_ms), 0),
   count(duration_ms)
FROM results WHERE {column} IS NOT NULL GROUP BY {column}, substr(created_at, 1, 10)
"""


# As migration 0004 fills delivery_hours from the deliveries it finds.
DELIVERY_HOURS_SQL: Final = """
INSERT INTO delivery_hours (target, hour, sent, dead)
SELECT target_display, substr(updated_at, 1, 13),
   sum(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), sum(CASE WHEN state = 'dead' THEN 1 ELSE 0 END)
FROM deliveries WHERE state IN ('sent', 'dead') GROUP BY target_display, substr(updated_at, 1, 13)
"""


def build(path: Path, count: int) -> None:
    """The store at ``path``: migrated by the service's own code, then filled in bulk."""
    open_store(str(path)).close()
    conn = connect(str(path))  # registers receiver_test_id
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -2000000")  # 2 GB: the tests' indexes take random inserts
    step = DAYS * 86400 / count
    started = time.monotonic()
    start = time.time() - DAYS * 86400  # the newest result is about now
    _run(
        conn,
        "results",
        RESULTS_SQL,
        count=count,
        start=start,
        step=step,
        branches=BRANCHES,
        repositories=REPOSITORIES,
    )
    for column in ("branch", "repository"):
        _run(conn, f"days by {column}", DAYS_SQL.format(column=column), scope=column)
    chunk = 100_000
    for low in range(1, count + 1, chunk):
        _run(
            conn,
            f"tests of results {low}-{min(low + chunk - 1, count)}",
            TESTS_SQL,
            low=low,
            high=low + chunk - 1,
        )
    _run(conn, "test identities", IDENTITIES_SQL)
    _run(conn, "jobs", JOBS_SQL)
    _run(conn, "deliveries", DELIVERIES_SQL)
    _run(conn, "delivery hours", DELIVERY_HOURS_SQL)
    conn.execute("BEGIN")
    conn.execute("ANALYZE")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"built {count:,} results in {time.monotonic() - started:.0f}s", flush=True)


def _run(conn: sqlite3.Connection, what: str, sql: str, **params: Any) -> None:
    started = time.monotonic()
    conn.execute("BEGIN")
    rows = conn.execute(sql, params).rowcount
    conn.execute("COMMIT")
    print(f"  {what}: {rows:,} rows in {time.monotonic() - started:.1f}s", flush=True)


Page = tuple[str, Callable[[random.Random], str]]


def pages(count: int, test_ids: list[str]) -> list[Page]:
    def result(rng: random.Random) -> int:
        return rng.randint(1, count)

    return [
        ("results", lambda r: "/"),
        ("results ?status=failed", lambda r: "/?status=failed"),
        ("results ?branch=feat/bN", lambda r: f"/?branch=feat/b{r.randrange(BRANCHES)}"),
        ("results ?repository=", lambda r: f"/?repository=acme/r{r.randrange(REPOSITORIES)}"),
        ("results ?status&branch", lambda r: f"/?status=failed&branch=feat/b{r.randrange(80, 95)}"),
        ("results ?q=test name", lambda r: f"/?q=test+{r.randrange(100)}"),
        ("results ?cursor=(deep)", lambda r: f"/?cursor={result(r)}"),
        ("result", lambda r: f"/results/{result(r)}"),
        ("jobs", lambda r: "/jobs"),
        ("job", lambda r: f"/jobs/{result(r)}"),
        ("deliveries", lambda r: "/deliveries"),
        ("deliveries ?state=dead", lambda r: "/deliveries?state=dead"),
        ("history ?branch=main", lambda r: "/history?branch=main"),
        ("history ?branch=feat/bN", lambda r: f"/history?branch=feat/b{r.randrange(BRANCHES)}"),
        ("history ?repository=", lambda r: f"/history?repository=acme/r{r.randrange(20)}"),
        ("test", lambda r: f"/tests/{r.choice(test_ids)}"),
    ]


def measure(path: Path, count: int, requests: int) -> None:
    config = Config(
        db_path=str(path), api_token=TOKEN, qualitymax=QualityMaxSettings(webhook_secret="bench")
    )
    conn = sqlite3.connect(path)
    test_ids = [row[0] for row in conn.execute("SELECT test_id FROM test_identities LIMIT 500")]
    conn.close()
    rng = random.Random(20)
    with TestClient(create_app(config)) as client:
        client.cookies.set(COOKIE, sign_session(session_key(config)))
        header = ("page", "p50 ms", "p99 ms", "max ms", "cpu p99", "html", "gzipped")
        print(f"\n{header[0]:<28}" + "".join(f" {h:>8}" for h in header[1:]))
        for name, url in pages(count, test_ids):
            for _ in range(5):  # warm-up: the page cache, Jinja's compiled templates
                client.get(url(rng))
            times, cpu, size, sent = [], [], 0, 0
            for _ in range(requests):
                started, started_cpu = time.perf_counter(), time.process_time()
                answer = client.get(url(rng))
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                assert answer.status_code == 200, (name, answer.status_code, answer.text[:300])
                size = max(size, len(answer.content))
                sent = max(sent, answer.num_bytes_downloaded)
            print(
                f"{name:<28} {statistics.median(times):8.1f} {p99(times):8.1f} {max(times):8.1f}"
                f" {p99(cpu):8.1f} {size:8,} {sent:8,}",
                flush=True,
            )
        assets(client)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(len(ordered) * 0.99) - 1)]


def assets(client: TestClient[Any]) -> None:
    """What every page loads besides its HTML (the browser caches them after the first)."""
    page = client.get("/").text
    found = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    total = sent = 0
    for url in sorted(set(found)):
        answer = client.get(url)
        total += len(answer.content)
        sent += answer.num_bytes_downloaded
        print(
            f"  {url:<40} {len(answer.content):8,} bytes, {answer.num_bytes_downloaded:8,} gzipped"
        )
    print(
        f"  static assets of a page: {total:,} bytes, {sent:,} gzipped "
        "(cached a year after the first page: their URLs change with their content)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="per page")
    parser.add_argument("--db", type=Path, help="build here, or reuse a store built before")
    parser.add_argument("--keep", action="store_true", help="keep the store (with --db)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="receiver-bench-") as tmp:
        path = args.db or Path(tmp) / "dashboard.db"
        if not path.exists():
            build(path, args.results)
        measure(path, args.results, args.requests)
        if args.db and not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
