"""How many requests a minute the service makes to each provider at most, from its limiters'
settings, checked against the simulators' counters.

Each provider's client is driven far past its limits (every endpoint family at once, all
concurrent) against its simulator with the same limits, time scaled so that a documented minute
(QualGent: second) lasts ``--window`` seconds. The simulator counts the most requests it saw in
any one window per family and every 429 it had to answer. Usage:
    .venv/bin/python bench/provider_rates.py [--window SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx
import msgspec

from receiver.config import QualgentSettings, QualigateSettings, QualityMaxSettings
from receiver.providers import qualgent as gent
from receiver.providers import qualigate as gate
from receiver.providers import qualitymax as qm
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator import qualitymax as qm_sim
from receiver.simulator.common import Served

KEY: Final = "qm-bench-key"
TIMES_OVER: Final = 2  # each family is asked this many times its limit


class Figure(msgspec.Struct, kw_only=True):
    provider: str
    per_minute: int  # the most the service sends in a documented minute, by its settings
    limits: dict[str, int]  # per window family, per window
    seen_most: dict[str, int]  # the simulator's most in one window, per family
    limited: int  # 429s the simulator answered


def per_minute() -> dict[str, int]:
    """From the limiters' settings: the windows a request can pass without sharing another."""
    return {
        # Every LLM endpoint shares 10, every free one 60 (import and scans within those 60).
        "qualitymax": qm.LIMITS[qm.LLM] + qm.LIMITS[qm.FREE],
        # Each of trigger POST, trigger GET and results has its own 30.
        "qualigate": gate.RATE_LIMIT * len(gate.Qualigate.WINDOWS),
        # 10 a second, one window for every endpoint.
        "qualgent": int(gent.RATE_LIMIT * 60 / gent.RATE_WINDOW),
    }


async def _burst(calls: list[Callable[[], Awaitable[Any]]]) -> None:
    await asyncio.gather(*(call() for call in calls))


def _stats(url: str, path: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}{path}").json()
    return answer


def qualitymax(window: float) -> Figure:
    settings = qm_sim.SimulatorSettings(api_key=KEY, window_seconds=window)
    with Served(qm_sim.create_simulator(settings)) as served:

        async def go() -> None:
            client = qm.QualityMax(
                QualityMaxSettings(base_url=served.url, api_key=KEY), rate_window=window
            )
            generate = qm.GenerateTestCasesRequest(project_id=15, description="x", count=1)
            case = qm.TestCaseRequest(project_id=15, title="t")
            calls: list[Callable[[], Awaitable[Any]]] = []
            calls += [lambda: client.generate_test_cases(generate)] * (TIMES_OVER * 10)
            calls += [lambda: client.create_test_case(case)] * (TIMES_OVER * 50)
            calls += [
                lambda i=i: client.import_repository(
                    qm.ImportRequest(url=f"https://github.com/a/r{i}")
                )
                for i in range(TIMES_OVER * 10)
            ]
            try:
                await _burst(calls)
            finally:
                await client.aclose()

        asyncio.run(go())
        score = _stats(served.url, "/_simulator/rates")
    return Figure(
        provider="qualitymax",
        per_minute=per_minute()["qualitymax"],
        limits=dict(qm.LIMITS),
        seen_most=score["max_in_window"],
        limited=score["limited"],
    )


def qualigate(window: float) -> Figure:
    with Served(gate_sim.create_app(window=window)) as served:

        async def go() -> None:
            client = gate.Qualigate(
                QualigateSettings(base_url=served.url, api_key=gate_sim.API_KEY),
                rate_window=window,
            )
            started = await client.trigger_run(
                gate.TriggerRequest(test_case_id=gate_sim.ENDLESS_CASE)
            )
            run_id = started.test_run_id or ""
            trigger = gate.TriggerRequest(test_case_id=gate_sim.PASSING_CASE)
            calls: list[Callable[[], Awaitable[Any]]] = []
            calls += [lambda: client.trigger_run(trigger)] * (TIMES_OVER * 30 - 1)
            calls += [lambda: client.run_status(test_run_id=run_id)] * (TIMES_OVER * 30)
            calls += [lambda: client.results(test_run_ids=[run_id])] * (TIMES_OVER * 30)
            try:
                await _burst(calls)
            finally:
                await client.aclose()

        asyncio.run(go())
        score = _stats(served.url, "/_sim/stats")
    return Figure(
        provider="qualigate",
        per_minute=per_minute()["qualigate"],
        limits={name: gate.RATE_LIMIT for name in gate.Qualigate.WINDOWS},
        seen_most=score["max_in_window"],
        limited=score["limited"],
    )


def qualgent(window: float) -> Figure:
    with Served(gent_sim.create_app(window=window)) as served:

        async def go() -> None:
            client = gent.Qualgent(
                QualgentSettings(base_url=served.url, api_key=gent_sim.API_KEY),
                rate_window=window,
            )
            calls: list[Callable[[], Awaitable[Any]]] = []
            calls += [client.list_jobs] * (TIMES_OVER * 10)
            calls += [client.list_apps] * (TIMES_OVER * 10)
            try:
                await _burst(calls)
            finally:
                await client.aclose()

        asyncio.run(go())
        score = _stats(served.url, "/_sim/stats")
    return Figure(
        provider="qualgent",
        per_minute=per_minute()["qualgent"],
        limits={"all": gent.RATE_LIMIT},
        seen_most=score["max_in_window"],
        limited=score["limited"],
    )


def measure(window: float) -> list[Figure]:
    return [qualitymax(window), qualigate(window), qualgent(window / 6)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=2.0, help="seconds a minute lasts")
    args = parser.parse_args()
    for figure in measure(args.window):
        print(
            f"{figure.provider}: at most {figure.per_minute} requests/minute; "
            f"limits per window {figure.limits}; most seen in one window {figure.seen_most}; "
            f"429s {figure.limited}"
        )


if __name__ == "__main__":
    main()
