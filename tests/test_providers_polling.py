"""The shared client machinery: rate windows, waiting as told on 429, backoff on 5xx and outages."""

from __future__ import annotations

import asyncio

import pytest

from receiver.config import QualgentSettings, QualigateSettings
from receiver.process import free_port
from receiver.providers.polling import ProviderUnavailable, SlidingWindow
from receiver.providers.qualgent import Qualgent
from receiver.providers.qualigate import Qualigate, TriggerRequest
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from tests.sims import FakeTime, fault, qualgent_sim, qualigate_sim, stats

__all__ = ["qualgent_sim", "qualigate_sim"]  # fixtures


def gate(url: str, time: FakeTime | None = None, **kwargs: object) -> Qualigate:
    settings = QualigateSettings(base_url=url, api_key=gate_sim.API_KEY)
    if time is None:
        return Qualigate(settings, **kwargs)  # type: ignore[arg-type]
    return Qualigate(settings, sleep=time.sleep, clock=time.clock, **kwargs)  # type: ignore[arg-type]


def gent(url: str, time: FakeTime | None = None, **kwargs: object) -> Qualgent:
    settings = QualgentSettings(base_url=url, api_key=gent_sim.API_KEY)
    if time is None:
        return Qualgent(settings, **kwargs)  # type: ignore[arg-type]
    return Qualgent(settings, sleep=time.sleep, clock=time.clock, **kwargs)  # type: ignore[arg-type]


def test_window_lets_limit_through_then_waits_for_the_oldest() -> None:
    time = FakeTime()
    window = SlidingWindow(3, 10, clock=time.clock)

    async def go() -> None:
        for _ in range(3):
            await window.acquire(time.sleep)
            time.now += 1
            window.release()
        await window.acquire(time.sleep)

    asyncio.run(go())
    # Three answers arrived at 1001, 1002, 1003; the fourth may go once the first is 10 s old.
    assert time.sleeps == [8.0]


def test_window_counts_requests_in_flight() -> None:
    time = FakeTime()
    window = SlidingWindow(2, 10, clock=time.clock)

    async def go() -> None:
        await window.acquire(time.sleep)
        await window.acquire(time.sleep)

    asyncio.run(go())
    assert window.delay() == 5.0  # both slots held by requests without an answer yet


def test_hold_obeys_the_providers_reset() -> None:
    time = FakeTime()
    window = SlidingWindow(10, 1, clock=time.clock)
    window.hold(2.5)
    assert window.delay() == 2.5


def test_5xx_backs_off_from_one_second_doubling(qualigate_sim: Served) -> None:
    time = FakeTime()
    fault(qualigate_sim, 500, 3)
    client = gate(qualigate_sim.url, time)
    config = asyncio.run(client.ci_config(gate_sim.PROJECT))
    assert config.project_name == "E-commerce Site"
    assert time.sleeps == [1.0, 2.0, 4.0]


def test_5xx_backoff_is_capped_at_30_seconds_then_gives_up(qualigate_sim: Served) -> None:
    time = FakeTime()
    fault(qualigate_sim, 503, 20)
    client = gate(qualigate_sim.url, time, attempts=8)
    with pytest.raises(ProviderUnavailable, match=r"Internal Server Error.*gave up after 8"):
        asyncio.run(client.ci_config(gate_sim.PROJECT))
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_429_storm_waits_retry_after_from_the_body(qualigate_sim: Served) -> None:
    time = FakeTime()
    fault(qualigate_sim, 429, 4, retry_after=60)
    client = gate(qualigate_sim.url, time)
    config = asyncio.run(client.ci_config(gate_sim.PROJECT))
    assert config.project_id == gate_sim.PROJECT
    assert time.sleeps == [60.0, 60.0, 60.0, 60.0]


def test_429_waits_retry_after_header(qualgent_sim: Served) -> None:
    time = FakeTime()
    fault(qualgent_sim, 429, 2, retry_after=3)
    client = gent(qualgent_sim.url, time)
    cases = asyncio.run(client.list_test_cases())
    assert [c.id for c in cases][:2] == ["tc_pass", "tc_fail"]
    assert time.sleeps == [3.0, 3.0]


def test_unreachable_provider_is_retried_then_reported() -> None:
    time = FakeTime()
    client = gate(f"http://127.0.0.1:{free_port()}", time)
    with pytest.raises(ProviderUnavailable, match=r"Qualigate is unreachable.*try again later"):
        asyncio.run(client.ci_config(gate_sim.PROJECT))
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


async def _calls(n: int, fn: object) -> None:
    await asyncio.gather(*(fn() for _ in range(n)))  # type: ignore[operator]


def _trigger(client: Qualigate) -> object:
    async def one() -> None:
        await client.trigger_run(TriggerRequest(test_case_id=gate_sim.PASSING_CASE))

    return one


def test_a_client_without_its_window_is_told_off_and_waits_as_told() -> None:
    """The control: the simulator does answer 429 to a client that ignores the limit."""
    with Served(gate_sim.create_app(limit=3, window=0.3)) as sim:
        client = gate(sim.url, rate_limit=1000, rate_window=0.3)
        asyncio.run(_calls(8, _trigger(client)))
        score = stats(sim)
    assert score["admitted"]["trigger_post"] == 8  # every one got through in the end
    assert score["limited"] > 0


def test_qualigate_window_keeps_under_the_limit() -> None:
    with Served(gate_sim.create_app(limit=3, window=0.3)) as sim:
        client = gate(sim.url, rate_limit=3, rate_window=0.3)
        asyncio.run(_calls(10, _trigger(client)))
        score = stats(sim)
    assert score["admitted"]["trigger_post"] == 10
    assert score["limited"] == 0
    assert score["max_in_window"]["trigger_post"] <= 3


def test_qualgent_obeys_ratelimit_headers_before_a_429() -> None:
    """The client's own window is off (1000/s): the X-RateLimit headers alone keep it under."""
    with Served(gent_sim.create_app(limit=3, window=0.3)) as sim:
        client = gent(sim.url, rate_limit=1000, rate_window=0.3)

        async def sequential() -> None:
            for _ in range(10):
                await client.list_jobs()

        asyncio.run(sequential())
        score = stats(sim)
    assert score["admitted"]["all"] == 10
    assert score["limited"] == 0


def test_a_trigger_lost_in_flight_is_not_sent_twice() -> None:
    """The host took the request and hung up: the run may exist, so no second POST."""
    import socketserver
    import threading

    class HangUp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)

    with socketserver.TCPServer(("127.0.0.1", 0), HangUp) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        time = FakeTime()
        client = gate(f"http://127.0.0.1:{server.server_address[1]}", time)
        with pytest.raises(ProviderUnavailable, match="not retried"):
            asyncio.run(client.trigger_run(TriggerRequest(test_case_id=gate_sim.PASSING_CASE)))
        server.shutdown()
    assert client.api.requests == 1 and time.sleeps == []
