"""POST /api/jobs with ``provider`` qualigate or qualgent: decoded by the provider's own Struct,
triggered at the simulator, handed to the poller; each provider refusal has its status."""

from __future__ import annotations

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
            "Not a qualigate run request: Object contains unknown field `url`",
        ),
        ({"provider": "qualigate"}, 400, "A Qualigate run needs exactly one of"),
        (
            {"provider": "qualigate", "test_suite_id": "00000000-0000-4000-8000-000000000000"},
            404,
            "Qualigate answered 404",
        ),
        ({**MOBILE, "test_case_id": None, "run_all": True, "app_file_id": None}, 400, "run_all"),
        ({"provider": "qualgent", "custom_data": [1]}, 400, "Validation failed for POST"),
    ],
)
def test_provider_refusals_have_their_status(
    api: TestClient[Any], auth: dict[str, str], body: dict[str, Any], status: int, detail: str
) -> None:
    answer = api.post("/api/jobs", json=body, headers=auth)
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    assert api.get("/api/jobs", headers=auth).json()["items"] == []


def test_a_wrong_key_is_a_502_with_the_providers_words(
    polling_client: Callable[..., TestClient[Any]], auth: dict[str, str]
) -> None:
    with polling_client(gate_key="qg_wrong") as client:
        body = {"provider": "qualigate", "test_case_id": gate_sim.PASSING_CASE}
        answer = client.post("/api/jobs", json=body, headers=auth)
    assert answer.status_code == 502
    assert answer.json()["detail"].startswith("Qualigate answered 401: Unauthorized")


def test_a_provider_that_stays_rate_limited_is_a_503(
    api: TestClient[Any], auth: dict[str, str], qualgent_sim: Served
) -> None:
    fault(qualgent_sim, 429, count=20, retry_after=0)
    answer = api.post("/api/jobs", json=MOBILE, headers=auth)
    assert answer.status_code == 503
    assert "429" in answer.json()["detail"]


def test_no_polling_provider_configured_says_which_keys_to_set(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    # 409 as for QualityMax's missing settings: the request is fine, the service lacks a key.
    answer = client.post("/api/jobs", json={"provider": "qualgent"}, headers=auth)
    assert answer.status_code == 409
    assert "set QUALIGATE_API_KEY / QUALGENT_API_KEY" in answer.json()["detail"]


def test_the_one_provider_not_configured_says_its_key(
    write_config: Callable[[str], Path],
    env: dict[str, str],
    qualigate_sim: Served,
    qualgent_sim: Served,
    auth: dict[str, str],
) -> None:
    path = write_config(polling_config(qualigate_sim, qualgent_sim))
    only_gate = {**env, "QUALIGATE_API_KEY": gate_sim.API_KEY}
    with TestClient(create_app(load_config(path, only_gate))) as client:
        answer = client.post("/api/jobs", json=MOBILE, headers=auth)
    assert answer.status_code == 409
    assert "qualgent is not configured: set QUALGENT_API_KEY" in answer.json()["detail"]


def test_openapi_documents_the_body_per_provider(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    schema = client.get("/schema/openapi.json").json()
    body = schema["paths"]["/api/jobs"]["post"]["requestBody"]
    text = str(body)
    assert "test_suite_id" in text and "app_file_id" in text and "feature_description" in text
