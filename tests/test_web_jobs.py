"""POST /api/jobs: record, submit to the (simulated) partner, link the callback, show the result."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import load_config
from receiver.process import ServiceProcess, free_port
from receiver.simulator.process import SimulatorProcess
from tests.conftest import TOKEN, callback_body, signed

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB = {
    "url": "https://preview-42.example.com",
    "feature_description": "Users can log in and see their dashboard",
    "custom_data": {"branch": "feat/login", "pr_number": 42, "deploy_id": "abc-123"},
}


def job(**changes: Any) -> dict[str, Any]:
    body = {**JOB, **changes}
    body["custom_data"] = {**JOB["custom_data"], **changes.get("custom_data", {})}
    return body


def wait_for_verdict(http: httpx.Client, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown: dict[str, Any] = http.get(f"/api/jobs/{job_id}").json()
        if shown["result"] is not None:
            return shown
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} got no result")


@pytest.fixture
def api(linked_service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=linked_service.url, headers=AUTH, timeout=30) as c:
        yield c


def sim_counters(simulator: SimulatorProcess) -> dict[str, int]:
    answer: dict[str, int] = httpx.get(f"{simulator.url}/_simulator/counters").json()
    return answer


# -- the loop, through real processes ----------------------------------------------------------


@pytest.mark.parametrize(("outcome", "failed"), [("passed", 0), ("failed", 1)])
def test_a_submitted_job_gets_its_callback_and_result(
    api: httpx.Client, linked_service: ServiceProcess, outcome: str, failed: int
) -> None:
    answer = api.post("/api/jobs", json=job(custom_data={"simulate": outcome}))
    assert answer.status_code == 201
    submitted = answer.json()
    assert set(submitted) == {"id", "provider", "state", "callback_url", "external_id"}
    assert submitted["provider"] == "qualitymax" and submitted["state"] == "submitted"
    assert submitted["external_id"].startswith("pwj_")
    prefix = f"{linked_service.url}/callbacks/qualitymax/"
    assert submitted["callback_url"].startswith(prefix)
    assert len(submitted["callback_url"]) - len(prefix) >= 32  # an unguessable key

    shown = wait_for_verdict(api, submitted["id"])
    assert shown["state"] == outcome
    assert shown["external_id"] == submitted["external_id"]
    result = shown["result"]
    assert (result["total"], result["failed"], result["branch"]) == (3, failed, "feat/login")
    assert result["external_job_id"] == submitted["external_id"]
    assert result["links"]["report"].endswith(f"/reports/{submitted['external_id']}")
    assert len(result["links"]["screenshots"]) == 3


def test_a_result_without_a_report_link_gets_the_partners_job_report(
    api: httpx.Client, simulator: SimulatorProcess
) -> None:
    submitted = api.post("/api/jobs", json=job(custom_data={"simulate": "error"})).json()
    result = wait_for_verdict(api, submitted["id"])["result"]
    assert result["status"] == "error"
    expected = f"{simulator.url}/api/v1/partner/jobs/{submitted['external_id']}/report"
    assert result["links"]["report"] == expected
    assert "Crawl failed" in result["failures"][0]["error"]


def test_an_invalid_job_is_refused_and_nothing_is_recorded_or_sent(
    api: httpx.Client, simulator: SimulatorProcess
) -> None:
    answer = api.post("/api/jobs", json=job(url="https://e.com/" + "a" * 2048))
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("url: is 2062 characters; the limit is 2048")
    assert api.get("/api/jobs").json()["items"] == []
    assert sim_counters(simulator)["webhook_requests"] == 0


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"callback_url": "https://x.com/cb"}, "callback_url: receiver fills it in"),
        ({"provider": "qualimax"}, "provider: 'qualimax' is unknown; use qualitymax, qualigate"),
        ({"feature_description": ""}, "feature_description: is required"),
        ({"options": {"browser": "safari"}}, "options.browser: 'safari' is not one of"),
        ({"options": {"brower": "firefox"}}, "Validation failed for POST /api/jobs"),
        ({"colour": "blue"}, "Validation failed for POST /api/jobs"),
    ],
)
def test_bad_job_bodies_say_which_field(
    api: httpx.Client, changes: dict[str, Any], detail: str
) -> None:
    answer = api.post("/api/jobs", json=job(**changes))
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(detail)


def test_the_api_is_closed_without_the_token(linked_service: ServiceProcess) -> None:
    answer = httpx.post(f"{linked_service.url}/api/jobs", json=JOB)
    assert answer.status_code == 401


def test_a_signed_callback_on_an_unknown_job_key_is_kept_and_logged(
    linked_service: ServiceProcess, api: httpx.Client
) -> None:
    body = callback_body()
    answer = httpx.post(
        f"{linked_service.url}/callbacks/qualitymax/no-such-key", content=body, headers=signed(body)
    )
    assert answer.status_code == 200
    assert answer.json()["job_id"] is None and answer.json()["result_id"] is not None
    assert api.get(f"/api/results/{answer.json()['result_id']}").status_code == 200
    assert "callback.unknown_job" in linked_service.tail(50)


# -- refusals, in process (the partner is still the real simulator) ----------------------------


@pytest.fixture
def app_env(partner_env: dict[str, str]) -> dict[str, str]:
    return {**partner_env, "RECEIVER_PUBLIC_URL": "http://127.0.0.1:9"}


def client_with(write_config: Callable[[str], Path], env: dict[str, str]) -> TestClient[Any]:
    return TestClient(create_app(load_config(write_config(""), env)))


def test_a_wrong_partner_key_is_a_502_with_the_partners_detail_and_an_error_job(
    write_config: Callable[[str], Path], app_env: dict[str, str]
) -> None:
    with client_with(write_config, {**app_env, "QUALITYMAX_API_KEY": "qm-wrong"}) as client:
        answer = client.post("/api/jobs", json=JOB, headers=AUTH)
        assert answer.status_code == 502
        detail = answer.json()["detail"]
        assert detail.startswith("QualityMax refused the request (401): Invalid API key")
        shown = client.get("/api/jobs", headers=AUTH).json()["items"][0]
    assert shown["state"] == "error"
    assert "Invalid API key" in shown["error"]


def test_the_partner_down_is_a_502_and_an_error_job(
    write_config: Callable[[str], Path], app_env: dict[str, str]
) -> None:
    down = {**app_env, "QUALITYMAX_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    with stamina.set_testing(True, attempts=2), client_with(write_config, down) as client:
        answer = client.post("/api/jobs", json=JOB, headers=AUTH)
        assert answer.status_code == 502
        assert "QualityMax could not be reached" in answer.json()["detail"]
        assert client.get("/api/jobs", headers=AUTH).json()["items"][0]["state"] == "error"


def test_the_partners_rate_limit_is_a_503_with_retry_after(
    write_config: Callable[[str], Path], app_env: dict[str, str], simulator: SimulatorProcess
) -> None:
    httpx.post(
        f"{simulator.url}/_simulator/faults", json={"status": 429, "count": 5, "retry_after": 7}
    )
    with stamina.set_testing(True, attempts=2), client_with(write_config, app_env) as client:
        answer = client.post("/api/jobs", json=JOB, headers=AUTH)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("RECEIVER_PUBLIC_URL", "RECEIVER_PUBLIC_URL is not set"),
        ("QUALITYMAX_API_KEY", "QUALITYMAX_API_KEY ([qualitymax] api_key)"),
        ("QUALITYMAX_PARTNER_SLUG", "QUALITYMAX_PARTNER_SLUG ([qualitymax] partner_slug)"),
    ],
)
def test_a_missing_setting_is_named(
    write_config: Callable[[str], Path], app_env: dict[str, str], unset: str, named: str
) -> None:
    env = {k: v for k, v in app_env.items() if k != unset}
    with client_with(write_config, env) as client:
        answer = client.post("/api/jobs", json=JOB, headers=AUTH)
        assert answer.status_code == 409
        assert named in answer.json()["detail"]
        assert client.get("/api/jobs", headers=AUTH).json()["items"] == []


def test_the_login_password_is_sent_but_never_stored(
    api: httpx.Client, partner_env: dict[str, str]
) -> None:
    credentials = {"type": "user_login", "username": "qa@example.com", "password": "hunter2-pw"}
    submitted = api.post("/api/jobs", json=job(auth=credentials)).json()
    assert wait_for_verdict(api, submitted["id"])["state"] == "passed"
    with sqlite3.connect(partner_env["RECEIVER_DB"]) as db:
        (request,) = db.execute(
            "SELECT request FROM jobs WHERE id = ?", [submitted["id"]]
        ).fetchone()
    assert json.loads(request)["auth"] == {**credentials, "password": "****"}
    assert b"hunter2-pw" not in Path(partner_env["RECEIVER_DB"]).read_bytes()
