"""The registry (receiver.providers): a provider is its module, its simulator and one registry
line. Proved with a toy provider, written here in full, driven through the real app: submit
(POST /api/jobs) → polled to its result → routed → delivered to a real sink."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient

from receiver import providers
from receiver.app import create_app
from receiver.config import Config, load_config
from receiver.providers.base import JobBody, Outgoing, Progress, Sent, kept
from receiver.providers.errors import RequestRejected
from receiver.providers.http import Api
from receiver.results import CustomData, Result, TestCase
from receiver.simulator.common import Served
from tests.conftest import TOKEN
from tests.sinks import HttpSink

# -- the toy provider's module ---------------------------------------------------------------------


class ToyJob(JobBody, tag="toy"):
    case: str  # "pass" or "fail"


class ToySettings(msgspec.Struct):
    poll_seconds: float = 0.05
    timeout_seconds: float = 30


class Toy:
    name: ClassVar[str] = "toy"
    label: ClassVar[str] = "Toy"
    request_type: ClassVar[type[ToyJob]] = ToyJob
    calls_back: ClassVar[bool] = False
    polled: ClassVar[bool] = True
    base_url: ClassVar[str] = ""  # where its simulator runs: set by the test

    def __init__(self) -> None:
        self.settings = ToySettings()
        self.api = Api(provider=self.label, base_url=self.base_url, headers={})

    @classmethod
    def from_config(cls, config: Config) -> Toy:
        return cls()

    def prepare(self, request: ToyJob, callback_url: str | None) -> Outgoing:
        if request.case not in ("pass", "fail"):
            raise RequestRejected(self.label, f"case: {request.case!r} is not pass or fail")
        return Outgoing(wire=request, kept=kept(request))

    def send_delay(self, request: ToyJob) -> float:
        return 0.0

    async def send(self, outgoing: Outgoing) -> Sent:
        response = await self.api.call("POST", "/runs", json={"case": outgoing.wire.case})
        return Sent(external_kind="run", external_id=response.json()["id"])

    async def poll(
        self, kind: str, external_id: str, custom_data: CustomData, request: str | None = None
    ) -> Progress:
        run = (await self.api.call("GET", f"/runs/{external_id}")).json()
        if run["status"] == "running":
            return Progress(state="running", raw_status="running")
        test = TestCase(name="toy test", status=run["status"], error=run.get("error"))
        result = Result(
            provider=self.name,
            event="test_results",
            status=run["status"],
            total=1,
            passed=int(run["status"] == "passed"),
            failed=int(run["status"] == "failed"),
            external_job_id=external_id,
            custom_data=custom_data,
            tests=[test],
        )
        return Progress(state="ended", result=result)

    async def aclose(self) -> None:
        await self.api.aclose()


# -- its simulator ---------------------------------------------------------------------------------


def toy_simulator() -> Litestar:
    runs: dict[str, dict[str, Any]] = {}

    @post("/runs", status_code=201)
    async def start(data: JSONBody[dict[str, str]]) -> dict[str, str]:
        run_id = f"toy-{len(runs) + 1}"
        runs[run_id] = {"case": data["case"], "polls": 0}
        return {"id": run_id}

    @get("/runs/{run_id:str}")
    async def status(run_id: FromPath[str]) -> dict[str, Any]:
        run = runs[run_id]
        run["polls"] += 1
        if run["polls"] < 2:
            return {"status": "running"}
        if run["case"] == "fail":
            return {"status": "failed", "error": "the toy fell over"}
        return {"status": "passed"}

    return Litestar([start, status])


# -- its registry line, and the test ---------------------------------------------------------------


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    with Served(toy_simulator()) as simulator:
        monkeypatch.setattr(Toy, "base_url", simulator.url)
        monkeypatch.setitem(providers.REGISTRY, Toy.name, Toy)  # the one registry line
        yield simulator


def test_a_toy_provider_goes_from_submit_to_result_to_delivery(
    toy_registered: Served, sink: HttpSink, tmp_path: Path, env: dict[str, str]
) -> None:
    config_file = tmp_path / "receiver.toml"
    config_file.write_text(
        '[[routes]]\nname = "toy failures"\nwhen = { provider = "toy", status = "failed" }\n'
        f'notify = ["{sink.url("/chat")}"]\n'
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(load_config(config_file, env))) as client:
        body = {"provider": "toy", "case": "fail", "custom_data": {"branch": "toy/branch"}}
        answer = client.post("/api/jobs", json=body, headers=auth)
        assert answer.status_code == 201, answer.text
        assert answer.json()["external_kind"] == "run"
        job = wait_for_result(client, answer.json()["id"], auth)
        refused = client.post("/api/jobs", json={"provider": "toy", "case": "x"}, headers=auth)
        schema = client.get("/schema/openapi.json").text
    assert job["state"] == "failed" and job["result"]["provider"] == "toy"
    assert job["result"]["tests"][0]["error"] == "the toy fell over"
    delivered = wait_for(lambda: sink.delivered("/chat"))
    assert "the toy fell over" in delivered[0].body.decode()
    assert refused.status_code == 400 and "case: 'x' is not pass or fail" in refused.text
    assert "ToyJob" in schema  # POST /api/jobs documents the toy's body too


def wait_for_result(client: TestClient[Any], job_id: int, auth: dict[str, str]) -> Any:
    def ended() -> Any:
        job = client.get(f"/api/jobs/{job_id}", headers=auth).json()
        return job if job["result"] is not None else None

    return wait_for(ended)


def wait_for(found: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.05)
    raise AssertionError("it never came")
