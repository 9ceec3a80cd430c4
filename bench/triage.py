"""What triage adds to storing a result, in a store of 10,000,000 test rows.

    .venv/bin/python -m bench.triage [--test-rows N] [--timed N] [--db PATH]

Builds the store with bulk SQL (no Python per row): results of ``--tests`` tests each, spread
over ``--repositories`` repositories (each with twice that many test names, each result running
half of them) and ``--branches`` branches, until the tests table holds ``--test-rows`` rows; and
the triage history those results would have left: a full window per test, a streak per test and
branch. Then it stores ``--timed`` new results the way the service does (Recorder.record in the
writer's transaction, one commit each), a few failing tests each, and times inside the
transaction: the triage itself (reading the tests' history, judging, writing what changed) and
the whole record, against the same record with triage switched off, in alternation. Prints the
milliseconds per result. ``--db`` keeps the built store to reuse (building 10M rows takes a few
minutes); the timed results are rolled back, so a kept store stays as built.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from receiver import history
from receiver.config import TriageSettings
from receiver.record import Recorder
from receiver.results import Result, TestCase
from receiver.routing import Router
from receiver.store import Store, open_store
from receiver.store.tx import Tx
from receiver.tests_identity import test_id as stable_id
from receiver.triage import ENTRY

PROVIDER = "qualitymax"
BASE = "main"


class Shape:
    def __init__(self, args: argparse.Namespace) -> None:
        self.test_rows: int = args.test_rows
        self.tests: int = args.tests
        self.repositories: int = args.repositories
        self.branches: int = args.branches
        self.results = max(1, self.test_rows // self.tests)
        self.names = 2 * self.tests  # test names per repository; a result runs half of them

    def repository(self, n: int) -> str:
        return f"acme/repo-{n % self.repositories}"

    def branch(self, n: int) -> str:
        return BASE if n % self.branches == 0 else f"feat/branch-{n % self.branches}"


def build(path: Path, shape: Shape) -> None:
    """The store, migrated by receiver, filled by bulk SQL."""
    open_store(str(path)).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB while building
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute(
        """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO results (id, provider, event, status, total, passed, failed, branch,
            repository, sha, custom_data, failures, created_at)
        SELECT i, ?, 'test_results', CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'passed' END,
            ?, ? - (i % 7 = 0), (i % 7 = 0),
            CASE WHEN i % ? = 0 THEN 'main' ELSE 'feat/branch-' || (i % ?) END,
            'acme/repo-' || (i % ?), printf('%040x', i), '{}', '[]',
            strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (? - i) || ' seconds')
        FROM n
        """,
        [
            shape.results,
            PROVIDER,
            shape.tests,
            shape.tests,
            shape.branches,
            shape.branches,
            shape.repositories,
            shape.results,
        ],
    )
    conn.execute(
        """
        WITH RECURSIVE p(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM p WHERE k < ? - 1)
        INSERT INTO tests (result_id, position, name, status, duration_ms, error)
        SELECT r.id, p.k, 'test-' || ((r.id + 2 * p.k) % ?),
            CASE WHEN r.failed AND p.k = 0 THEN 'failed' ELSE 'passed' END, 1000 + p.k,
            CASE WHEN r.failed AND p.k = 0 THEN 'Expected the page to load' END
        FROM results r, p
        """,
        [shape.tests, shape.names],
    )
    conn.execute("COMMIT")
    filled = time.perf_counter() - started
    fill_history(conn, shape)
    rows = conn.execute("SELECT count(*) FROM tests").fetchone()[0]
    tests = conn.execute("SELECT count(*) FROM test_history").fetchone()[0]
    streaks = conn.execute("SELECT count(*) FROM test_branches").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = path.stat().st_size / 1024**3
    print(
        f"built: {shape.results:,} results, {rows:,} test rows in {filled:.0f} s; history of "
        f"{tests:,} tests, {streaks:,} streaks; {size:.2f} GiB",
        flush=True,
    )


def fill_history(conn: sqlite3.Connection, shape: Shape) -> None:
    """Every test's window, full of mostly passing runs, and its streak on every branch."""
    window = TriageSettings().window
    rng = random.Random(7)
    patterns = [
        "".join(
            ("F" if rng.random() < 0.05 else "P") + f"{rng.getrandbits(32):08x}"
            for _ in range(window)
        )
        for _ in range(64)
    ]
    assert all(len(p) == window * ENTRY for p in patterns)
    tests, streaks = [], []
    for r in range(shape.repositories):
        repository = f"acme/repo-{r}"
        for t in range(shape.names):
            test_id = stable_id(PROVIDER, repository, f"test-{t}")
            pattern = patterns[(r * shape.names + t) % len(patterns)]
            tests.append((test_id, PROVIDER, repository, f"test-{t}", pattern, "2026-01-01"))
            for b in range(shape.branches):
                outcome = "failed" if (t + b) % 17 == 0 else "passed"
                if outcome == "failed":
                    streaks.append((test_id, shape.branch(b), 1 + b % 3, f"{b:040x}"))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO test_history (test_id, provider, scope, name, recent, last_seen_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        tests,
    )
    conn.executemany(
        "INSERT INTO test_branches (test_id, branch, runs, since, updated_at) "
        "VALUES (?, ?, ?, ?, '2026-01-01')",
        streaks,
    )
    conn.execute("COMMIT")


def new_result(shape: Shape, rng: random.Random) -> Result:
    """A result like the built ones: ``--tests`` tests of one repository, two of them failing."""
    n = rng.randrange(shape.results)
    offset = rng.randrange(shape.names)
    names = [f"test-{(offset + 2 * k) % shape.names}" for k in range(shape.tests)]
    failing = set(rng.sample(names, 2))
    tests = [
        TestCase(
            name=name,
            status="failed" if name in failing else "passed",
            duration_ms=1000,
            error="Expected the page to load" if name in failing else None,
        )
        for name in names
    ]
    return Result(
        provider=PROVIDER,
        event="test_results",
        status="failed",
        total=len(tests),
        passed=len(tests) - 2,
        failed=2,
        custom_data={
            "repository": shape.repository(n),
            "branch": shape.branch(rng.randrange(shape.branches)),
            "sha": f"{rng.getrandbits(160):040x}",
        },
        tests=tests,
    )


@contextmanager
def triage_off() -> Iterator[None]:
    saved = history.triage
    history.triage = lambda tx, result, settings: history.NOTHING
    try:
        yield
    finally:
        history.triage = saved


class Rollback(Exception):
    """Ends a timed transaction without keeping it: the store stays as built."""


class Spent:
    """Wall-clock and CPU seconds (this thread's: the machine is shared) of one stretch."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextmanager
    def adding(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.thread_time() - cpu


LABELLED: Counter[str] = Counter()  # the labels the timed records gave: triage really ran


def timed_record(database: Store, recorder: Recorder, value: Result) -> tuple[Spent, Spent]:
    """The time of (record, triage within it) for one result, in one transaction rolled back."""
    record, own = Spent(), Spent()
    triage, save = history.triage, history.Triaged.save

    def timed_triage(tx: Tx, result: Result, settings: TriageSettings) -> history.Triaged:
        with own.adding():
            return triage(tx, result, settings)

    def timed_save(self: history.Triaged, tx: Tx, result_id: int) -> None:
        with own.adding():
            save(self, tx, result_id)

    def write(tx: Tx) -> None:
        with record.adding():
            recorded = recorder.record(tx, value, job_id=None)
        LABELLED.update(recorded.labels)
        raise Rollback

    history.triage, history.Triaged.save = timed_triage, timed_save  # type: ignore[method-assign]
    try:
        database.write_sync(write)
    except Rollback:
        pass
    finally:
        history.triage, history.Triaged.save = triage, save  # type: ignore[method-assign]
    return record, own


def measure(path: Path, shape: Shape, count: int) -> None:
    database = open_store(str(path))
    recorder = Recorder(Router([]))
    rng = random.Random(11)
    results = [new_result(shape, rng) for _ in range(count)]
    on, off, own = [], [], []
    try:
        for value in results[: min(20, count)]:  # warm the page cache and the statement cache
            timed_record(database, recorder, value)
        for n, value in enumerate(results):
            # Each result with and without triage, which first alternating: the second of a
            # pair finds the pages the first read in memory.
            if n % 2:
                with triage_off():
                    off.append(timed_record(database, recorder, value)[0])
            record, triage = timed_record(database, recorder, value)
            on.append(record)
            own.append(triage)
            if not n % 2:
                with triage_off():
                    off.append(timed_record(database, recorder, value)[0])
    finally:
        database.close()
    report(shape, on, off, own)


def report(shape: Shape, on: list[Spent], off: list[Spent], own: list[Spent]) -> None:
    def line(what: str, spent: list[Spent]) -> str:
        wall = [s.wall for s in spent]
        cpu = [s.cpu for s in spent]
        return (
            f"  {what:<22} median {ms(statistics.median(wall))} ms, p95 {ms(p95(wall))} ms "
            f"(CPU: median {ms(statistics.median(cpu))} ms, p95 {ms(p95(cpu))} ms)"
        )

    print(
        f"{len(on)} results of {shape.tests} tests each, stored like the service stores them "
        f"(in its transaction; the commit not counted):"
    )
    print(line("record with triage", on))
    print(line("record without triage", off))
    print(line("triage itself", own))
    print("  labels given: " + ", ".join(f"{n} {label}" for label, n in LABELLED.items()))
    wall = statistics.median(a.wall - b.wall for a, b in zip(on, off, strict=True))
    cpu = statistics.median(a.cpu - b.cpu for a, b in zip(on, off, strict=True))
    print(
        f"triage adds {ms(wall)} ms per result (CPU {ms(cpu)} ms; median of the paired "
        f"differences) at {shape.test_rows:,} test rows"
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-rows", type=int, default=10_000_000)
    parser.add_argument("--tests", type=int, default=50, help="tests per result")
    parser.add_argument("--repositories", type=int, default=200)
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--timed", type=int, default=300, help="new results timed")
    parser.add_argument("--db", type=Path, help="build here, or reuse what is here")
    args = parser.parse_args(argv)
    shape = Shape(args)
    if args.db is not None:
        if not args.db.exists():
            build(args.db, shape)
        measure(args.db, shape, args.timed)
        return
    with tempfile.TemporaryDirectory(prefix="receiver-triage-") as folder:
        path = Path(folder) / "triage.db"
        build(path, shape)
        measure(path, shape, args.timed)


if __name__ == "__main__":
    main()
