"""The one retrying HTTP client (receiver.providers.http) against the simulators: waiting as
told on 429, backoff on 5xx and outages, never resending what may have been received, and the
providers' rate windows keeping under their limits."""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import Iterator

import pytest
import stamina

from receiver.config import QualgentSettings, QualigateSettings
from receiver.process import free_port
from receiver.providers.errors import MaybeReceived, ProviderUnavailable
from receiver.providers.http import RetryPolicy
from receiver.providers.qualgent import Qualgent
from receiver.providers.qualigate import Qualigate, TriggerRequest
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from tests.sims import FakeTime, fault, qualgent_sim, qualigate_sim, stats

__all__ = ["qualgent_sim", "qualigate_sim"]  # fixtures

# Real waits, a hundred times shorter than the service's: the test sees each one stamina took.
QUICK = RetryPolicy(attempts=6, wait_initial=0.01, wait_max=0.3, wait_jitter=0, timeout=30)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The wait before each retry, as stamina reports it."""
    found: list[float] = []
    stamina.instrumentation.set_on_retry_hooks([lambda details: found.append(details.wait_for)])
    yield found
    stamina.instrumentation.set_on_retry_hooks(None)


def gate(url: str, time: FakeTime | None = None, **kwargs: object) -> Qualigate:
    settings = QualigateSettings(base_url=url, api_key=gate_sim.API_KEY)
    kwargs.setdefault("policy", QUICK)
    if time is None:
        return Qualigate(settings, **kwargs)  # type: ignore[arg-type]
    return Qualigate(settings, sleep=time.sleep, clock=time.clock, **kwargs)  # type: ignore[arg-type]


def gent(url: str, time: FakeTime | None = None, **kwargs: object) -> Qualgent:
    settings = QualgentSettings(base_url=url, api_key=gent_sim.API_KEY)
    kwargs.setdefault("policy", QUICK)
    if time is None:
        return Qualgent(settings, **kwargs)  # type: ignore[arg-type]
    return Qualgent(settings, sleep=time.sleep, clock=time.clock, **kwargs)  # type: ignore[arg-type]


def test_5xx_on_a_read_backs_off_doubling(qualigate_sim: Served, waits: list[float]) -> None:
    fault(qualigate_sim, 500, 3)
    config = asyncio.run(gate(qualigate_sim.url).ci_config(gate_sim.PROJECT))
    assert config.project_name == "E-commerce Site"
    assert waits == pytest.approx([0.01, 0.02, 0.04])


def test_the_backoff_is_capped_then_it_gives_up(qualigate_sim: Served, waits: list[float]) -> None:
    fault(qualigate_sim, 503, 20)
    policy = RetryPolicy(attempts=8, wait_initial=0.01, wait_max=0.05, wait_jitter=0)
    client = gate(qualigate_sim.url, policy=policy)
    with pytest.raises(ProviderUnavailable, match=r"Internal Server Error.*gave up after 8"):
        asyncio.run(client.ci_config(gate_sim.PROJECT))
    assert waits == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05, 0.05, 0.05])


def test_a_429_waits_retry_after_from_the_body(qualigate_sim: Served, waits: list[float]) -> None:
    fault(qualigate_sim, 429, 2, retry_after=0.2)
    config = asyncio.run(gate(qualigate_sim.url).ci_config(gate_sim.PROJECT))
    assert config.project_id == gate_sim.PROJECT
    assert waits == [0.2, 0.2]


def test_a_429_waits_retry_after_from_the_header(qualgent_sim: Served, waits: list[float]) -> None:
    fault(qualgent_sim, 429, 2, retry_after=0.2)
    cases = asyncio.run(gent(qualgent_sim.url).list_test_cases())
    assert [c.id for c in cases][:2] == ["tc_pass", "tc_fail"]
    assert waits == [0.2, 0.2]


def test_unreachable_provider_is_retried_then_reported(waits: list[float]) -> None:
    client = gate(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderUnavailable, match=r"Qualigate is unreachable.*try again later"):
        asyncio.run(client.ci_config(gate_sim.PROJECT))
    assert waits == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16])


def test_a_5xx_to_a_trigger_is_not_sent_again(qualigate_sim: Served, waits: list[float]) -> None:
    """A POST answered 500 may have started the run: reported, never repeated."""
    fault(qualigate_sim, 500, 1)
    client = gate(qualigate_sim.url)
    with pytest.raises(MaybeReceived, match="500"):
        asyncio.run(client.trigger_run(TriggerRequest(test_case_id=gate_sim.PASSING_CASE)))
    assert (client.api.requests, waits) == (1, [])


def test_a_503_to_a_trigger_is_sent_again(qualigate_sim: Served, waits: list[float]) -> None:
    """503 says the provider did not act: safe to send again, after its Retry-After."""
    fault(qualigate_sim, 503, 1)
    client = gate(qualigate_sim.url)
    answer = asyncio.run(client.trigger_run(TriggerRequest(test_case_id=gate_sim.PASSING_CASE)))
    assert answer.test_run_id and client.api.requests == 2 and len(waits) == 1


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

    class HangUp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)

    with socketserver.TCPServer(("127.0.0.1", 0), HangUp) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = gate(f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(MaybeReceived, match="after the request was sent"):
            asyncio.run(client.trigger_run(TriggerRequest(test_case_id=gate_sim.PASSING_CASE)))
        server.shutdown()
    assert client.api.requests == 1
