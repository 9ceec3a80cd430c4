"""The store: schema, migrations and queries on SQLite. The only module that speaks SQL.

One write connection (as datasette's ``database.py`` has). Callers hand the store a function;
functions that arrive together run in one ``BEGIN IMMEDIATE`` transaction and share one commit:
one fsync for a whole batch (group commit). If one of them raises, the batch runs again with a
savepoint per function, so one caller's failure undoes no other's. A lone write commits at once,
so there is no added latency at low load. Async writes are batched on the event loop (the
functions run there, the COMMIT on a helper thread); blocking writes go through a writer thread.
A ``BatchWriter`` (the callback intake) may write a run of its items in a batch together, in
fewer statements. Reads use one connection per thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import msgspec
from sqlite_utils import Database

from receiver import redact
from receiver.clock import utc_after as utc_after
from receiver.clock import utcnow as utcnow
from receiver.results import CustomData, Failure, Result, TestCase

T = TypeVar("T")
Item = TypeVar("Item")

MAX_BATCH: Final = 512
# How long the loop waits for the committer thread to pick up a COMMIT (it takes ~60 µs); only
# a starved machine reaches it, and then the loop simply goes on.
COMMIT_START_WAIT: Final = 0.05


class StoreError(Exception):
    """The database cannot be opened or written."""


class NotFound(StoreError):
    """No row with that id."""


class NoDatabase(StoreError):
    """``open(create=False)`` found no database file: the path is not the service's."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"No database at {redact.url(path)}: pass --config or set RECEIVER_DB to the service's "
            "database (it is created by receiver serve)"
        )
        self.path = path


# ---------------------------------------------------------------------------------------------
# Connections


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    # isolation_level=None: the writer issues BEGIN IMMEDIATE / COMMIT itself.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
        return conn
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: an acknowledged callback survives power loss, not only a process crash.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Savepoints (a failing batch's rerun) and statement journals keep page images in temporary
    # storage; on disk, measured when every write had its savepoint, those were most of the write
    # syscalls and a quarter of the CPU of storing a callback (see README, Performance).
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


class BatchWriter(Protocol[Item, T]):
    """A kind of write that stores several items in fewer statements than one at a time."""

    def write_one(self, db: Database, item: Item) -> T: ...

    def write_many(self, db: Database, items: list[Item]) -> list[T] | None:
        """Every item's value, in order; or None, having written nothing, to have them
        written one at a time."""
        ...


class _Write(msgspec.Struct):
    fn: Callable[[Database], Any]
    done: Callable[[Any, BaseException | None], None]
    # Consecutive writes of one BatchWriter in a batch go to its write_many together.
    writer: BatchWriter[Any, Any] | None = None
    item: Any = None


_Outcome = tuple[_Write, Any, BaseException | None]


class Store:
    """Owns the database file: the writer thread, per-thread readers, migrations at open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Whoever holds it runs a transaction on the write connection: the writer thread or the
        # event loop's batch (see _LoopWriter).
        self._conn_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._db: Database | None = None
        self._loop_writer: _LoopWriter | None = None
        self.batches = 0
        self.batched_writes = 0

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, *, create: bool = True) -> Store:
        """Start the writer and migrate. ``create=False``: only an existing database file is
        opened (NoDatabase otherwise), for commands that must not leave an empty one behind."""
        if self._thread is not None:
            return self
        if not create and self.path != ":memory:" and not Path(self.path).is_file():
            raise NoDatabase(self.path)
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the folder of {self.path}: {exc.strerror}"
                ) from None
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run_writer, args=(ready,), name="receiver-writer", daemon=True
        )
        self._thread.start()
        ready.result()
        return self

    def close(self) -> None:
        """Stop the writers and close every connection. Call it from the event loop's thread
        (the lifespan does) or with no write in flight: a batch the loop is running is not
        waited for."""
        if self._thread is None:
            return
        if self._loop_writer is not None:
            self._loop_writer.close()
            self._loop_writer = None
        self._queue.put(None)
        self._thread.join()
        self._thread = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn`` in a shared transaction; return once the commit holding it is durable.

        ``fn`` may run twice (see ``_run_batch``): it must change nothing but the database, or
        only what is safe to redo.
        """
        return await self._write(fn)

    async def write_item(self, writer: BatchWriter[Item, T], item: Item) -> T:
        """``write`` of ``writer.write_one(db, item)``; where items of the same writer share
        a batch, they are written together by its ``write_many``."""
        return await self._write(lambda db: writer.write_one(db, item), writer, item)

    async def _write(
        self,
        fn: Callable[[Database], T],
        writer: BatchWriter[Any, T] | None = None,
        item: Any = None,
    ) -> T:
        if self._thread is None:
            raise StoreError("The store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._loop_writer is None:
            self._loop_writer = _LoopWriter(self, loop)
        if self._loop_writer.loop is loop:
            self._loop_writer.submit(_Write(fn, partial(_settle, future), writer, item))
            return await future

        def done(value: Any, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, value, error)

        # A second event loop (rare): the writer thread takes it.
        self._put(_Write(fn, done, writer, item))
        return await future

    def write_sync(self, fn: Callable[[Database], T]) -> T:
        """The blocking form of ``write``, for the CLI and worker threads."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def done(value: Any, error: BaseException | None) -> None:
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

        self._put(_Write(fn, done))
        return future.result()

    def _put(self, write: _Write) -> None:
        if self._thread is None:
            raise StoreError("The store is not open")
        self._queue.put(write)

    def _run_writer(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            conn = connect(self.path)
            migrate(Database(conn))
        except (sqlite3.Error, OSError) as exc:
            ready.set_exception(StoreError(f"Cannot open the database {self.path}: {exc}"))
            return
        # Made before ``ready``: Database() runs a PRAGMA, and the loop's batches share the
        # connection as soon as open() returns.
        db = self._db = Database(conn)
        self._conn = conn
        ready.set_result(None)
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stop = self._drain_into(batch)
            self._commit(conn, db, batch)
            if stop:
                break
        conn.close()

    def _drain_into(self, batch: list[_Write]) -> bool:
        """Take what else is already waiting: under load, batches grow by themselves."""
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _commit(self, conn: sqlite3.Connection, db: Database, batch: list[_Write]) -> None:
        with self._conn_lock:
            try:
                outcomes = self._run_batch(conn, db, batch)
            except sqlite3.Error as exc:
                outcomes = self._failed(conn, batch, exc)
            else:
                outcomes = self._end_batch(conn, batch, outcomes)
        for write, value, error in outcomes:
            write.done(value, error)

    def _run_batch(
        self, conn: sqlite3.Connection, db: Database, batch: list[_Write]
    ) -> list[_Outcome]:
        """BEGIN IMMEDIATE, then every write; the transaction stays open for the COMMIT.

        The writes run bare first: a savepoint journals every page it touches, which measured
        a sixth of the cost of storing a callback. If one raises, the transaction is rolled back
        and the batch runs again with a savepoint per write, so one caller's failure never
        undoes the others. Hence ``write``'s rule: a function may run twice.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            return _run_writes(db, batch)
        except Exception:
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        return [_run_in_savepoint(conn, db, write) for write in batch]

    def _end_batch(
        self, conn: sqlite3.Connection, batch: list[_Write], outcomes: list[_Outcome]
    ) -> list[_Outcome]:
        """COMMIT: the one fsync of the batch. Nothing is answered before it returns."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            return self._failed(conn, batch, exc)
        self.batches += 1
        self.batched_writes += len(batch)
        return outcomes

    def _failed(
        self, conn: sqlite3.Connection, batch: list[_Write], exc: sqlite3.Error
    ) -> list[_Outcome]:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        failure = StoreError(f"Write to {self.path} failed: {exc}")
        return [(write, None, failure) for write in batch]

    # -- reads -----------------------------------------------------------------------------

    def read(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn`` on this thread's read connection (WAL: readers never wait for the writer)."""
        return fn(self._reader())

    def _reader(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = connect(self.path, readonly=True)
            with self._readers_lock:
                self._readers.append(conn)
            db = self._local.db = Database(conn)
        return db

    def ping(self) -> bool:
        alive = self._thread is not None and self._thread.is_alive()
        return alive and self.read(lambda db: db.execute("SELECT 1").fetchone()[0] == 1)


class _LoopWriter:
    """Group commit on the event loop: a batch's functions run on the loop's thread, and only
    the COMMIT (the fsync, which releases the GIL) runs on the committer thread while the loop
    serves further requests; they form the next batch.

    Measured (README, Performance): with the functions on the writer thread, every sqlite3 call
    handed the GIL back and forth with the loop, batches stayed about half as large and each
    callback cost more CPU.
    """

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self._pending: deque[_Write] = deque()
        self._wakeup = asyncio.Event()
        assert store._conn is not None and store._db is not None
        self._conn, self._db = store._conn, store._db
        self._commits: queue.SimpleQueue[_Commit | None] = queue.SimpleQueue()
        self._started = threading.Semaphore(0)
        self._committer = threading.Thread(
            target=self._commit_forever, name="receiver-commit", daemon=True
        )
        self._committer.start()
        self._task = loop.create_task(self._run(), name="receiver-writer")

    def submit(self, write: _Write) -> None:
        self._pending.append(write)
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # What queued up while the last batch committed is the next batch.
            while self._pending:
                count = min(MAX_BATCH, len(self._pending))
                await self._commit([self._pending.popleft() for _ in range(count)])
                # The committed batch's requests answer first, then the next batch's SQL runs:
                # their clients send again ~0.6 ms sooner (measured: +10 to +30 % at -c16).
                await asyncio.sleep(0)

    async def _commit(self, batch: list[_Write]) -> None:
        store, conn = self.store, self._conn
        if not store._conn_lock.acquire(blocking=False):  # the writer thread is committing
            await self.loop.run_in_executor(None, store._conn_lock.acquire)
        try:
            outcomes = store._run_batch(conn, self._db, batch)
        except sqlite3.Error as exc:
            outcomes = store._failed(conn, batch, exc)
            store._conn_lock.release()
        else:
            outcomes = await self._hand_over(batch, outcomes)
        for write, value, error in outcomes:
            write.done(value, error)

    async def _hand_over(self, batch: list[_Write], outcomes: list[_Outcome]) -> list[_Outcome]:
        """The COMMIT on the committer thread; the loop goes on once that thread is in it.

        The loop waits, GIL released, until the committer has started: otherwise the committer
        waits for the GIL until the loop runs out of work (~150 µs a batch at 16 connections,
        a third of the COMMIT's own time). Measured served: +1 to +15 % req/s in seven
        alternating pairs (README, Performance).
        """
        committed: asyncio.Future[list[_Outcome]] = self.loop.create_future()
        self._commits.put(_Commit(batch, outcomes, committed))
        self._started.acquire(timeout=COMMIT_START_WAIT)
        # Shielded: a cancelled task must not leave the transaction open or the lock held.
        return await asyncio.shield(committed)

    def _commit_forever(self) -> None:
        while (job := self._commits.get()) is not None:
            self._started.release()
            try:
                value, error = self._finish(job.batch, job.outcomes), None
            except BaseException as exc:  # pragma: no cover - _finish handles sqlite errors
                value, error = None, exc
            # RuntimeError: the loop has closed, and nobody waits for this commit any more.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(_settle, job.committed, value, error)

    def _finish(self, batch: list[_Write], outcomes: list[_Outcome]) -> list[_Outcome]:
        try:
            return self.store._end_batch(self._conn, batch, outcomes)
        finally:
            self.store._conn_lock.release()

    def close(self) -> None:
        """Stop taking batches; a commit in progress finishes; waiting writes fail."""
        closed = StoreError("The store is closed")
        pending, self._pending = list(self._pending), deque()
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._task.cancel)
            for write in pending:
                self.loop.call_soon_threadsafe(write.done, None, closed)
        self._commits.put(None)
        self._committer.join()


class _Commit(msgspec.Struct):
    batch: list[_Write]
    outcomes: list[_Outcome]
    committed: asyncio.Future[list[_Outcome]]


def _run_writes(db: Database, batch: list[_Write]) -> list[_Outcome]:
    """Every write in order; a run of items for one BatchWriter goes to its write_many."""
    outcomes: list[_Outcome] = []
    for writer, run in groupby(batch, key=lambda write: write.writer):
        writes = list(run)
        values = None
        if writer is not None and len(writes) > 1:
            values = writer.write_many(db, [write.item for write in writes])
        if values is None:
            values = [write.fn(db) for write in writes]
        outcomes.extend((write, value, None) for write, value in zip(writes, values, strict=True))
    return outcomes


def _run_in_savepoint(conn: sqlite3.Connection, db: Database, write: _Write) -> _Outcome:
    """One caller's failure must not undo the others sharing the transaction."""
    conn.execute("SAVEPOINT write")
    try:
        value = write.fn(db)
    except Exception as exc:
        conn.execute("ROLLBACK TO write")
        conn.execute("RELEASE write")
        return write, None, exc
    conn.execute("RELEASE write")
    return write, value, None


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting request was cancelled (client went away)
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


# ---------------------------------------------------------------------------------------------
# Migrations: named functions, applied in order, each in one transaction with its "applied" row.


def m001_initial(db: Database) -> None:
    db.table("jobs").create(
        {
            "id": int,
            "provider": str,
            "job_key": str,
            "external_id": str,
            "state": str,
            "url": str,
            "request": str,
            "custom_data": str,
            "callback_url": str,
            "error": str,
            "result_id": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"provider", "state", "created_at", "updated_at"},
    )
    db.table("jobs").create_index(["job_key"], unique=True)
    db.table("jobs").create_index(["provider", "external_id"])
    db.table("callbacks").create(
        {
            "id": int,
            "provider": str,
            "job_key": str,
            "job_id": int,
            "result_id": int,
            "digest": str,
            "body": bytes,
            "headers": str,
            "outcome": str,
            "error": str,
            "received_at": str,
        },
        pk="id",
        not_null={"provider", "digest", "body", "outcome", "received_at"},
    )
    db.table("callbacks").create_index(["digest"], unique=True)
    db.table("results").create(
        {
            "id": int,
            "callback_id": int,
            "job_id": int,
            "provider": str,
            "event": str,
            "status": str,
            "raw_status": str,
            "total": int,
            "passed": int,
            "failed": int,
            "duration_ms": int,
            "report_url": str,
            "summary": str,
            "external_job_id": str,
            "branch": str,
            "repository": str,
            "pr_number": int,
            "sha": str,
            "custom_data": str,
            "failures": str,
            "created_at": str,
        },
        pk="id",
        not_null={"provider", "event", "status", "created_at"},
    )
    for columns in (["status"], ["branch"], ["provider"], ["job_id"]):
        db.table("results").create_index(columns)
    db.table("tests").create(
        {
            "id": int,
            "result_id": int,
            "position": int,
            "name": str,
            "status": str,
            "duration_ms": int,
            "error": str,
            "screenshot_url": str,
            "video_url": str,
            "execution_id": str,
        },
        pk="id",
        not_null={"result_id", "name", "status"},
        foreign_keys=[("result_id", "results", "id")],
    )
    db.table("tests").create_index(["result_id"])


def m002_deliveries(db: Database) -> None:
    """The outbox: one row per (result, target), written in the result's own transaction."""
    db.table("deliveries").create(
        {
            "id": int,
            "result_id": int,
            "route": str,
            "target": str,  # the full URL: it may hold a secret, so it never leaves the store
            "target_display": str,  # masked with Apprise's url(privacy=True)
            "state": str,
            "attempts": int,
            "last_error": str,
            "next_attempt_at": str,
            "lease": str,
            "sent_at": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"result_id", "route", "target", "target_display", "state", "attempts"},
        defaults={"attempts": 0},
        foreign_keys=[("result_id", "results", "id")],
    )
    db.table("deliveries").create_index(["result_id", "target"], unique=True)
    db.table("deliveries").create_index(["state", "next_attempt_at"])
    # on_change: the last status each (route, group) spoke about, updated with each result.
    db.table("route_groups").create(
        {"route": str, "group_key": str, "status": str, "result_id": int, "updated_at": str},
        pk=("route", "group_key"),
        not_null={"status"},
    )


def m004_polling(db: Database) -> None:
    """Jobs the poller drives (Qualigate, QualGent): what the external id names, when to ask
    next, how often it was asked and failed in a row; and each test's own page at the provider."""
    db.execute("ALTER TABLE jobs ADD COLUMN external_kind TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN poll_after TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN poll_attempts INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE jobs ADD COLUMN poll_errors INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE tests ADD COLUMN url TEXT")
    db.table("jobs").create_index(["provider", "state", "poll_after"])


def m005_partial_job_indexes(db: Database) -> None:
    """Index only the jobs each lookup can find: keyed jobs for the job_key lookup, open jobs
    for the poller. A callback on the bare path makes a job with no key that is finished at
    once; it no longer writes two index entries it can never be found by (measured: a sixth
    of the SQL time of storing a callback, see README, Performance)."""
    db.execute("DROP INDEX idx_jobs_job_key")
    db.execute("CREATE UNIQUE INDEX idx_jobs_job_key ON jobs (job_key) WHERE job_key IS NOT NULL")
    db.execute("DROP INDEX idx_jobs_provider_state_poll_after")
    db.execute(
        f"CREATE INDEX idx_jobs_open_poll ON jobs (provider, poll_after) WHERE {OPEN_FOR_POLLING}"
    )


def m006_open_poll_index_without_in_list(db: Database) -> None:
    """The open-jobs index's condition names the open states with OR, not IN: SQLite checks a
    partial index's condition on every insert into jobs, and an IN list builds a small table
    each time (measured: 6.2 against 4.5 us an insert; a job per bare callback)."""
    db.execute("DROP INDEX idx_jobs_open_poll")
    db.execute(
        f"CREATE INDEX idx_jobs_open_poll ON jobs (provider, poll_after) WHERE {OPEN_FOR_POLLING}"
    )


MIGRATIONS: Final[tuple[Callable[[Database], None], ...]] = (
    m001_initial,
    m002_deliveries,
    m004_polling,
    m005_partial_job_indexes,
    m006_open_poll_index_without_in_list,
)


def migrate(db: Database) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            migration(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                [migration.__name__, utcnow()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(migration.__name__)
    return applied


# ---------------------------------------------------------------------------------------------
# Writes (run inside the writer's transaction)


class CallbackRecord(msgspec.Struct, kw_only=True):
    """One inbound delivery, verbatim: what we keep of every verified callback."""

    provider: str
    job_key: str | None
    digest: str
    body: bytes
    headers: dict[str, str]
    received_at: str


class StoredCallback(msgspec.Struct, kw_only=True):
    id: int
    outcome: str
    error: str | None
    result_id: int | None
    job_id: int | None
    status: str | None


# A repeat is answered like the first delivery, its result's status included.
FIND_CALLBACK: Final = """
SELECT c.id, c.outcome, c.error, c.result_id, c.job_id, r.status
FROM callbacks c LEFT JOIN results r ON r.id = c.result_id
WHERE c.digest = ?
"""
# Every INSERT names the id: None lets SQLite pick max(id) + 1, a batch gives the ids it counted.
INSERT_CALLBACK: Final = """
INSERT INTO callbacks (id, provider, job_key, job_id, result_id, digest, body, headers, outcome,
    error, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
FIND_JOB_BY_KEY: Final = "SELECT id FROM jobs WHERE job_key = ?"
FIND_JOB_BY_EXTERNAL_ID: Final = "SELECT id FROM jobs WHERE provider = ? AND external_id = ?"
INSERT_RESULT: Final = """
INSERT INTO results (id, callback_id, job_id, provider, event, status, raw_status, total, passed,
    failed, duration_ms, report_url, summary, external_job_id, branch, repository, pr_number, sha,
    custom_data, failures, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# Without AUTOINCREMENT SQLite gives a new row max(id) + 1; the writer holds the write lock
# from BEGIN to COMMIT, so the id read here is the one the result gets.
NEXT_RESULT_ID: Final = "SELECT coalesce(max(id), 0) + 1 FROM results"
NEXT_IDS: Final = """
SELECT (SELECT coalesce(max(id), 0) + 1 FROM callbacks),
    (SELECT coalesce(max(id), 0) + 1 FROM jobs),
    (SELECT coalesce(max(id), 0) + 1 FROM results)
"""
INSERT_TEST: Final = """
INSERT INTO tests (result_id, position, name, status, duration_ms, error, screenshot_url,
    video_url, execution_id, url)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_JOB: Final = """
INSERT INTO jobs (id, provider, job_key, external_id, state, url, request, custom_data,
    callback_url, result_id, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
SET_JOB_RESULT: Final = "UPDATE jobs SET state = ?, result_id = ?, updated_at = ? WHERE id = ?"
# A submitted job learns the partner's id; its state is left alone, as a fast callback may
# already have moved it on.
SET_JOB_SUBMITTED: Final = "UPDATE jobs SET external_id = ?, updated_at = ? WHERE id = ?"
SET_JOB_ERROR: Final = "UPDATE jobs SET state = 'error', error = ?, updated_at = ? WHERE id = ?"
SELECT_JOB_EXTERNAL_ID: Final = "SELECT external_id FROM jobs WHERE id = ?"


def find_callback(db: Database, digest: str) -> StoredCallback | None:
    row = db.execute(FIND_CALLBACK, [digest]).fetchone()
    if row is None:
        return None
    return StoredCallback(
        id=row[0], outcome=row[1], error=row[2], result_id=row[3], job_id=row[4], status=row[5]
    )


def insert_callback(
    db: Database,
    record: CallbackRecord,
    *,
    job_id: int | None,
    outcome: str,
    error: str | None,
    result_id: int | None = None,
) -> int:
    """``result_id``: the id reserved for its result (``next_result_id``), stored with the row."""
    row = _callback_row(None, record, job_id, result_id, outcome, error)
    return _lastrowid(db.execute(INSERT_CALLBACK, row))


def _callback_row(
    callback_id: int | None,
    record: CallbackRecord,
    job_id: int | None,
    result_id: int | None,
    outcome: str,
    error: str | None,
) -> tuple[Any, ...]:
    return (
        callback_id,
        record.provider,
        record.job_key,
        job_id,
        result_id,
        record.digest,
        record.body,
        _json(record.headers),
        outcome,
        error,
        record.received_at,
    )


def find_job_id(
    db: Database, *, job_key: str | None, provider: str, external_id: str | None
) -> int | None:
    """The job a callback belongs to: by the key in its path, else by the provider's job id."""
    if job_key:
        row = db.execute(FIND_JOB_BY_KEY, [job_key]).fetchone()
        return row[0] if row else None
    if external_id:
        row = db.execute(FIND_JOB_BY_EXTERNAL_ID, [provider, external_id]).fetchone()
        return row[0] if row else None
    return None


class NewJob(msgspec.Struct, kw_only=True):
    provider: str
    state: str
    job_key: str | None = None
    external_id: str | None = None
    url: str | None = None
    request: str | None = None
    custom_data: CustomData = msgspec.field(default_factory=dict)
    callback_url: str | None = None
    result_id: int | None = None  # a job made for a result (the bare callback path) has it now


def insert_job(db: Database, job: NewJob) -> int:
    return _lastrowid(db.execute(INSERT_JOB, _job_row(None, job, utcnow())))


def _job_row(job_id: int | None, job: NewJob, now: str) -> tuple[Any, ...]:
    return (
        job_id,
        job.provider,
        job.job_key,
        job.external_id,
        job.state,
        job.url,
        job.request,
        _json(job.custom_data),
        job.callback_url,
        job.result_id,
        now,
        now,
    )


def set_job_submitted(db: Database, job_id: int, external_id: str) -> None:
    db.execute(SET_JOB_SUBMITTED, [external_id, utcnow(), job_id])


def set_job_error(db: Database, job_id: int, error: str) -> None:
    db.execute(SET_JOB_ERROR, [error, utcnow(), job_id])


def job_external_id(db: Database, job_id: int) -> str | None:
    row = db.execute(SELECT_JOB_EXTERNAL_ID, [job_id]).fetchone()
    return row[0] if row else None


def next_result_id(db: Database) -> int:
    """The id the next result will get, reserved so that the rows written before it (its
    callback, a job made for it) point at it from the start: measured, updating them after
    the result was a sixth of the SQL time of storing a callback."""
    row = db.execute(NEXT_RESULT_ID).fetchone()
    return int(row[0])


def insert_result(db: Database, result: Result, *, job_id: int | None) -> int:
    """Store a result that came without a callback (a polled one) and its tests, then point
    its job at it. A callback's result goes through ``insert_reserved_result``."""
    result_id = _insert_result_row(db, result, None, callback_id=None, job_id=job_id)
    if job_id is not None:
        set_job_result(db, job_id, result_id=result_id, status=result.status)
    return result_id


def insert_reserved_result(
    db: Database, result: Result, *, result_id: int, callback_id: int, job_id: int | None
) -> None:
    """Store ``result`` and its tests under the id ``next_result_id`` reserved: its callback
    (and a job made for it) were written pointing at it already."""
    _insert_result_row(db, result, result_id, callback_id=callback_id, job_id=job_id)


def _insert_result_row(
    db: Database,
    result: Result,
    result_id: int | None,
    *,
    callback_id: int | None,
    job_id: int | None,
) -> int:
    row = _result_row(result_id, result, callback_id, job_id, utcnow())
    row_id = _lastrowid(db.execute(INSERT_RESULT, row))
    if result.tests:
        db.conn.executemany(INSERT_TEST, _test_rows(row_id, result))
    return row_id


def _result_row(
    result_id: int | None,
    result: Result,
    callback_id: int | None,
    job_id: int | None,
    now: str,
) -> tuple[Any, ...]:
    return (
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
        _json(result.custom_data),
        _json(result.failures),
        now,
    )


def set_job_result(db: Database, job_id: int, *, result_id: int, status: str) -> None:
    db.execute(SET_JOB_RESULT, [status, result_id, utcnow(), job_id])


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
        )
        for position, t in enumerate(result.tests)
    ]


class NewIds(msgspec.Struct, frozen=True):
    """The rows one bare callback made (``insert_bare_callbacks``)."""

    callback_id: int
    job_id: int
    result_id: int


def insert_bare_callbacks(
    db: Database, stored: list[tuple[CallbackRecord, Result]]
) -> list[NewIds]:
    """New callbacks on the bare path, each with its result and a job made for it: the rows
    ``insert_job``, ``insert_callback`` and ``insert_reserved_result`` write one at a time, in
    one INSERT per table. The ids are read once and counted up: exact while the writer holds
    the write lock, as for ``next_result_id``."""
    first_callback, first_job, first_result = db.execute(NEXT_IDS).fetchone()
    now = utcnow()
    jobs, callbacks, results, tests, made = [], [], [], [], []
    for offset, (record, result) in enumerate(stored):
        ids = NewIds(
            callback_id=first_callback + offset,
            job_id=first_job + offset,
            result_id=first_result + offset,
        )
        jobs.append(_job_row(ids.job_id, made_job(record.provider, result, ids.result_id), now))
        callbacks.append(
            _callback_row(ids.callback_id, record, ids.job_id, ids.result_id, "accepted", None)
        )
        results.append(_result_row(ids.result_id, result, ids.callback_id, ids.job_id, now))
        tests.extend(_test_rows(ids.result_id, result))
        made.append(ids)
    db.conn.executemany(INSERT_JOB, jobs)
    db.conn.executemany(INSERT_CALLBACK, callbacks)
    db.conn.executemany(INSERT_RESULT, results)
    db.conn.executemany(INSERT_TEST, tests)
    return made


def made_job(provider: str, result: Result, result_id: int | None) -> NewJob:
    """The job a callback on the bare path makes when it names no known job: already done."""
    return NewJob(
        provider=provider,
        state=result.status,
        external_id=result.external_job_id,
        custom_data=result.custom_data,
        result_id=result_id,
    )


def any_callback_with_digest(db: Database, digests: list[str]) -> bool:
    sql = f"SELECT 1 FROM callbacks WHERE digest IN ({_marks(digests)}) LIMIT 1"
    return db.execute(sql, digests).fetchone() is not None


def any_job_with_external_id(db: Database, provider: str, external_ids: list[str]) -> bool:
    if not external_ids:
        return False
    sql = (
        f"SELECT 1 FROM jobs WHERE provider = ? AND external_id IN ({_marks(external_ids)}) LIMIT 1"
    )
    return db.execute(sql, [provider, *external_ids]).fetchone() is not None


def _marks(values: list[str]) -> str:
    """One ``?`` per value, for an IN list."""
    return ", ".join("?" * len(values))


# ---------------------------------------------------------------------------------------------
# Polling jobs (Qualigate, QualGent): the poller's queue is the jobs table itself.


class PollJob(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    external_kind: str
    external_id: str
    state: str
    custom_data: CustomData
    created_at: str
    poll_attempts: int
    poll_errors: int


# A job before its result (DESIGN.md's submitted/pending/running). OR, not IN: see m006.
OPEN_JOB: Final = (
    "(state = 'submitted' OR state = 'pending' OR state = 'running') AND result_id IS NULL"
)
# A job the poller may still ask about; also the condition of its partial index (m006), which
# SQLite uses only for queries that repeat it word for word.
OPEN_FOR_POLLING: Final = f"{OPEN_JOB} AND external_id IS NOT NULL"
SELECT_DUE_POLL_JOBS: Final = f"""
SELECT id, provider, external_kind, external_id, state, custom_data, created_at, poll_attempts,
    poll_errors
FROM jobs
WHERE provider = ? AND {OPEN_FOR_POLLING}
    AND (poll_after IS NULL OR poll_after <= ?)
ORDER BY poll_after, id LIMIT ?
"""
SET_POLL_KIND: Final = "UPDATE jobs SET external_kind = ?, poll_after = ? WHERE id = ?"
SET_POLL_PROGRESS: Final = f"""
UPDATE jobs SET state = ?, poll_after = ?, poll_attempts = poll_attempts + 1, poll_errors = 0,
    error = NULL, updated_at = ?
WHERE id = ? AND {OPEN_JOB}
"""
SET_POLL_ERROR: Final = """
UPDATE jobs SET poll_after = ?, poll_attempts = poll_attempts + 1, poll_errors = poll_errors + 1,
    error = ?, updated_at = ?
WHERE id = ? AND result_id IS NULL
"""
SELECT_JOB_OPEN: Final = f"SELECT 1 FROM jobs WHERE id = ? AND {OPEN_JOB}"


def insert_polling_job(db: Database, job: NewJob, *, external_kind: str) -> int:
    """A job the poller will ask about from now on."""
    job_id = insert_job(db, job)
    db.execute(SET_POLL_KIND, [external_kind, utcnow(), job_id])
    return job_id


def due_poll_jobs(db: Database, provider: str, *, limit: int = 100) -> list[PollJob]:
    rows = db.execute(SELECT_DUE_POLL_JOBS, [provider, utcnow(), limit]).fetchall()
    columns = [
        "id", "provider", "external_kind", "external_id", "state", "custom_data", "created_at",
        "poll_attempts", "poll_errors",
    ]  # fmt: skip
    jobs = []
    for row in rows:
        item = dict(zip(columns, row, strict=True))
        item["custom_data"] = msgspec.json.decode(item["custom_data"] or "{}")
        jobs.append(msgspec.convert(item, PollJob))
    return jobs


def record_poll(db: Database, job_id: int, *, state: str, poll_after: str) -> bool:
    """The job is still open at the provider; False when it was finished meanwhile."""
    cursor = db.execute(SET_POLL_PROGRESS, [state, poll_after, utcnow(), job_id])
    return cursor.rowcount == 1


def record_poll_error(db: Database, job_id: int, *, error: str, poll_after: str) -> None:
    db.execute(SET_POLL_ERROR, [poll_after, error, utcnow(), job_id])


def job_is_open(db: Database, job_id: int) -> bool:
    """No result yet: the one check that keeps a polled result from being stored twice."""
    return db.execute(SELECT_JOB_OPEN, [job_id]).fetchone() is not None


# ---------------------------------------------------------------------------------------------
# Reads


class Links(msgspec.Struct, kw_only=True):
    report: str | None = None
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


class ResultDetail(ResultSummary, kw_only=True):
    raw_status: str | None
    summary: str | None
    external_job_id: str | None
    custom_data: CustomData
    failures: list[Failure]
    tests: list[TestCase]
    links: Links
    deliveries: list[DeliveryView] = msgspec.field(default_factory=list)


class ResultPage(msgspec.Struct, kw_only=True):
    items: list[ResultSummary]
    next_cursor: int | None


class ResultFilter(msgspec.Struct, kw_only=True):
    status: str | None = None
    branch: str | None = None
    provider: str | None = None
    limit: int = 50
    before: int | None = None


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


class JobPage(msgspec.Struct, kw_only=True):
    items: list[JobView]
    next_cursor: int | None


SUMMARY_COLUMNS: Final = (
    "id, provider, event, status, total, passed, failed, duration_ms, branch, repository, "
    "pr_number, sha, report_url, job_id, callback_id, created_at"
)
DETAIL_COLUMNS: Final = (
    SUMMARY_COLUMNS + ", raw_status, summary, external_job_id, custom_data, failures"
)
SELECT_TESTS: Final = (
    "SELECT name, status, duration_ms, error, screenshot_url, video_url, execution_id, url "
    "FROM tests WHERE result_id = ? ORDER BY position"
)
JOB_COLUMNS: Final = (
    "id, provider, job_key, external_id, state, url, callback_url, custom_data, error, result_id, "
    "created_at, updated_at"
)
COUNT_CALLBACKS: Final = "SELECT outcome, count(*) FROM callbacks GROUP BY outcome"
SELECT_CALLBACK_BODY: Final = "SELECT body FROM callbacks WHERE id = ?"


def list_results(db: Database, where: ResultFilter) -> ResultPage:
    """Newest first; ``before`` is the cursor (the last id of the previous page)."""
    clauses: list[str] = []
    params: list[Any] = []
    for column in ("status", "branch", "provider"):
        value = getattr(where, column)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    rows, next_cursor = _newest_first(
        db, f"SELECT {SUMMARY_COLUMNS} FROM results", clauses, params, where.limit, where.before
    )
    items = [msgspec.convert(row, ResultSummary) for row in rows]
    return ResultPage(items=items, next_cursor=next_cursor)


def _newest_first(
    db: Database,
    select: str,
    clauses: list[str],
    params: list[Any],
    limit: int,
    before: int | None,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of ``select`` by descending id (keyset paging): its rows and the next cursor."""
    if before is not None:
        clauses = [*clauses, "id < ?"]
        params = [*params, before]
    sql = select
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = list(db.query(sql, [*params, limit + 1]))
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)


def get_result(db: Database, result_id: int) -> ResultDetail:
    rows = list(db.query(f"SELECT {DETAIL_COLUMNS} FROM results WHERE id = ?", [result_id]))
    if not rows:
        raise NotFound(f"No result {result_id}")
    row = rows[0]
    row["custom_data"] = msgspec.json.decode(row["custom_data"] or "{}")
    row["failures"] = msgspec.json.decode(row["failures"] or "[]")
    tests = [msgspec.convert(t, TestCase) for t in db.query(SELECT_TESTS, [result_id])]
    row["tests"] = tests
    row["links"] = Links(
        report=row["report_url"],
        screenshots=[t.screenshot_url for t in tests if t.screenshot_url],
        videos=[t.video_url for t in tests if t.video_url],
    )
    row["deliveries"] = deliveries_of(db, result_id)
    return msgspec.convert(row, ResultDetail, from_attributes=True)


def list_jobs(db: Database, *, limit: int = 50, before: int | None = None) -> JobPage:
    rows, next_cursor = _newest_first(db, f"SELECT {JOB_COLUMNS} FROM jobs", [], [], limit, before)
    return JobPage(items=[_job(row) for row in rows], next_cursor=next_cursor)


def get_job(db: Database, job_id: int) -> JobView:
    rows = list(db.query(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", [job_id]))
    if not rows:
        raise NotFound(f"No job {job_id}")
    job = _job(rows[0])
    if job.result_id is not None:
        job.result = get_result(db, job.result_id)
    return job


def count_callbacks(db: Database) -> dict[str, int]:
    return {row[0]: row[1] for row in db.execute(COUNT_CALLBACKS).fetchall()}


def callback_body(db: Database, callback_id: int) -> bytes:
    row = db.execute(SELECT_CALLBACK_BODY, [callback_id]).fetchone()
    if row is None:
        raise NotFound(f"No callback {callback_id}")
    body: bytes = row[0]
    return body


def _job(row: dict[str, Any]) -> JobView:
    row["custom_data"] = msgspec.json.decode(row["custom_data"] or "{}")
    return msgspec.convert(row, JobView)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _lastrowid(cursor: sqlite3.Cursor) -> int:
    rowid = cursor.lastrowid
    if rowid is None:  # pragma: no cover - sqlite always sets it after an INSERT
        raise StoreError("INSERT gave no rowid")
    return rowid


# ---------------------------------------------------------------------------------------------
# Deliveries: the outbox. Rows are written in the result's transaction; the worker claims them by
# moving next_attempt_at forward (the lease), so a worker killed mid-send just lets it expire.

DELIVERY_STATES: Final = ("pending", "sent", "dead")


class NewDelivery(msgspec.Struct, kw_only=True):
    result_id: int
    route: str
    target: str
    target_display: str


class DeliveryView(msgspec.Struct, kw_only=True):
    """A delivery as the API and CLI show it: the target masked, never the full URL."""

    id: int
    result_id: int
    route: str
    target: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    sent_at: str | None
    created_at: str
    updated_at: str


class DeliveryPage(msgspec.Struct, kw_only=True):
    items: list[DeliveryView]
    next_cursor: int | None


class DeliveryFilter(msgspec.Struct, kw_only=True):
    state: str | None = None
    failed: bool = False  # dead, or pending after at least one failed attempt
    limit: int = 50
    before: int | None = None


class ClaimedDelivery(msgspec.Struct, kw_only=True):
    """A delivery the worker holds until ``lease`` expires: it carries the full target URL."""

    id: int
    result_id: int
    route: str
    target: str
    target_display: str
    attempts: int
    lease: str


class DeliveryOutcome(msgspec.Struct, kw_only=True):
    """What one attempt decided: ``sent``, ``pending`` again at ``next_attempt_at``, or ``dead``."""

    id: int
    lease: str
    state: str
    last_error: str | None = None
    next_attempt_at: str | None = None


INSERT_DELIVERY: Final = """
INSERT OR IGNORE INTO deliveries (result_id, route, target, target_display, state, attempts,
    next_attempt_at, created_at, updated_at)
VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)
"""
CLAIM_DELIVERIES: Final = """
UPDATE deliveries
SET lease = :lease, next_attempt_at = :lease_until, attempts = attempts + 1, updated_at = :now
WHERE id IN (
    SELECT id FROM deliveries
    WHERE state = 'pending' AND next_attempt_at <= :now
    ORDER BY next_attempt_at, id
    LIMIT :limit
)
RETURNING id, result_id, route, target, target_display, attempts, lease
"""
# Only the holder of the lease may record an outcome: a redelivery or an expired lease wins.
FINISH_DELIVERY: Final = """
UPDATE deliveries
SET state = ?, last_error = ?, next_attempt_at = ?, lease = NULL, updated_at = ?,
    sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
WHERE id = ? AND lease = ? AND state = 'pending'
"""
REDELIVER: Final = """
UPDATE deliveries
SET state = 'pending', attempts = 0, next_attempt_at = ?, lease = NULL, updated_at = ?
WHERE id = ?
"""
NEXT_DUE: Final = "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'"
DELIVERY_COLUMNS: Final = (
    "id, result_id, route, target_display AS target, state, attempts, last_error, "
    "next_attempt_at, sent_at, created_at, updated_at"
)
SELECT_RESULT_DELIVERIES: Final = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE result_id = ? ORDER BY id"
)
COUNT_DELIVERIES: Final = "SELECT state, count(*) FROM deliveries GROUP BY state"
SELECT_GROUP_STATUS: Final = "SELECT status FROM route_groups WHERE route = ? AND group_key = ?"
UPSERT_GROUP_STATUS: Final = """
INSERT INTO route_groups (route, group_key, status, result_id, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (route, group_key) DO UPDATE SET
    status = excluded.status, result_id = excluded.result_id, updated_at = excluded.updated_at
"""


def insert_deliveries(db: Database, deliveries: list[NewDelivery]) -> None:
    """Queue deliveries in one INSERT (a result has at most one per target: a repeat is
    ignored)."""
    if not deliveries:
        return
    now = utcnow()
    rows = [(d.result_id, d.route, d.target, d.target_display, now, now, now) for d in deliveries]
    db.conn.executemany(INSERT_DELIVERY, rows)


def swap_group_status(
    db: Database, *, route: str, group_key: str, status: str, result_id: int
) -> str | None:
    """Record ``status`` as the group's latest and return the one it replaces (None: first)."""
    row = db.execute(SELECT_GROUP_STATUS, [route, group_key]).fetchone()
    db.execute(UPSERT_GROUP_STATUS, [route, group_key, status, result_id, utcnow()])
    return row[0] if row else None


def claim_deliveries(
    db: Database, *, limit: int, lease: str, lease_seconds: float
) -> list[ClaimedDelivery]:
    """Take up to ``limit`` due deliveries for ``lease_seconds``; attempts count at the claim."""
    params = {"lease": lease, "lease_until": utc_after(lease_seconds), "now": utcnow()}
    cursor = db.execute(CLAIM_DELIVERIES, {**params, "limit": limit})
    names = [d[0] for d in cursor.description]
    claimed = [
        msgspec.convert(dict(zip(names, row, strict=True)), ClaimedDelivery) for row in cursor
    ]
    return sorted(claimed, key=lambda c: c.id)


def finish_delivery(db: Database, outcome: DeliveryOutcome) -> bool:
    """Record an attempt's outcome; False when the lease was lost (the row was not changed)."""
    now = utcnow()
    cursor = db.execute(
        FINISH_DELIVERY,
        [
            outcome.state,
            outcome.last_error,
            outcome.next_attempt_at,
            now,
            outcome.state,
            now,
            outcome.id,
            outcome.lease,
        ],
    )
    return cursor.rowcount == 1


def next_due(db: Database) -> str | None:
    """When the earliest pending delivery is due (or its lease expires); None when none wait."""
    row = db.execute(NEXT_DUE).fetchone()
    return row[0] if row else None


def redeliver(db: Database, delivery_id: int) -> DeliveryView:
    """Back to ``pending``, due now, with a fresh attempt budget."""
    now = utcnow()
    cursor = db.execute(REDELIVER, [now, now, delivery_id])
    if cursor.rowcount == 0:
        raise NotFound(f"No delivery {delivery_id}: `receiver deliveries` lists them")
    return get_delivery(db, delivery_id)


def get_delivery(db: Database, delivery_id: int) -> DeliveryView:
    rows = list(db.query(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", [delivery_id]))
    if not rows:
        raise NotFound(f"No delivery {delivery_id}: `receiver deliveries` lists them")
    return msgspec.convert(rows[0], DeliveryView)


def list_deliveries(db: Database, where: DeliveryFilter) -> DeliveryPage:
    """Newest first; ``before`` is the cursor (the last id of the previous page)."""
    clauses: list[str] = []
    params: list[Any] = []
    if where.state:
        clauses.append("state = ?")
        params.append(where.state)
    if where.failed:
        clauses.append("(state = 'dead' OR (state = 'pending' AND last_error IS NOT NULL))")
    rows, next_cursor = _newest_first(
        db, f"SELECT {DELIVERY_COLUMNS} FROM deliveries", clauses, params, where.limit, where.before
    )
    items = [msgspec.convert(row, DeliveryView) for row in rows]
    return DeliveryPage(items=items, next_cursor=next_cursor)


def deliveries_of(db: Database, result_id: int) -> list[DeliveryView]:
    return [
        msgspec.convert(row, DeliveryView)
        for row in db.query(SELECT_RESULT_DELIVERIES, [result_id])
    ]


def count_deliveries(db: Database) -> dict[str, int]:
    return {row[0]: row[1] for row in db.execute(COUNT_DELIVERIES).fetchall()}
