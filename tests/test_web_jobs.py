"""POST /api/jobs: record, submit to the (simulated) partner, link the callback, show the result."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import stamina
from litestar.testing import TestClient

from receiver import jobs, views
from receiver.app import create_app
from receiver.config import QualityMaxSettings, load_config
from receiver.process import ServiceProcess, free_port
from receiver.providers import qualitymax as qm
from receiver.providers.errors import MaybeReceived
from receiver.providers.http import RetryPolicy
from receiver.simulator.process import SimulatorProcess
from tests.conftest import TOKEN, callback_body, signed
from tests.sinks import Answer, HttpSink
from tests.store_helpers import opened

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB: dict[str, Any] = {
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


def test_a_result_without_a_report_link_is_never_given_one_that_needs_the_api_key(
    api: httpx.Client, simulator: SimulatorProcess
) -> None:
    """The partner's job report answers 401 without X-QualityMax-API-Key: a link to it would
    be broken in chat, in the PR comment and as the commit status's target_url."""
    submitted = api.post("/api/jobs", json=job(custom_data={"simulate": "error"})).json()
    result = wait_for_verdict(api, submitted["id"])["result"]
    assert result["status"] == "error"
    assert result["links"]["report"] is None
    assert "/api/v1/partner/" not in str(result)
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


def test_a_provider_the_service_has_no_settings_for_is_a_409_naming_them(
    api: httpx.Client,
) -> None:
    """Said before its fields are judged: the fix is the service's setting, not the body."""
    answer = api.post("/api/jobs", json=job(provider="qualigate"))
    assert answer.status_code == 409
    assert answer.json()["detail"] == (
        "provider: qualigate is not configured on this service: set QUALIGATE_API_KEY "
        "([qualigate] api_key) and restart"
    )


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
        assert detail.startswith("QualityMax answered 401: Invalid API key")
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
        assert "QualityMax is unreachable" in answer.json()["detail"]
        assert client.get("/api/jobs", headers=AUTH).json()["items"][0]["state"] == "error"


def test_the_partners_rate_limit_queues_the_job_until_it_allows(
    write_config: Callable[[str], Path], app_env: dict[str, str], simulator: SimulatorProcess
) -> None:
    """DESIGN.md: over a provider's rate limit, 201 with state queued, sent when it allows."""
    httpx.post(
        f"{simulator.url}/_simulator/faults", json={"status": 429, "count": 1, "retry_after": 1}
    )
    with client_with(write_config, app_env) as client:
        answer = client.post("/api/jobs", json=JOB, headers=AUTH)
        assert answer.status_code == 201, answer.text
        assert answer.json()["state"] == "queued"
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 10
        while (job := client.get(f"/api/jobs/{job_id}", headers=AUTH).json())["state"] == "queued":
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
    assert job["external_id"].startswith("pwj_")
    assert sim_counters(simulator)["webhook_requests"] == 2  # refused once, then sent once


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


MAYBE = "QualityMax may or may not have received the job: check it there before submitting again"


def test_a_500_to_a_submit_is_a_502_and_an_error_job_sent_once(
    write_config: Callable[[str], Path], app_env: dict[str, str], simulator: SimulatorProcess
) -> None:
    httpx.post(f"{simulator.url}/_simulator/faults", json={"status": 500, "count": 3})
    with client_with(write_config, app_env) as client:
        answer = client.post("/api/jobs", json=JOB, headers=AUTH)
        shown = client.get("/api/jobs", headers=AUTH).json()["items"][0]
    assert answer.status_code == 502
    assert MAYBE in answer.json()["detail"]
    assert shown["state"] == "error" and shown["error"].endswith(MAYBE)
    assert sim_counters(simulator)["webhook_requests"] == 1


def test_a_submit_that_times_out_is_recorded_as_error_and_sent_once(
    write_config: Callable[[str], Path], env: dict[str, str], tmp_path: Path
) -> None:
    silent = HttpSink()
    silent.default = lambda n, r: Answer(hang=True)
    config = load_config(write_config(""), {**env, "RECEIVER_PUBLIC_URL": "http://127.0.0.1:9"})
    settings = QualityMaxSettings(
        base_url=silent.base_url, api_key="qm-key", webhook_secret="s", partner_slug="acme"
    )
    policy = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, wait_jitter=0)
    partner = qm.QualityMax(settings, timeout=0.3, policy=policy)

    async def submit() -> tuple[MaybeReceived, views.JobView]:
        with opened(Path(config.db_path)) as database:
            submission = jobs.Submission(database, config, {"qualitymax": partner})
            with pytest.raises(MaybeReceived) as caught:
                await submission.submit(msgspec.convert(JOB, qm.QualityMaxJob))
            job_id = caught.value.job_id
            assert job_id is not None
            return caught.value, database.read(lambda tx: views.job_view(tx, job_id))

    try:
        failed, shown = asyncio.run(submit())
        posted = silent.to("/api/webhooks/acme")
    finally:
        silent.close()
    assert str(failed).endswith(f"(job {shown.id} recorded as error)")
    assert shown.state == "error" and shown.error is not None and shown.error.endswith(MAYBE)
    assert len(posted) == 1
