"""Group commit: callbacks that arrive together share one transaction and one fsync, and still
dedupe inside the batch, fail alone, and are answered only once durable (across a SIGKILL)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlite_utils import Database

from receiver.callbacks import Accepted, CallbackIntake, Kept, PayloadRejected, Received
from receiver.process import ServiceProcess
from receiver.store import CallbackRecord, NewJob, Store, StoreError, insert_callback, insert_job
from tests.conftest import SECRET, callback_body, signed


def body_for(n: int) -> bytes:
    return callback_body(job_id=f"group-{n}")


def stored(db_path: str | Path) -> list[str]:
    """Digests of every stored callback, one per row."""
    conn = sqlite3.connect(db_path)
    try:
        return [row[0] for row in conn.execute("SELECT digest FROM callbacks")]
    finally:
        conn.close()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def take_all(store: Store, bodies: list[bytes]) -> list[Accepted]:
    """All at once on one event loop, so they queue up for the same batch."""
    return await take_with(CallbackIntake(store, (SECRET,)), bodies)


async def take_with(intake: CallbackIntake, bodies: list[bytes]) -> list[Accepted]:
    return await asyncio.gather(*(take_one(intake, b) for b in bodies))


async def take_one(intake: CallbackIntake, body: bytes) -> Accepted:
    return await intake.take(
        job_key=None, headers=_lower(signed(body)), body=body, received_at="now"
    )


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# ---------------------------------------------------------------------------------------------
# The store and the intake, in process


def test_duplicates_inside_one_batch_are_stored_once_and_all_answered(tmp_path: Path) -> None:
    a, b, c = body_for(1), body_for(2), body_for(3)
    with Store(str(tmp_path / "r.db")) as store:
        answers = asyncio.run(take_all(store, [a, a, b, c, b, a]))
        assert (store.batches, store.batched_writes) == (1, 6), "not one shared transaction"
    by_body: dict[bytes, list[Accepted]] = {}
    for body, answer in zip([a, a, b, c, b, a], answers, strict=True):
        by_body.setdefault(body, []).append(answer)
    for body, group in by_body.items():
        assert [x.duplicate for x in group] == [False] + [True] * (len(group) - 1), body
        assert len({x.callback_id for x in group}) == 1
        assert len({x.result_id for x in group}) == 1
    assert sorted(stored(tmp_path / "r.db")) == sorted(digest(x) for x in (a, b, c))


class CountingIntake(CallbackIntake):
    """The real intake, noting how many callbacks each call of its batch path wrote."""

    def __init__(self, store: Store, hooked: list[tuple[int, str]]) -> None:
        super().__init__(
            store,
            (SECRET,),
            on_results=lambda db, stored: hooked.extend((rid, r.status) for rid, r in stored),
        )
        self.written_together: list[int] = []

    def write_many(self, db: Database, items: list[Received]) -> list[Kept] | None:
        kept = super().write_many(db, items)
        self.written_together.append(0 if kept is None else len(kept))
        return kept


def rows_but_times(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables a callback writes, without the columns stamped with the clock."""
    conn = sqlite3.connect(db_path)
    try:
        tables: dict[str, list[tuple[object, ...]]] = {}
        for table in ("jobs", "callbacks", "results", "tests"):
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY id")
            names = [column[0] for column in cursor.description]
            kept = [i for i, name in enumerate(names) if name not in ("created_at", "updated_at")]
            tables[table] = [tuple(row[i] for i in kept) for row in cursor]
        return tables
    finally:
        conn.close()


def test_new_callbacks_sharing_a_batch_are_written_together_as_one_at_a_time(
    tmp_path: Path,
) -> None:
    """The batch path (one INSERT per table) writes the rows, ids and outcomes the one-at-a-time
    path does, and calls the result hook (routing) the same way."""
    bodies = [body_for(n) for n in range(5)] + [callback_body(workflow_summary="no job id")]
    written: dict[str, dict[str, list[tuple[object, ...]]]] = {}
    answered: dict[str, list[Accepted]] = {}
    hooked: dict[str, list[tuple[int, str]]] = {"together": [], "alone": []}
    for way in ("together", "alone"):
        with Store(str(tmp_path / f"{way}.db")) as store:
            intake = CountingIntake(store, hooked[way])

            async def one_by_one(intake: CallbackIntake = intake) -> list[Accepted]:
                return [await take_one(intake, body) for body in bodies]

            runs = take_with(intake, bodies) if way == "together" else one_by_one()
            answered[way] = asyncio.run(runs)
            assert intake.written_together == ([6] if way == "together" else [])
        written[way] = rows_but_times(tmp_path / f"{way}.db")
    assert answered["together"] == answered["alone"]
    assert written["together"] == written["alone"]
    assert [len(rows) for rows in written["together"].values()] == [6, 6, 6, 6]
    assert hooked["together"] == hooked["alone"] == [(n, "passed") for n in range(1, 7)]


def test_a_batch_holding_a_repeat_or_a_known_job_is_written_one_at_a_time(
    tmp_path: Path,
) -> None:
    first = body_for(1)
    same_job = callback_body(job_id="group-1", workflow_summary="a second event of that job")
    with Store(str(tmp_path / "r.db")) as store:
        intake = CountingIntake(store, [])

        async def first_then_three() -> list[Accepted]:
            await take_one(intake, first)
            return await take_with(intake, [first, same_job, body_for(2)])

        repeat, update, new = asyncio.run(first_then_three())
        assert intake.written_together == [0], "the batch path must decline this batch"
    assert (repeat.duplicate, update.duplicate, new.duplicate) == (True, False, False)
    assert update.job_id == repeat.job_id, "the second event belongs to the job the first made"
    assert new.job_id not in (repeat.job_id, None)
    assert len(stored(tmp_path / "r.db")) == 3


def links(db_path: Path) -> list[tuple[int, int, int, int, int, str]]:
    """(result, its callback_id, its job_id, that callback's result_id, that job's result_id,
    the job's state) for every result."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            "SELECT r.id, r.callback_id, r.job_id, c.result_id, j.result_id, j.state "
            "FROM results r JOIN callbacks c ON c.id = r.callback_id "
            "JOIN jobs j ON j.id = r.job_id ORDER BY r.id"
        ).fetchall()
    finally:
        conn.close()


def test_each_result_its_callback_and_its_job_point_at_each_other(tmp_path: Path) -> None:
    """Result ids are reserved before the callback and job rows are written: in one batch,
    for new jobs and for a job made before (by key), and when the batch runs again."""
    db_path = tmp_path / "r.db"
    bodies = [body_for(n) for n in range(6)]
    with Store(str(db_path)) as store:
        keyed = store.write_sync(
            lambda db: insert_job(db, NewJob(provider="qualitymax", state="submitted", job_key="k"))
        )

        async def batch() -> list[Accepted]:
            intake = CallbackIntake(store, (SECRET,))
            # A callback without a result first: callback and result ids differ from here on.
            with pytest.raises(PayloadRejected):
                await intake.take(
                    job_key=None, headers=_lower(signed(b"{")), body=b"{", received_at="t"
                )
            failing = store.write(lambda db: 1 // 0)  # the batch runs again, with savepoints
            keyed_take = intake.take(
                job_key="k", headers=_lower(signed(bodies[0])), body=bodies[0], received_at="t"
            )
            rest = (
                intake.take(job_key=None, headers=_lower(signed(b)), body=b, received_at="t")
                for b in bodies[1:]
            )
            answers = await asyncio.gather(keyed_take, *rest, failing, return_exceptions=True)
            assert isinstance(answers[-1], ZeroDivisionError)
            return [a for a in answers[:-1] if isinstance(a, Accepted)]

        answers = asyncio.run(batch())
        # the job, the rejected callback, then one batch (run twice, counted once)
        assert (store.batches, store.batched_writes) == (3, 9)
    rows = links(db_path)
    assert [a.result_id for a in answers] == [row[0] for row in rows] == [1, 2, 3, 4, 5, 6]
    for answer, (result_id, callback_id, job_id, cb_result, job_result, state) in zip(
        answers, rows, strict=True
    ):
        assert (callback_id, job_id) == (answer.callback_id, answer.job_id)
        assert cb_result == job_result == result_id
        assert state == answer.status == "passed"  # also on the keyed job, made "submitted"
    assert answers[0].job_id == keyed


def test_a_failing_write_fails_alone_in_its_batch(tmp_path: Path) -> None:
    def insert(value: str) -> Callable[[Database], str]:
        def fn(db: Database) -> str:
            insert_job(db, NewJob(provider="qualitymax", state=value))
            if value == "bad":
                raise ValueError("refused by the caller")
            return value

        return fn

    async def run(store: Store) -> list[str | BaseException]:
        writes = [store.write(insert(v)) for v in ("one", "bad", "two")]
        return await asyncio.gather(*writes, return_exceptions=True)

    with Store(str(tmp_path / "r.db")) as store:
        one, bad, two = asyncio.run(run(store))
        assert store.batches == 1
        states = store.read(lambda db: [row["state"] for row in db.table("jobs").rows])
    assert (one, two) == ("one", "two")
    assert isinstance(bad, ValueError)
    assert sorted(states) == ["one", "two"], "the failed write's row must be rolled back alone"


def test_no_write_is_answered_as_done_when_its_commit_fails(tmp_path: Path) -> None:
    """The answer comes from the COMMIT: here the commit itself fails (a deferred foreign key)."""

    def dangling_test_row(db: Database) -> str:
        db.execute("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT, not at INSERT
        db.execute(
            "INSERT INTO tests (result_id, position, name, status) VALUES (424242, 0, 'x', 'y')"
        )
        return "inserted"

    async def run(store: Store) -> list[object]:
        writes = [store.write(insert_ok), store.write(dangling_test_row), store.write(insert_ok)]
        return await asyncio.gather(*writes, return_exceptions=True)

    def insert_ok(db: Database) -> int:
        return insert_job(db, NewJob(provider="qualitymax", state="queued"))

    with Store(str(tmp_path / "r.db")) as store:
        answers = asyncio.run(run(store))
        jobs = store.read(lambda db: db.table("jobs").count)
    assert all(isinstance(a, StoreError) for a in answers), answers
    assert jobs == 0


def test_a_lone_write_commits_without_waiting_for_company(tmp_path: Path) -> None:
    async def one_by_one(store: Store) -> None:
        await take_all(store, [body_for(1)])
        await take_all(store, [body_for(2)])
        await take_all(store, [body_for(3)])

    with Store(str(tmp_path / "r.db")) as store:
        asyncio.run(one_by_one(store))
        assert (store.batches, store.batched_writes) == (3, 3)


def test_blocking_writers_and_the_event_loop_share_the_connection_safely(
    tmp_path: Path,
) -> None:
    """write_sync from threads (the CLI, workers) interleaves with the loop's batches."""
    bodies = [body_for(n) for n in range(300)]
    intake_bodies, thread_bodies = bodies[::2], bodies[1::2]

    def from_thread(store: Store, body: bytes) -> int:
        record = CallbackRecord(
            provider="qualitymax",
            job_key=None,
            digest=digest(body),
            body=body,
            headers={},
            received_at="now",
        )
        return store.write_sync(
            lambda db: insert_callback(db, record, job_id=None, outcome="accepted", error=None)
        )

    with Store(str(tmp_path / "r.db")) as store, ThreadPoolExecutor(4) as pool:
        threads = [pool.submit(from_thread, store, b) for b in thread_bodies]
        answers = asyncio.run(take_all(store, intake_bodies))
        for future in threads:
            future.result()
    assert not any(a.duplicate for a in answers)
    assert sorted(stored(tmp_path / "r.db")) == sorted(digest(b) for b in bodies)


def test_a_second_event_loop_writes_through_the_writer_thread(tmp_path: Path) -> None:
    """Batches belong to the first loop that wrote; another loop's writes still commit."""
    with Store(str(tmp_path / "r.db")) as store:
        first = asyncio.run(take_all(store, [body_for(1), body_for(2)]))
        with ThreadPoolExecutor(1) as other:  # a new thread, a new loop
            second = other.submit(asyncio.run, take_all(store, [body_for(3), body_for(2)]))
            answers = second.result(timeout=30)
    assert [a.duplicate for a in first] == [False, False]
    assert [a.duplicate for a in answers] == [False, True]
    assert len(stored(tmp_path / "r.db")) == 3


def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "r.db")).open()
    store.close()
    with pytest.raises(StoreError, match="not open"):
        asyncio.run(store.write(lambda db: 1))


# ---------------------------------------------------------------------------------------------
# The real service


def post_all(url: str, bodies: list[bytes], workers: int = 16) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=workers)
    with httpx.Client(base_url=url, timeout=10, limits=limits) as client:

        def post(body: bytes) -> httpx.Response:
            return client.post("/callbacks/qualitymax", content=body, headers=signed(body))

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(post, bodies))


def test_the_service_dedupes_concurrent_repeats(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    a, b = body_for(1), body_for(2)
    bodies = [a] * 8 + [b] * 8
    responses = post_all(service.url, bodies)
    assert [r.status_code for r in responses] == [200] * 16
    for body in (a, b):
        answers = [r.json() for r, x in zip(responses, bodies, strict=True) if x == body]
        assert sorted(x["duplicate"] for x in answers) == [False] + [True] * 7
        assert len({x["callback_id"] for x in answers}) == 1
    assert sorted(stored(env["RECEIVER_DB"])) == sorted([digest(a), digest(b)])


def worker_pids(pid: int) -> list[int]:
    """The children of ``receiver serve`` (granian serves from a worker process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


KILL_AFTER = 1500


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
def test_sigkill_under_load_loses_no_answered_callback_and_stores_none_twice(
    tmp_path: Path, write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    config = write_config("")
    service = ServiceProcess(config, env, tmp_path / "serve.log").start()
    assert service.proc is not None
    workers = worker_pids(service.proc.pid)
    bodies = [body_for(n) for n in range(6_000)]
    answered: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(share: list[bytes]) -> None:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            for body in share:
                if stop.is_set():
                    return
                try:
                    response = client.post(
                        "/callbacks/qualitymax", content=body, headers=signed(body)
                    )
                except httpx.TransportError:
                    return  # the service died with this one in flight: never answered
                assert response.status_code == 200, response.text
                with lock:
                    answered.append(body)
                    if len(answered) == KILL_AFTER:  # at once, while other batches commit
                        for pid in workers:  # the process holding the database, as an OOM kill
                            os.kill(pid, signal.SIGKILL)
                        stop.set()

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(send, bodies[i::16]) for i in range(16)]
        for future in futures:
            future.result()
    service.kill()
    assert KILL_AFTER <= len(answered) < len(bodies), "the kill did not land mid-load"

    digests = stored(env["RECEIVER_DB"])
    assert len(digests) == len(set(digests)), "a callback was stored twice"
    assert {digest(b) for b in answered} <= set(digests), "an answered callback was lost"

    again = ServiceProcess(config, env, tmp_path / "serve-again.log").start()
    try:
        responses = post_all(again.url, answered[:500])
    finally:
        again.stop()
    assert all(r.status_code == 200 and r.json()["duplicate"] for r in responses)
    assert sorted(stored(env["RECEIVER_DB"])) == sorted(digests), "a resend was stored again"
