"""DESIGN.md: "A job over a provider's rate limit is answered 201 with state queued and sent when
the limit allows." The jobs table is the queue: a restarted service sends what waited, and a
queued request whose secret was lost with the restart ends in an error that says what to do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest

from receiver.config import QualigateSettings, QualityMaxSettings, load_config
from receiver.jobs import Submission
from receiver.providers import job_body_type
from receiver.providers.base import Provider
from receiver.providers.qualigate import Qualigate
from receiver.providers.qualitymax import QualityMax
from receiver.sender import Sender
from receiver.simulator import qualigate as gate_sim
from receiver.simulator import qualitymax as qm_sim
from receiver.simulator.common import Served
from receiver.store import Store, jobs, open_store
from tests.sims import stats

KEY = "qm-queue-key"


@pytest.fixture
def gate() -> Iterator[Served]:
    with Served(gate_sim.create_app()) as served:
        yield served


@pytest.fixture
def partner() -> Iterator[Served]:
    settings = qm_sim.SimulatorSettings(api_key=KEY, delay=30)  # no callback in this test
    with Served(qm_sim.create_simulator(settings)) as served:
        yield served


def body(fields: dict[str, Any]) -> Any:
    return msgspec.convert(fields, job_body_type())


def submission(store: Store, provider: Provider) -> Submission:
    env = {"RECEIVER_PUBLIC_URL": "https://receiver.example.com"}
    config = load_config(Path("/dev/null"), env)
    return Submission(store, config, {provider.name: provider})


def states(store: Store, ids: list[int]) -> list[str]:
    return [store.read(partial(jobs.get, job_id=i)).state for i in ids]


def test_jobs_over_the_limit_wait_queued_and_a_restart_sends_them(
    tmp_path: Path, gate: Served
) -> None:
    path = str(tmp_path / "receiver.db")
    request = body({"provider": "qualigate", "test_case_id": gate_sim.PASSING_CASE})
    settings = QualigateSettings(base_url=gate.url, api_key=gate_sim.API_KEY)

    async def before_restart() -> list[int]:
        store = open_store(path)
        provider = Qualigate(settings, rate_limit=1, rate_window=60)
        try:
            answers = [await submission(store, provider).submit(request) for _ in range(3)]
        finally:
            await provider.aclose()
            store.close()
        assert [a.state for a in answers] == ["submitted", "queued", "queued"]
        assert [a.external_id is None for a in answers] == [False, True, True]
        return [a.id for a in answers]

    ids = asyncio.run(before_restart())
    assert stats(gate)["admitted"] == {"trigger_post": 1}  # the queued ones were not sent

    async def after_restart() -> float:
        store = open_store(path)
        provider = Qualigate(settings, rate_limit=3, rate_window=60)
        try:
            return await Sender(submission(store, provider), [provider]).send_due()
        finally:
            await provider.aclose()
            store.close()

    asyncio.run(after_restart())
    store = open_store(path)
    try:
        assert states(store, ids) == ["submitted", "submitted", "submitted"]
        assert all(store.read(partial(jobs.get, job_id=i)).external_id for i in ids)
    finally:
        store.close()
    assert stats(gate)["admitted"] == {"trigger_post": 3}


def test_a_queued_password_lost_with_a_restart_ends_the_job_saying_so(
    tmp_path: Path, partner: Served
) -> None:
    path = str(tmp_path / "receiver.db")
    settings = QualityMaxSettings(
        base_url=partner.url,
        api_key=KEY,
        partner_slug="acme",
        webhook_secret=qm_sim.DEV_WEBHOOK_SECRET,
    )
    login = {"type": "user_login", "username": "qa@example.com", "password": "s3cret"}
    request = body(
        {
            "provider": "qualitymax",
            "url": "https://a.example",
            "feature_description": "log in",
            "auth": login,
        }
    )

    async def queue_one() -> int:
        store = open_store(path)
        provider = QualityMax(settings, limits={"llm": 1})
        try:
            first = await submission(store, provider).submit(request)
            second = await submission(store, provider).submit(request)
        finally:
            await provider.aclose()
            store.close()
        assert (first.state, second.state) == ("submitted", "queued")
        return second.id

    queued = asyncio.run(queue_one())

    async def restart() -> None:
        store = open_store(path)
        provider = QualityMax(settings)
        try:
            await Sender(submission(store, provider), [provider]).send_due()
        finally:
            await provider.aclose()
            store.close()

    asyncio.run(restart())
    store = open_store(path)
    try:
        job = store.read(lambda tx: jobs.get(tx, queued))
    finally:
        store.close()
    assert job.state == "error"
    assert job.error is not None
    assert job.error.startswith("auth.password: not kept across a restart")
    assert f"receiver rerun {queued}" in job.error
    assert "s3cret" not in (job.body or "") + (job.request or "")
