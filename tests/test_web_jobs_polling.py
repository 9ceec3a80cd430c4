"""POST /api/jobs with ``provider`` qualigate or qualgent: decoded by the provider's own Struct,
triggered at the simulator, handed to the poller; each provider refusal has its status."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import load_config
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from tests.sims import POLLING_KEYS, fault, polling_config, qualgent_sim, qualigate_sim

__all__ = ["qualgent_sim", "qualigate_sim"]

PR = {"branch": "feat/x", "pr_number": 42, "repository": "acme/shop", "sha": "abc123"}
MOBILE = {
    "provider": "qualgent",
    "test_case_id": "tc_pass",
    "app_file_id": "latest",
    "device": gent_sim.DEVICE,
    "custom_data": PR,
}


@pytest.fixture
def polling_client(
    write_config: Callable[[str], Path],
    env: dict[str, str],
    qualigate_sim: Served,
    qualgent_sim: Served,
) -> Callable[..., TestClient[Any]]:
    def make(gate_key: str = gate_sim.API_KEY) -> TestClient[Any]:
        path = write_config(polling_config(qualigate_sim, qualgent_sim))
        keys = {**POLLING_KEYS, "QUALIGATE_API_KEY": gate_key}
        return TestClient(create_app(load_config(path, {**env, **keys})))

    return make


@pytest.fixture
def api(polling_client: Callable[..., TestClient[Any]]) -> Iterator[TestClient[Any]]:
    with polling_client() as client:
        yield client


def test_a_qualigate_suite_is_triggered_and_recorded_for_the_poller(
    api: TestClient[Any], auth: dict[str, str]
) -> None:
    body = {"provider": "qualigate", "test_suite_id": gate_sim.MIXED_SUITE, "custom_data": PR}
    answer = api.post("/api/jobs", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert (job["provider"], job["state"], job["external_kind"]) == (
        "qualigate",
        "submitted",
        "suite_run",
    )
    shown = api.get(f"/api/jobs/{job['id']}", headers=auth).json()
    assert shown["external_id"] == job["external_id"]
    assert shown["custom_data"] == PR


def test_a_qualgent_job_on_the_latest_app_is_triggered(
    api: TestClient[Any], auth: dict[str, str]
) -> None:
    answer = api.post("/api/jobs", json=MOBILE, headers=auth)
    assert answer.status_code == 201, answer.text
    assert answer.json()["provider"] == "qualgent"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            {"provider": "qualigate", "test_suite_id": "s", "url": "https://x.com"},
            400,
            "unknown field `url`",
        ),
        ({"provider": "qualigate"}, 400, "A Qualigate run needs exactly one of"),
        ({**MOBILE, "test_case_id": None, "run_all": True, "app_file_id": None}, 400, "run_all"),
        ({"provider": "qualgent", "custom_data": [1]}, 400, "Validation failed for POST"),
    ],
)
def test_a_request_refused_before_sending_records_no_job(
    api: TestClient[Any], auth: dict[str, str], body: dict[str, Any], status: int, detail: str
) -> None:
    answer = api.post("/api/jobs", json=body, headers=auth)
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    assert api.get("/api/jobs", headers=auth).json()["items"] == []


def test_a_refusal_by_the_provider_keeps_the_job_as_error(
    api: TestClient[Any], auth: dict[str, str]
) -> None:
    """The job is recorded before the provider hears of it: its refusal is kept, not lost."""
    body = {"provider": "qualigate", "test_suite_id": "00000000-0000-4000-8000-000000000000"}
    answer = api.post("/api/jobs", json=body, headers=auth)
    assert answer.status_code == 404, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("Qualigate answered 404") and detail.endswith("recorded as error)")
    [job] = api.get("/api/jobs", headers=auth).json()["items"]
    assert job["state"] == "error" and job["error"].startswith("Qualigate answered 404")


def test_a_wrong_key_is_a_502_with_the_providers_words(
    polling_client: Callable[..., TestClient[Any]], auth: dict[str, str]
) -> None:
    with polling_client(gate_key="qg_wrong") as client:
        body = {"provider": "qualigate", "test_case_id": gate_sim.PASSING_CASE}
        answer = client.post("/api/jobs", json=body, headers=auth)
    assert answer.status_code == 502
    assert answer.json()["detail"].startswith("Qualigate answered 401: Unauthorized")


def test_a_rate_limited_provider_gets_the_job_queued_then_sent(
    api: TestClient[Any], auth: dict[str, str], qualgent_sim: Served
) -> None:
    """DESIGN.md: over a provider's rate limit, 201 with state queued, sent when it allows."""
    fault(qualgent_sim, 429, count=3, retry_after=0.2)
    named = {**MOBILE, "app_file_id": gent_sim.APP_ID}  # no lookup of the latest app first
    answer = api.post("/api/jobs", json=named, headers=auth)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["state"], answer.json().get("external_id")) == ("queued", None)
    deadline = time.monotonic() + 15
    while not (job := api.get(f"/api/jobs/{answer.json()['id']}", headers=auth).json())[
        "external_id"
    ]:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["state"] != "error"


def test_no_polling_provider_configured_says_which_keys_to_set(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    answer = client.post("/api/jobs", json={"provider": "qualgent"}, headers=auth)
    assert answer.status_code == 409
    assert "set QUALGENT_API_KEY ([qualgent] api_key)" in answer.json()["detail"]


def test_openapi_documents_the_body_per_provider(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    schema = client.get("/schema/openapi.json").json()
    body = schema["paths"]["/api/jobs"]["post"]["requestBody"]
    text = str(body)
    assert "test_suite_id" in text and "app_file_id" in text and "feature_description" in text
