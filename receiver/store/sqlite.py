"""The SQLite backend: one write connection with group commit, a read connection per thread.

One connection writes (as datasette's ``database.py`` has it). On the event loop, writes that
arrive together run in one ``BEGIN IMMEDIATE`` transaction and share one COMMIT, so a burst of
callbacks costs one fsync (group commit); a lone write commits at once. The writes' SQL runs on
the loop's thread and only the COMMIT (the fsync, which releases the GIL) on a committer thread,
while the loop serves the requests that form the next batch: measured in docs/performance.md.
Blocking callers (the CLI, tests) write through ``write_sync``, which takes the same connection
between batches.

If one write of a batch raises, the batch is rolled back and run again with a savepoint per
write, so one caller's failure undoes nobody else's: a write function may therefore run twice,
and must change nothing but the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from receiver import tests_identity
from receiver.clock import utcnow
from receiver.store.errors import NoDatabase, NotWritable, StoreError
from receiver.store.migrate import migrate
from receiver.store.tx import SQLITE, Tx

T = TypeVar("T")

MAX_BATCH: Final = 512
# The 4th write of a batch and later ones waited for the store: counted as queued (see
# ``queued_writes``), which tells the delivery worker that the store is near its limit.
QUEUED_POSITION: Final = 4
# How long the loop waits for the committer thread to pick up a COMMIT (it takes ~60 µs); only a
# starved machine reaches it, and then the loop simply goes on.
COMMIT_START_WAIT: Final = 0.05
# SQLite's errors that say the file cannot be written, as opposed to a bug in one write.
UNWRITABLE: Final = ("readonly", "read-only", "disk is full", "disk i/o error", "unable to open")
# Pages of the page cache (x 4 KiB): the callbacks' digest index must stay in memory at a few
# hundred thousand callbacks; at 300,000 it is 3,353 pages (13.1 MiB). Served on a copy of one
# 300,000-callback database, 6 alternating rounds, bytes read per callback: SQLite's default
# (2 MiB) 12.5 KiB, 2048 pages 10.6, 4096 9.2, 8192 8.3; RSS 117, 123, 132, 150 MB (the cache
# fills with written pages too); req/s and p99 within the noise. 4096: the smallest that holds
# the index at 300,000 callbacks (docs/performance.md).
CACHE_PAGES: Final = 4096


class SqliteConnection(sqlite3.Connection):
    """A sqlite3 connection that is a ``Tx``: the query modules' handle on SQLite.

    While a batch runs bare (``_Batcher``), ``later`` keeps its rows in a ``_Later`` and
    ``next_id`` counts on from one read per table, so that a batch of callbacks costs one
    statement per table; every other statement first writes what was kept if it names a kept
    table or one a foreign key links with it (read-your-writes and foreign keys hold as before).
    Should a kept row fail when written, the batch runs again without keeping (``_run_batch``);
    the error may surface in another write's statement, so a write function lets store errors
    through (none catches them).
    """

    dialect = SQLITE
    _later: _Later | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self._later is not None:
            self._later.before(self, sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        if self._later is not None:
            self._later.before(self, sql)
        return super().executemany(sql, parameters)

    def at_commit(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.later(sql, rows)  # one writer: no other waits for its row locks

    def later(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self._later is None:
            self.executemany(sql, rows)
        else:
            self._later.keep(sql, rows)

    def next_id(self, table: str) -> int:
        # The writer holds the write lock until its COMMIT: max(id) + 1 is the id SQLite gives
        # the next row, and within a bare batch it is counted on from the first read.
        if self._later is not None:
            return self._later.next_id(self, table)
        return int(self.execute(NEXT_ID.format(table=table)).fetchone()[0])

    def run_later(self) -> None:
        """From here on every statement runs at once (what was kept, first)."""
        later, self._later = self._later, None
        if later is not None:
            later.flush(self)


NEXT_ID: Final = "SELECT coalesce(max(id), 0) + 1 FROM {table}"
_WORDS: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INSERT_INTO: Final = re.compile(r"\s*INSERT\s+INTO\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def _names(sql: str) -> frozenset[str]:
    """The words of a statement, tables among them (a false match only writes kept rows
    sooner)."""
    return frozenset(_WORDS.findall(sql))


@functools.lru_cache(maxsize=256)
def _table_of(sql: str) -> str:
    found = _INSERT_INTO.match(sql)
    if found is None:
        raise ValueError(f"later() takes an INSERT INTO statement, not {sql[:40]!r}")
    return found.group(1)


class _Later:
    """One bare batch's kept INSERTs (by statement, in first-use order: a result's row is kept
    before its tests') and its counted ids.

    A counted table (``next_id``) gives each kept row's id first, so the count follows the
    rows kept; any other statement naming it drops the count (read again when next asked).
    """

    def __init__(self, linked: dict[str, frozenset[str]]) -> None:
        self.rows: dict[str, list[Sequence[Any]]] = {}
        self.tables: set[str] = set()
        self.ids: dict[str, int] = {}
        self.linked = linked  # table -> the tables a foreign key links it with, either way
        self.watched: frozenset[str] = frozenset()

    def keep(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        table = _table_of(sql)
        listed = self.rows.setdefault(sql, [])
        if table not in self.tables:
            self.tables.add(table)
            self._watch()
        start = len(listed)
        listed.extend(rows)
        if table in self.ids:
            self.ids[table] = max([self.ids[table], *(int(row[0]) + 1 for row in listed[start:])])

    def next_id(self, conn: SqliteConnection, table: str) -> int:
        if table not in self.ids:
            self.before(conn, table)  # kept rows of the table count in max(id)
            self.ids[table] = int(
                sqlite3.Connection.execute(conn, NEXT_ID.format(table=table)).fetchone()[0]
            )
            self._watch()
        return self.ids[table]

    def before(self, conn: SqliteConnection, sql: str) -> None:
        named = self.watched.intersection(_names(sql))
        if not named:
            return
        if not named.isdisjoint(self.ids):
            for table in named:
                self.ids.pop(table, None)
        if self.tables:
            self.flush(conn)
        self._watch()

    def flush(self, conn: SqliteConnection) -> None:
        rows, self.rows = self.rows, {}
        self.tables.clear()
        held, conn._later = conn._later, None  # these statements are the kept rows themselves
        try:
            for sql, kept in rows.items():
                conn.executemany(sql, kept)
        finally:
            conn._later = held

    def _watch(self) -> None:
        watched = set(self.ids) | self.tables
        for table in self.tables:
            watched |= self.linked.get(table, frozenset())
        self.watched = frozenset(watched)


def connect(path: str, *, readonly: bool = False) -> SqliteConnection:
    # isolation_level=None: the writer issues BEGIN IMMEDIATE / COMMIT itself.
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=10,
        factory=SqliteConnection,
    )
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute(f"PRAGMA cache_size = {CACHE_PAGES}")
    if sqlite3.sqlite_version_info < (3, 41):  # unhex() arrived in 3.41; migration 0002 uses it
        conn.create_function("unhex", 1, _unhex, deterministic=True)
    # Migration 0006 gives tests stored before 0005 their identity.
    conn.create_function("receiver_test_id", 4, _test_id, deterministic=True)
    conn.create_function("receiver_test_scope", 2, _test_scope, deterministic=True)
    if readonly:
        conn.execute("PRAGMA query_only = ON")
        return conn
    # Free pages go back to the file system in small steps after a purge. Only a new file takes
    # this setting; a file made before it keeps its size and reuses its free pages.
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: an acknowledged callback survives power loss, not only a process crash.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # A failing batch's rerun uses savepoints: their journals stay in memory.
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def _unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _test_scope(repository: str | None, custom_data: str | None) -> str:
    return tests_identity.scope(repository, msgspec.json.decode(custom_data or "{}"))


def _test_id(provider: str, repository: str | None, custom_data: str | None, name: str) -> str:
    return tests_identity.test_id(provider, _test_scope(repository, custom_data), name)


class _Write(msgspec.Struct):
    fn: Callable[[Tx], Any]
    done: Callable[[Any, BaseException | None], None]


_Outcome = tuple[_Write, Any, BaseException | None]


class SqliteStore:
    """Owns one database file: the write connection, per-thread readers, migrations at open."""

    dialect = SQLITE

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: SqliteConnection | None = None
        # Held from BEGIN to the end of COMMIT, by the loop's batch or a blocking writer.
        self._conn_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[SqliteConnection] = []
        self._readers_lock = threading.Lock()
        self._batcher: _Batcher | None = None
        self._links: dict[str, frozenset[str]] | None = None
        self.batches = 0
        self.batched_writes = 0
        self.queued_writes = 0
        self.reruns = 0  # batches run again with a savepoint per write, after one raised
        # Why the last write failed because the file cannot be written; None after a commit.
        self.write_failure: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, *, create: bool = True) -> SqliteStore:
        """Open (``create``: and make, with its folder) the database and migrate it; raise
        StoreError saying what is wrong, NotWritable when it refuses writes."""
        if self._conn is not None:
            return self
        if not create and not Path(self.path).is_file():
            raise NoDatabase(
                f"No database at {self.path}: pass --config or set RECEIVER_DB to the service's "
                "database (it is created by receiver serve)"
            )
        if create:
            self._make_folder()
        try:
            conn = connect(self.path)
            migrate(
                conn,
                begin=_statement(conn, "BEGIN IMMEDIATE"),
                commit=_statement(conn, "COMMIT"),
                rollback=_statement(conn, "ROLLBACK"),
            )
        except sqlite3.Error as exc:
            raise _open_error(self.path, exc) from None
        self._conn = conn
        return self

    def _make_folder(self) -> None:
        if self.path == ":memory:":
            return
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder of {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        """Close every connection. Call it from the event loop's thread (the lifespan does) or
        with no write in flight: writes still queued fail with StoreError."""
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

    def __enter__(self) -> SqliteStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a shared transaction; return once the commit holding it is durable.

        ``fn`` may run twice (see the module's docstring): it must change nothing but the
        database. What must happen after the commit (waking the delivery worker) is the
        caller's, once this returns.
        """
        conn = self._require_open()
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.loop.is_closed():
            self._batcher = _Batcher(self, conn, loop)
        if self._batcher.loop is not loop:  # a second live event loop: no batching for it
            return await asyncio.to_thread(self.write_sync, fn)
        future: asyncio.Future[T] = loop.create_future()
        self._batcher.submit(_Write(fn, lambda value, error: _settle(future, value, error)))
        return await future

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """The blocking form of ``write``, for the CLI and threads: its own transaction."""
        conn = self._require_open()
        with self._conn_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    value = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failure(conn, exc) from exc
        if fn is not _touch_health:
            self.write_failure = None
        return value

    def _require_open(self) -> SqliteConnection:
        if self._conn is None:
            raise StoreError("The store is not open")
        return self._conn

    def _run_batch(self, conn: SqliteConnection, batch: list[_Write]) -> list[_Outcome]:
        """BEGIN IMMEDIATE, then every write; the transaction stays open for the COMMIT.

        The writes run bare first (a savepoint journals every page it touches); if one raises,
        the batch runs again with a savepoint per write.
        """
        conn.execute("BEGIN IMMEDIATE")
        conn._later = _Later(self._linked(conn))
        try:
            outcomes: list[_Outcome] = [(write, write.fn(conn), None) for write in batch]
            conn.run_later()  # the batch's kept rows: one statement per table
            return outcomes
        except Exception:
            conn.execute("ROLLBACK")  # names no table: nothing kept is written first
        finally:
            conn._later = None
        self.reruns += 1
        conn.execute("BEGIN IMMEDIATE")
        return [_run_in_savepoint(conn, write) for write in batch]

    def _linked(self, conn: SqliteConnection) -> dict[str, frozenset[str]]:
        """Each table and the tables a foreign key links it with, either way: a statement on
        one is checked against the other's rows (read once: the schema is the migrations')."""
        if self._links is None:
            found: dict[str, set[str]] = {}
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for (table,) in tables.fetchall():
                for key in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", [table]):
                    found.setdefault(key[2], set()).add(table)
                    found.setdefault(table, set()).add(key[2])
            self._links = {table: frozenset(others) for table, others in found.items()}
        return self._links

    def _end_batch(
        self, conn: SqliteConnection, batch: list[_Write], outcomes: list[_Outcome]
    ) -> list[_Outcome]:
        """COMMIT: the one fsync of the batch. Nothing is answered before it returns."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            return self._failed(conn, batch, exc)
        self.batches += 1
        self.batched_writes += len(batch)
        self.queued_writes += max(0, len(batch) - QUEUED_POSITION + 1)
        if any(write.fn is not _touch_health for write in batch):
            self.write_failure = None
        return outcomes

    def _failed(
        self, conn: SqliteConnection, batch: list[_Write], exc: sqlite3.Error
    ) -> list[_Outcome]:
        failure = self._failure(conn, exc)
        return [(write, None, failure) for write in batch]

    def _failure(self, conn: SqliteConnection, exc: sqlite3.Error) -> StoreError:
        """Roll back, remember a failure of the file itself (for /health), say what failed."""
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        reason = f"Write to {self.path} failed: {exc}"
        if any(word in str(exc).lower() for word in UNWRITABLE):
            self.write_failure = reason
            return NotWritable(reason)
        return StoreError(reason)

    # -- reads -------------------------------------------------------------------------------

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` on this thread's read connection (WAL: readers never wait for the writer)."""
        return fn(self._reader())

    def _reader(self) -> SqliteConnection:
        conn: SqliteConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            self._require_open()
            conn = self._local.conn = connect(self.path, readonly=True)
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # -- health ------------------------------------------------------------------------------

    async def probe(self) -> str | None:
        """None when the store answers and takes a write; else why not, in one sentence.

        A write of the service's own that failed because the file cannot be written is
        reported until one of its writes commits again: the probe's own tiny write can still
        fit on a disk too full for a callback.
        """
        if self._conn is None:
            return "The store is not open"
        try:
            await self.write(_touch_health)
        except StoreError as exc:
            return str(exc)
        return self.write_failure

    def check_writable(self) -> None:
        """Raise NotWritable unless a write commits (start-up: a read-only file opens quietly)."""
        self.write_sync(_touch_health)

    def listen(self, channel: str, callback: Callable[[str], None]) -> bool:
        return False  # one process writes: its own hooks already say what it committed


def _touch_health(tx: Tx) -> None:
    tx.execute("UPDATE _health SET checked_at = ? WHERE id = 1", [utcnow()])


class _Batcher:
    """Group commit on one event loop: batches run there, their COMMITs on the committer."""

    def __init__(self, store: SqliteStore, conn: SqliteConnection, loop: Any) -> None:
        self.store = store
        self.conn = conn
        self.loop: asyncio.AbstractEventLoop = loop
        self._pending: deque[_Write] = deque()
        self._wakeup = asyncio.Event()
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
                # The committed batch's requests answer before the next batch's SQL runs.
                await asyncio.sleep(0)

    async def _commit(self, batch: list[_Write]) -> None:
        lock = self.store._conn_lock
        if not lock.acquire(blocking=False):  # a blocking writer holds it
            await self.loop.run_in_executor(None, lock.acquire)
        try:
            outcomes = self.store._run_batch(self.conn, batch)
        except sqlite3.Error as exc:
            outcomes = self.store._failed(self.conn, batch, exc)
            lock.release()
        else:
            outcomes = await self._hand_over(batch, outcomes)
        for write, value, error in outcomes:
            write.done(value, error)

    async def _hand_over(self, batch: list[_Write], outcomes: list[_Outcome]) -> list[_Outcome]:
        """The COMMIT on the committer thread; the loop goes on once that thread is in it
        (otherwise the committer waits for the GIL until the loop runs out of work)."""
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
            except BaseException as exc:  # pragma: no cover - _end_batch handles sqlite errors
                value, error = None, exc
            # RuntimeError: the loop has closed, and nobody waits for this commit any more.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(_settle, job.committed, value, error)

    def _finish(self, batch: list[_Write], outcomes: list[_Outcome]) -> list[_Outcome]:
        try:
            return self.store._end_batch(self.conn, batch, outcomes)
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


def _run_in_savepoint(conn: SqliteConnection, write: _Write) -> _Outcome:
    """One caller's failure must not undo the others sharing the transaction."""
    conn.execute("SAVEPOINT write")
    try:
        value = write.fn(conn)
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


def _statement(conn: SqliteConnection, sql: str) -> Callable[[], None]:
    def run() -> None:
        conn.execute(sql)

    return run


def _open_error(path: str, exc: sqlite3.Error) -> StoreError:
    reason = f"Cannot open the database {path}: {exc}"
    if any(word in str(exc).lower() for word in UNWRITABLE):
        return NotWritable(reason + "; make the file and its folder writable by this user")
    return StoreError(reason)
