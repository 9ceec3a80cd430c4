"""Fixtures for the polling providers: their simulators served on loopback, and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from receiver.providers.base import JobBody, Provider
from receiver.results import Result
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served


@pytest.fixture
def qualigate_sim() -> Iterator[Served]:
    with Served(gate_sim.create_app()) as served:
        yield served


@pytest.fixture
def qualgent_sim() -> Iterator[Served]:
    with Served(gent_sim.create_app()) as served:
        yield served


# What a service polling both simulators is given: its keys, and their base URLs in its config.
POLLING_KEYS = {"QUALIGATE_API_KEY": gate_sim.API_KEY, "QUALGENT_API_KEY": gent_sim.API_KEY}


def polling_config(gate: Served, gent: Served, *, gate_poll: float = 0.2) -> str:
    return (
        f'[qualigate]\nbase_url = "{gate.url}"\npoll_seconds = {gate_poll}\n'
        f'[qualgent]\nbase_url = "{gent.url}"\npoll_seconds = 0.2\n'
    )


def stats(served: Served) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{served.url}/_sim/stats").json()
    return body


def fault(served: Served, status: int, count: int, retry_after: float | None = None) -> None:
    body: dict[str, Any] = {"status": status, "count": count}
    if retry_after is not None:
        body["retry_after"] = retry_after
    assert httpx.post(f"{served.url}/_sim/faults", json=body).status_code == 204


def run_to_end(provider: Provider, request: JobBody) -> Result:
    """Check, send, and poll a run (at once, again and again) until it has its result."""

    async def go() -> Result:
        try:
            outgoing = provider.prepare(request, None)
            sent = await provider.send(outgoing)
            assert sent.external_kind is not None
            for _ in range(10):
                progress = await provider.poll(
                    sent.external_kind, sent.external_id, request.custom_data, outgoing.kept
                )
                if progress.result is not None:
                    return progress.result
                assert progress.state in ("pending", "running")
            raise AssertionError("the run did not end")
        finally:
            await provider.aclose()

    return asyncio.run(go())


class FakeTime:
    """A clock that moves only when slept on: waits are recorded, never spent."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
