"""Two `receiver serve` processes on one PostgreSQL database, as two machines behind a load
balancer would run: callbacks sent to both in turn while one is SIGKILLed and restarted, and a
polled job whose polling instance dies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.process import ServiceProcess
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from receiver.store import open_store
from tests.conftest import TOKEN, callback_body, signed
from tests.sims import qualigate_sim
from tests.sinks import HttpSink

__all__ = ["qualigate_sim"]  # fixtures

CALLBACKS = 3000
THREADS = 16
KILL_AFTER = 1000
CONCURRENCY = 32  # the worker's sends in flight at most: an upper bound of those cut by a kill


def unique_body(n: int) -> bytes:
    return callback_body(custom_data={"branch": "main", "deploy_id": f"deploy-{n:05d}"})


@pytest.fixture
def pair(
    postgres_url: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    env: dict[str, str],
    sink: HttpSink,
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    config = write_config(
        f'[[routes]]\nname = "chat"\nnotify = ["{sink.url("/chat")}"]\n'
        "[delivery]\nbackoff = [0.2]\ntimeout_seconds = 5\n"
    )
    shared = {**env, "RECEIVER_DB": postgres_url}
    first = ServiceProcess(config, shared, tmp_path / "a.log").start()
    second = ServiceProcess(config, shared, tmp_path / "b.log").start()
    yield first, second
    first.kill()
    second.kill()


def test_two_instances_take_callbacks_while_one_is_killed_and_restarted(
    pair: tuple[ServiceProcess, ServiceProcess], sink: HttpSink, postgres_url: str
) -> None:
    first, second = pair
    answered: list[int] = []
    lock = threading.Lock()
    killed = threading.Event()

    def send(share: range) -> None:
        with httpx.Client(timeout=10) as client:
            for n in share:
                target = (first, second)[n % 2]  # alternately, as a load balancer would
                body = unique_body(n)
                try:
                    response = client.post(
                        f"{target.url}/callbacks/qualitymax", content=body, headers=signed(body)
                    )
                except httpx.TransportError:
                    continue  # that instance is down: never answered, the sender may retry
                if response.status_code == 200:
                    with lock:
                        answered.append(n)
                        if len(answered) == KILL_AFTER and not killed.is_set():
                            # Killed before the restart may begin, so that the kill takes the
                            # first process and never the restarted one.
                            first.kill()  # SIGKILL, mid-stream
                            killed.set()

    restarted = threading.Thread(target=lambda: (killed.wait(), first.start()))
    restarted.start()
    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(send, range(t, CALLBACKS, THREADS)) for t in range(THREADS)]:
            future.result()
    restarted.join()
    assert killed.is_set() and KILL_AFTER < len(answered) <= CALLBACKS

    database = open_store(postgres_url)
    try:
        stored = stored_deploys(database)
    finally:
        database.close()
    expected = {f"deploy-{n:05d}" for n in answered}
    assert len(stored) == len(set(stored)), "a callback was stored twice"
    assert expected <= set(stored), "an answered callback was lost"

    delivered = wait_for_deliveries(sink, expected)
    duplicates = len(delivered) - len(set(delivered))
    assert duplicates <= CONCURRENCY, f"{duplicates} sent twice: more than were in flight"


def stored_deploys(database: Any) -> list[str]:
    rows = database.read(lambda tx: tx.execute("SELECT custom_data FROM results").fetchall())
    return [json.loads(row[0])["deploy_id"] for row in rows]


def wait_for_deliveries(sink: HttpSink, expected: set[str], seconds: float = 90) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        delivered = [deploy_of(r.body) for r in sink.delivered("/chat")]
        if expected <= set(delivered) or time.monotonic() > deadline:
            missing = expected - set(delivered)
            assert not missing, f"{len(missing)} answered callbacks never reached the sink"
            return delivered
        time.sleep(0.2)


def deploy_of(body: bytes) -> str:
    title: str = json.loads(body)["title"]
    return title.split("deploy ", 1)[1].split(" ")[0]


def test_a_polled_job_survives_the_death_of_the_instance_polling_it(
    postgres_url: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    env: dict[str, str],
    qualigate_sim: Served,
) -> None:
    config = write_config(f'[qualigate]\nbase_url = "{qualigate_sim.url}"\npoll_seconds = 0.5\n')
    shared = {**env, "RECEIVER_DB": postgres_url, "QUALIGATE_API_KEY": gate_sim.API_KEY}
    first = ServiceProcess(config, shared, tmp_path / "a.log").start()
    second: ServiceProcess | None = None
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        body = {"provider": "qualigate", "test_case_id": gate_sim.FAILING_CASE}
        job = httpx.post(f"{first.url}/api/jobs", json=body, headers=auth).json()
        first.kill()  # the only instance that polled it, before the run ends
        second = ServiceProcess(config, shared, tmp_path / "b.log").start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = httpx.get(f"{second.url}/api/jobs/{job['id']}", headers=auth).json()
            if shown["result"] is not None:
                break
            time.sleep(0.2)
        assert shown["state"] == "failed", shown
    finally:
        first.kill()
        if second is not None:
            second.kill()
