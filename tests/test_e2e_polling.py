"""The real service (`receiver serve` as a child process) polling the simulators: jobs submitted
while it runs and while it is down both end with their result, and no limit is ever exceeded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from receiver.config import QualgentSettings, QualigateSettings, load_config
from receiver.jobs import Submission
from receiver.process import ServiceProcess
from receiver.providers import job_body_type
from receiver.providers.base import Provider
from receiver.providers.qualgent import Qualgent
from receiver.providers.qualigate import Qualigate
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from receiver.store import open_store
from tests.conftest import TOKEN
from tests.sims import POLLING_KEYS, polling_config, qualgent_sim, qualigate_sim, stats

__all__ = ["qualgent_sim", "qualigate_sim"]

PR = {"branch": "feature/x", "sha": "abc123", "pr_number": "42", "repository": "org/shop"}


@pytest.fixture
def polling_service(
    tmp_path: Path,
    write_config: Callable[[str], Path],
    env: dict[str, str],
    qualigate_sim: Served,
    qualgent_sim: Served,
) -> Iterator[ServiceProcess]:
    config = write_config(polling_config(qualigate_sim, qualgent_sim))
    process = ServiceProcess(config, {**env, **POLLING_KEYS}, tmp_path / "serve.log")
    yield process
    process.kill()


def submit(db_path: str, provider: Provider, request: dict[str, Any]) -> int:
    """What POST /api/jobs does, from outside the service: record, send, record what was sent;
    the service's poller finds the job in the database."""
    body = msgspec.convert(
        {"provider": provider.name, **request, "custom_data": PR}, job_body_type()
    )

    async def go() -> int:
        database = open_store(db_path)
        config = load_config(Path("/dev/null"), {})
        try:
            job = await Submission(database, config, {provider.name: provider}).submit(body)
        finally:
            database.close()
            await provider.aclose()
        return job.id

    return asyncio.run(go())


def wait_for_result(service: ServiceProcess, job_id: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(600):
        job: dict[str, Any] = httpx.get(f"{service.url}/api/jobs/{job_id}", headers=headers).json()
        if job["result"] is not None:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ended: {job}\n{service.tail()}")


def test_service_polls_jobs_to_their_results_across_a_restart(
    polling_service: ServiceProcess,
    env: dict[str, str],
    qualigate_sim: Served,
    qualgent_sim: Served,
) -> None:
    db_path = env["RECEIVER_DB"]
    gate = QualigateSettings(base_url=qualigate_sim.url, api_key=gate_sim.API_KEY)
    gent = QualgentSettings(base_url=qualgent_sim.url, api_key=gent_sim.API_KEY)
    polling_service.start()
    suite = submit(db_path, Qualigate(gate), {"test_suite_id": gate_sim.MIXED_SUITE})
    mobile = submit(
        db_path,
        Qualgent(gent),
        {"test_case_id": "tc_pass", "app_file_id": gent_sim.APP_ID, "device": gent_sim.DEVICE},
    )
    suite_job = wait_for_result(polling_service, suite)
    assert suite_job["state"] == "failed"
    assert [t["name"] for t in suite_job["result"]["tests"]] == [
        "User Login Flow",
        "Checkout Process",
    ]
    assert suite_job["result"]["pr_number"] == 42
    mobile_job = wait_for_result(polling_service, mobile)
    assert mobile_job["state"] == "passed"
    assert mobile_job["result"]["tests"][0]["url"].startswith(gent_sim.LINK)

    polling_service.stop()
    waiting = submit(db_path, Qualigate(gate), {"test_case_id": gate_sim.FAILING_CASE})
    polling_service.start()  # a new process: it finds the open job in the database
    resumed = wait_for_result(polling_service, waiting)
    assert resumed["state"] == "failed"
    assert resumed["result"]["tests"][0]["error"].startswith("Element not found")
    assert stats(qualigate_sim)["limited"] == 0 and stats(qualgent_sim)["limited"] == 0
    assert '"poll.started"' in polling_service.tail(200)
