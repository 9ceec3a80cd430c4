"""Fixtures for the polling providers: their simulators served on loopback, and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

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


def stats(served: Served) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{served.url}/_sim/stats").json()
    return body


def fault(served: Served, status: int, count: int, retry_after: float | None = None) -> None:
    body: dict[str, Any] = {"status": status, "count": count}
    if retry_after is not None:
        body["retry_after"] = retry_after
    assert httpx.post(f"{served.url}/_sim/faults", json=body).status_code == 204


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
