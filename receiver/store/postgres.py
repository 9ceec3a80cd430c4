"""The PostgreSQL backend: several receivers on one database.

Writes go through one writer thread per process, on a connection of its own: the functions
that arrive together run in one transaction and share one COMMIT (group commit, as on SQLite;
the event loop never waits on the network for them). If one raises, the batch runs again with a
savepoint per function, so one caller's failure undoes nobody else's; a batch that lost a
deadlock to another instance runs again whole. Reads take a connection from a pool.

What keeps the guarantees across instances lives in the query modules' PostgreSQL SQL: the
digest's unique constraint decides what is a repeat (``ON CONFLICT DO NOTHING``, which waits for
the other instance's transaction), deliveries and polled jobs are claimed ``FOR UPDATE SKIP
LOCKED`` with a lease, and ``NOTIFY`` (sent at COMMIT, so only for what committed) wakes the
workers and live pages of every instance (``listen``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

import msgspec
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from receiver import redact
from receiver.clock import utcnow
from receiver.logs import get_logger
from receiver.store.errors import NoDatabase, NotWritable, StoreError
from receiver.store.migrate import migrate
from receiver.store.tx import POSTGRESQL, Params

T = TypeVar("T")

log = get_logger("receiver.store")

MAX_BATCH: Final = 512
QUEUED_POSITION: Final = 4  # as on SQLite: see receiver.notify.pace
BATCH_RETRIES: Final = 3  # a batch that lost a deadlock or a serialisation conflict
MIGRATION_LOCK: Final = 7_251_960_000_001  # pg_advisory_lock: one instance migrates at a time
READ_POOL: Final = 8
CONNECT_TIMEOUT: Final = 10
LISTEN_WAIT: Final = 0.5  # seconds between looks for a channel newly asked for
# After the listening connection is lost (a restart of the server, a proxy's idle cut): the
# seconds before each try to connect again, the last repeating.
LISTEN_RETRY: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """The query modules write ``?``; psycopg wants ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


# A sequence hands out each id once, whoever asks.
NEXT_ID: Final = "SELECT nextval(pg_get_serial_sequence(?, 'id'))"


class PgTx:
    """A psycopg connection as a ``Tx``: the query modules' handle on PostgreSQL."""

    dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.late: list[tuple[str, Sequence[Any]]] = []

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self.conn.execute(_placeholders(sql), params or None)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        listed = list(rows)
        if len(listed) == 1:
            # psycopg runs executemany in a pipeline of its own, whose extra syncs cost one
            # row more than a plain execute: a callback's intake has three such (its day's
            # counts, its test, its test's identity); writer thread CPU -20 % a callback.
            self.execute(sql, listed[0])
            return
        with self.conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), listed)

    def at_commit(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.late.extend((sql, row) for row in rows)

    def later(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.executemany(sql, rows)  # a batch's writes are one transaction, not one statement

    def next_id(self, table: str) -> int:
        row = self.execute(NEXT_ID, [table]).fetchone()
        return int(row[0])

    def run_late(self) -> None:
        """What ``at_commit`` kept, now: each statement's rows in one pipeline, in an order
        every instance shares (two batches adding to the same rows take their locks in the
        same order, so neither waits for the other while holding what it needs)."""
        late, self.late = sorted(self.late, key=_lock_order), []
        for sql in dict.fromkeys(statement for statement, _ in late):
            self.executemany(sql, [row for statement, row in late if statement == sql])


class _Write(msgspec.Struct):
    fn: Callable[[PgTx], Any]
    done: Callable[[Any, BaseException | None], None]


_Outcome = tuple[_Write, Any, BaseException | None]


class PostgresStore:
    """One PostgreSQL database, shared with other instances."""

    dialect = POSTGRESQL

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = redact.url(url)  # how it is named in messages and logs
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._listeners: dict[str, list[Callable[[str], None]]] = {}
        self._listeners_lock = threading.Lock()
        self._listening: psycopg.Connection[Any] | None = None
        self._listen_thread: threading.Thread | None = None
        self._stop_listening = threading.Event()
        self.listen_losses = 0  # connections lost and made again (for the tests and logs)
        self.batches = 0
        self.batched_writes = 0
        self.queued_writes = 0
        self.write_failure: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, *, create: bool = True) -> PostgresStore:
        """Connect, migrate (one instance at a time), start the writer and the read pool."""
        if self._writer is not None:
            return self
        try:
            conn = self._connect()
        except psycopg.OperationalError as exc:
            if not create and "does not exist" in str(exc):
                raise NoDatabase(f"No database at {self.path}: {_first_line(exc)}") from None
            raise StoreError(f"Cannot open the database {self.path}: {_first_line(exc)}") from None
        self._migrate(conn)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._writer = threading.Thread(
            target=self._write_forever, args=(conn, ready), name="receiver-pg-writer", daemon=True
        )
        self._writer.start()
        ready.result()
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=READ_POOL,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            open=True,
        )
        return self

    def _connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT)

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        conn.autocommit = True
        tx = PgTx(conn)
        try:
            tx.execute("SELECT pg_advisory_lock(?)", [MIGRATION_LOCK])
            try:
                migrate(
                    tx,
                    begin=lambda: tx.execute("BEGIN") and None,
                    commit=lambda: tx.execute("COMMIT") and None,
                    rollback=lambda: tx.execute("ROLLBACK") and None,
                )
            finally:
                tx.execute("SELECT pg_advisory_unlock(?)", [MIGRATION_LOCK])
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"Cannot migrate the database {self.path}: {exc}") from None
        conn.autocommit = False

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._stop_listening.set()
        if self._listening is not None:
            with contextlib.suppress(psycopg.Error):
                self._listening.close()
        if self._listen_thread is not None:
            self._listen_thread.join(timeout=LISTEN_WAIT * 4)
            self._listen_thread = None
        self._listening = None

    def __enter__(self) -> PostgresStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------

    async def write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn`` in a shared transaction; return once the commit holding it is durable.
        ``fn`` may run twice (see the module's docstring)."""
        self._require_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def done(value: Any, error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, value, error)

        self._queue.put(_Write(fn, done))
        return await future

    def write_sync(self, fn: Callable[[Any], T]) -> T:
        self._require_open()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def done(value: Any, error: BaseException | None) -> None:
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

        self._queue.put(_Write(fn, done))
        return future.result()

    def _require_open(self) -> None:
        if self._writer is None:
            raise StoreError("The store is not open")

    def _write_forever(
        self, conn: psycopg.Connection[Any], ready: concurrent.futures.Future[None]
    ) -> None:
        ready.set_result(None)
        while (first := self._queue.get()) is not None:
            batch, stop = [first], False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            conn = self._commit(conn, batch)
            if stop:
                break
        conn.close()

    def _commit(
        self, conn: psycopg.Connection[Any], batch: list[_Write]
    ) -> psycopg.Connection[Any]:
        """Run the batch, answer each write; a broken connection is replaced for the next."""
        for attempt in range(BATCH_RETRIES):
            try:
                outcomes = self._run_batch(conn, batch)
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                if attempt + 1 < BATCH_RETRIES:
                    continue
                outcomes = self._failed(batch, "lost to another instance's transaction")
            except psycopg.Error as exc:
                outcomes = self._failed(batch, str(exc))
                if conn.closed or conn.broken:
                    conn = self._reconnect(conn)
            break
        for write, value, error in outcomes:
            write.done(value, error)
        return conn

    def _run_batch(self, conn: psycopg.Connection[Any], batch: list[_Write]) -> list[_Outcome]:
        tx = PgTx(conn)
        outcomes: list[_Outcome]
        try:
            with conn.transaction():
                outcomes = [(write, write.fn(tx), None) for write in batch]
                tx.run_late()
        except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
            raise
        except psycopg.OperationalError:
            raise
        except Exception:
            # Someone's function failed: again, each in a savepoint of its own.
            with conn.transaction():
                outcomes = [_in_savepoint(conn, tx, write) for write in batch]
        self.batches += 1
        self.batched_writes += len(batch)
        self.queued_writes += max(0, len(batch) - QUEUED_POSITION + 1)
        if any(write.fn is not _touch_health for write in batch):
            self.write_failure = None
        return outcomes

    def _failed(self, batch: list[_Write], reason: str) -> list[_Outcome]:
        message = f"Write to {self.path} failed: {_first_line(reason)}"
        failure: StoreError = StoreError(message)
        if any(word in reason.lower() for word in ("read-only", "disk full", "no space")):
            self.write_failure = message
            failure = NotWritable(message)
        return [(write, None, failure) for write in batch]

    def _reconnect(self, old: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        with contextlib.suppress(psycopg.Error):
            old.close()
        try:
            return self._connect()
        except psycopg.Error:
            return old  # the next batch fails and tries again

    # -- reads -------------------------------------------------------------------------------

    def read(self, fn: Callable[[Any], T]) -> T:
        if self._pool is None:
            raise StoreError("The store is not open")
        with self._pool.connection() as conn:
            return fn(PgTx(conn))

    # -- notifications -----------------------------------------------------------------------

    def listen(self, channel: str, callback: Callable[[str], None]) -> bool:
        """Call ``callback`` with the payload (on a thread of the store's) whenever any
        instance commits a notification on ``channel``."""
        with self._listeners_lock:
            self._listeners.setdefault(channel, []).append(callback)
            if self._listen_thread is None:
                self._listening = self._connect(autocommit=True)  # refused now: said now
                self._stop_listening.clear()
                self._listen_thread = threading.Thread(
                    target=self._listen_forever, name="receiver-pg-listen", daemon=True
                )
                self._listen_thread.start()
        return True

    def _listen_forever(self) -> None:
        """Hear notifications until the store closes; a lost connection is made again, after
        a wait that grows (notices sent meanwhile are missed: the delivery worker still looks
        at the outbox every few seconds, and a dashboard page shows them when reloaded)."""
        failures = 0
        while not self._stop_listening.is_set():
            try:
                conn = self._listening or self._connect(autocommit=True)
                self._listening = conn
                self._hear(conn)
            except psycopg.Error as exc:
                if self._stop_listening.is_set():
                    return
                wait = LISTEN_RETRY[min(failures, len(LISTEN_RETRY) - 1)]
                failures += 1
                self.listen_losses += 1
                log.warning("store.listen_lost", error=_first_line(exc), retry_in=wait)
                with contextlib.suppress(psycopg.Error):
                    if self._listening is not None:
                        self._listening.close()
                self._listening = None
                self._stop_listening.wait(wait)
            else:
                failures = 0

    def _hear(self, conn: psycopg.Connection[Any]) -> None:
        """LISTEN to every channel asked for (between waits: a wait holds the connection), and
        call each channel's callbacks with every notice's payload."""
        heard: set[str] = set()
        while not self._stop_listening.is_set():
            for channel in set(self._listeners) - heard:
                conn.execute(f"LISTEN {channel}")
                heard.add(channel)
            for notice in conn.notifies(timeout=LISTEN_WAIT):
                for callback in list(self._listeners.get(notice.channel, [])):
                    callback(notice.payload)

    # -- health ------------------------------------------------------------------------------

    async def probe(self) -> str | None:
        if self._writer is None:
            return "The store is not open"
        try:
            await self.write(_touch_health)
        except StoreError as exc:
            return str(exc)
        return self.write_failure

    def check_writable(self) -> None:
        self.write_sync(_touch_health)


def _touch_health(tx: PgTx) -> None:
    tx.execute("UPDATE _health SET checked_at = ? WHERE id = 1", [utcnow()])


def _in_savepoint(conn: psycopg.Connection[Any], tx: PgTx, write: _Write) -> _Outcome:
    tx.late.clear()  # what the batch's first try, or a failed write before this one, left
    try:
        with conn.transaction():
            value = write.fn(tx)
            tx.run_late()
        return write, value, None
    except Exception as exc:
        return write, None, exc


def _lock_order(late: tuple[str, Sequence[Any]]) -> tuple[str, list[str]]:
    sql, row = late
    return sql, [str(value) for value in row]


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


def _first_line(reason: object) -> str:
    return str(reason).strip().splitlines()[0] if str(reason).strip() else "unknown error"
