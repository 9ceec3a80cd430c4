"""Issue 21 end to end, in process against the simulators: a SAST scan submitted, polled, routed
by kind and min_severity to a PR findings table and a red receiver/sast status; a QualGent run
of three test cases, a job each, shown with their device; a failed QualityMax result's logs
fetched after it and folded into the PR comment; the artifact redirect for signed-in callers
only; re-runs; and links that never need the partner's key."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import load_config
from receiver.signatures import sign
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualitymax as qm_sim
from receiver.simulator.common import Served
from tests.conftest import SECRET, signed
from tests.sims import qualgent_sim
from tests.sinks import GITHUB_TOKEN, FakeGithub, HttpSink

__all__ = ["qualgent_sim"]

QM_KEY = "qm-e2e-key"
PUBLIC = "https://receiver.example.com"
REPO = "acme/shop"
AUTH = {"Authorization": "Bearer test-api-token"}


def pr(number: int) -> dict[str, Any]:
    return {"repository": REPO, "pr_number": number, "sha": f"{number:040x}", "branch": "feat/x"}


@pytest.fixture
def partner() -> Iterator[Served]:
    settings = qm_sim.SimulatorSettings(api_key=QM_KEY, webhook_secret=SECRET, delay=0.05)
    with Served(qm_sim.create_simulator(settings)) as served:
        yield served


ROUTES = """
[delivery]
backoff = [0.1]
[[routes]]
name = "security"
when = {{ kind = "sast", min_severity = "high" }}
notify = ["github://pr-comment", "github://commit-status", "{chat}"]
[[routes]]
name = "critical only"
when = {{ kind = "sast", min_severity = "critical" }}
notify = ["{critical}"]
[[routes]]
name = "tests"
when = {{ kind = "tests" }}
notify = ["github://pr-comment", "github://commit-status", "{chat}"]
"""


@pytest.fixture
def app(
    write_config: Callable[[str], Path],
    env: dict[str, str],
    partner: Served,
    qualgent_sim: Served,
    sink: HttpSink,
    github: FakeGithub,
) -> Callable[..., TestClient[Any]]:
    def make(public_url: str | None = PUBLIC) -> TestClient[Any]:
        text = (
            f'[qualitymax]\nbase_url = "{partner.url}"\npoll_seconds = 0.1\n'
            f'[qualgent]\nbase_url = "{qualgent_sim.url}"\npoll_seconds = 0.1\n'
            + ROUTES.format(chat=sink.url("/chat"), critical=sink.url("/critical"))
        )
        keys = {
            "QUALITYMAX_API_KEY": QM_KEY,
            "QUALITYMAX_PARTNER_SLUG": "acme",
            "QUALGENT_API_KEY": gent_sim.API_KEY,
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "GITHUB_API_URL": github.url,
            **({"RECEIVER_PUBLIC_URL": public_url} if public_url else {}),
        }
        return TestClient(create_app(load_config(write_config(text), {**env, **keys})))

    return make


def until(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "the state never came"
        time.sleep(0.05)
    return found


def ended(client: TestClient[Any], job_id: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        return job if job["result"] is not None else None

    found: dict[str, Any] = until(check)
    return found


def comment(github: FakeGithub, number: int, containing: str) -> str:
    def check() -> str | None:
        found = [c.body for c in github.markers(REPO, number) if containing in c.body]
        return found[0] if found else None

    body: str = until(check)
    return body


def statuses(github: FakeGithub, number: int) -> list[dict[str, Any]]:
    return github.statuses.get(f"{number:040x}", [])


# -- SAST ----------------------------------------------------------------------------------------


def test_a_failing_sast_scan_is_routed_to_a_findings_table_and_a_red_status(
    app: Callable[..., TestClient[Any]], github: FakeGithub, sink: HttpSink
) -> None:
    with app() as client:
        body = {"kind": "sast", "repository_id": 43, "custom_data": pr(7)}
        answer = client.post("/api/jobs", json=body, headers=AUTH)
        assert answer.status_code == 201, answer.text
        assert (answer.json()["state"], answer.json()["external_kind"]) == (
            "submitted",
            "sast_scan",
        )
        job = ended(client, answer.json()["id"])
        result = job["result"]
        assert (job["state"], result["kind"], result["status"]) == ("failed", "sast", "failed")
        assert result["security"]["counts"] == {"critical": 1, "high": 2, "medium": 1, "low": 1}
        text = comment(github, 7, "hardcoded-secret")
        status = until(lambda: [s for s in statuses(github, 7) if s["context"] == "receiver/sast"])
        explained = client.get(f"/api/results/{result['id']}/explain", headers=AUTH).json()
    assert (
        "| critical | hardcoded-secret | src/config.py | 8 | CWE-798 | Hard-coded API secret |"
        in text
    )
    rows = [line for line in text.splitlines() if line.startswith("| ") and "CWE-" in line]
    assert [r.split(" | ")[0] for r in rows] == [
        "| critical",
        "| high",
        "| high",
        "| medium",
        "| low",
    ]
    assert "SAST failed: 1 critical, 2 high, 1 medium, 1 low" in text
    assert status[-1]["state"] == "failure"
    assert status[-1]["description"] == "SAST failed: 1 critical, 2 high, 1 medium, 1 low"
    assert status[-1]["target_url"] == f"{PUBLIC}/results/{result['id']}"  # no report: ours
    chat = until(lambda: sink.to("/chat"))[0].json()
    assert "SAST failed" in chat["title"] and "hardcoded-secret" in chat["message"]
    assert until(lambda: sink.to("/critical"))  # a critical finding: that route matched too
    assert [d["route"] for d in explained["routes"] if d["matched"]] == [
        "security",
        "critical only",
    ]


def test_a_passing_scan_reaches_only_the_routes_its_worst_finding_meets(
    app: Callable[..., TestClient[Any]], github: FakeGithub, sink: HttpSink
) -> None:
    with app() as client:
        body = {"kind": "sast", "repository_id": 42, "engines": ["semgrep"], "custom_data": pr(8)}
        job = ended(client, client.post("/api/jobs", json=body, headers=AUTH).json()["id"])
        explained = client.get(f"/api/results/{job['result']['id']}/explain", headers=AUTH)
        until(lambda: sink.to("/chat"))
    assert job["state"] == "passed"  # verdict pass, although it has a high finding
    decisions = {d["route"]: d for d in explained.json()["routes"]}
    assert decisions["security"]["matched"] is True
    miss = decisions["critical only"]["miss"]
    assert (miss["key"], miss["wanted"], miss["seen"]) == ("min_severity", "critical", "high")
    assert decisions["tests"]["miss"]["key"] == "kind"
    assert sink.to("/critical") == []


def test_a_gap_analysis_is_stored_with_its_tests_per_category(
    app: Callable[..., TestClient[Any]],
) -> None:
    with app() as client:
        body = {
            "kind": "gap_analysis",
            "repository_id": 42,
            "categories": ["e2e", "security", "integration"],
            "max_tests_per_category": 3,
        }
        answer = client.post("/api/jobs", json=body, headers=AUTH)
        assert answer.json()["external_kind"] == "gap_analysis", answer.text
        job = ended(client, answer.json()["id"])
    result = job["result"]
    assert (result["kind"], result["status"], result["total"]) == ("gap_analysis", "passed", 9)
    assert result["coverage"]["categories"] == {"e2e": 3, "security": 3, "integration": 3}


def test_post_api_jobs_without_kind_is_the_webhook_as_before(
    app: Callable[..., TestClient[Any]], partner: Served
) -> None:
    with app() as client:
        body = {"url": "https://preview.example.com", "feature_description": "log in",
                "repository_id": 42}  # fmt: skip
        refused = client.post("/api/jobs", json=body, headers=AUTH)
        odd = client.post("/api/jobs", json={"kind": "dast", "repository_id": 1}, headers=AUTH)
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("repository_id: is for kind sast, not tests")
    assert odd.status_code == 400 and "kind" in odd.json()["detail"]


# -- QualGent: three test cases in one run --------------------------------------------------------


def test_a_qualgent_run_of_three_test_cases_is_three_jobs_shown_with_their_device(
    app: Callable[..., TestClient[Any]], github: FakeGithub, qualgent_sim: Served
) -> None:
    device = {"name": "Pixel 8", "platform": "android", "os_version": "14"}
    jobs = [
        {"test_case_id": case, "app_file_id": "latest", "device": device}
        for case in ("tc_pass", "tc_fail", "tc_passed_form")
    ]
    with app() as client:
        body = {"provider": "qualgent", "jobs": jobs, "custom_data": pr(9)}
        answer = client.post("/api/jobs", json=body, headers=AUTH)
        assert answer.status_code == 201, answer.text
        ids = answer.json()["jobs"]
        assert len(ids) == 3 and ids[0] == answer.json()["id"]
        done = [ended(client, job_id) for job_id in ids]
        text = comment(github, 9, "Profile Test · Pixel 8 · Android 14")
        rerun = client.post(f"/api/jobs/{ids[1]}/rerun", headers=AUTH)
        again = ended(client, rerun.json()["id"])
    assert [j["state"] for j in done] == ["passed", "failed", "passed"]
    assert len({j["external_id"] for j in done}) == 3
    tests = [j["result"]["tests"][0] for j in done]
    assert {(t["device"], t["platform"], t["progress"]) for t in tests} == {
        ("Pixel 8", "Android 14", 100.0)
    }
    for name in ("Login Flow Test", "Payment Flow Test", "Profile Test"):
        assert f"{name} · Pixel 8 · Android 14" in text  # a row each, with where it ran
    assert text.count("<!-- receiver:pr-comment -->") == 1
    # The re-run of one test case is that test case alone, linked to its job.
    assert (rerun.status_code, again["rerun_of"]) == (201, ids[1])
    assert again["result"]["tests"][0]["name"] == "Payment Flow Test"


def test_more_test_cases_than_the_document_allows_are_refused_before_sending(
    app: Callable[..., TestClient[Any]], qualgent_sim: Served
) -> None:
    job = {"test_case_id": "tc_pass", "app_file_id": "latest", "device": gent_sim.DEVICE}
    with app() as client:
        answer = client.post(
            "/api/jobs", json={"provider": "qualgent", "jobs": [job] * 11}, headers=AUTH
        )
        sideways = {**job, "device": {**gent_sim.DEVICE, "orientation": "diagonal"}}
        turned = client.post(
            "/api/jobs", json={"provider": "qualgent", "jobs": [sideways]}, headers=AUTH
        )
    assert answer.status_code == 400
    assert answer.json()["detail"] == "jobs: 11 test cases; QualGent runs 1 to 10 at once"
    assert turned.status_code == 400 and "orientation" in turned.json()["detail"]
    assert httpx.get(f"{qualgent_sim.url}/_sim/stats").json()["admitted"].get("all", 0) == 0


# -- QualityMax artifacts ------------------------------------------------------------------------


def partner_callback(partner: Served, outcome: str, custom_data: dict[str, Any]) -> bytes:
    """A job run at the simulator; the signed callback it posts, as receiver would get it."""
    capture = HttpSink()
    try:
        body = json.dumps(
            {
                "url": "https://preview.example.com",
                "feature_description": "log in",
                "callback_url": f"{capture.base_url}/cb",
                "custom_data": {**custom_data, "simulate": outcome},
            }
        ).encode()
        headers = {
            "X-QualityMax-API-Key": QM_KEY,
            "X-Partner-Signature": sign(body, SECRET),
            "Content-Type": "application/json",
        }
        httpx.post(f"{partner.url}/api/webhooks/acme", content=body, headers=headers)
        capture.wait_for(lambda: bool(capture.to("/cb")))
        return capture.to("/cb")[0].body
    finally:
        capture.close()


def test_a_failed_results_logs_are_fetched_and_folded_into_the_pr_comment(
    app: Callable[..., TestClient[Any]], partner: Served, github: FakeGithub
) -> None:
    body = partner_callback(partner, "failed", pr(11))
    with app() as client:
        taken = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
        result_id = taken.json()["result_id"]

        def logs() -> str | None:
            shown = client.get(f"/api/results/{result_id}", headers=AUTH).json()
            return next((t["logs"] for t in shown["tests"] if t["logs"]), None)

        fetched = until(logs)
        text = comment(github, 11, "<details><summary>Logs: Dashboard shows the task sections")
        execution = json.loads(body)["results"]["tests"][1]["execution_id"]
        shot = client.get(
            f"/api/artifacts/{execution}/screenshot", headers=AUTH, follow_redirects=False
        )
        anonymous = client.get(f"/api/artifacts/{execution}/video", follow_redirects=False)
        unknown = client.get("/api/artifacts/exec_other/video", headers=AUTH)
    assert "Expected 4 task sections" in fetched and "FAIL dashboard" in fetched
    assert "```text\nerror: Expected 4 task sections" in text
    assert shot.status_code == 302
    assert (
        shot.headers["location"]
        == f"{partner.url}/static/test-executions/{execution}/screenshot.png"
    )
    assert QM_KEY not in shot.headers["location"]
    assert anonymous.status_code == 401  # signed-in callers only
    assert unknown.status_code == 404  # only executions of stored results


@pytest.mark.parametrize("public_url", [PUBLIC, None])
def test_a_result_without_a_report_never_links_the_partners_keyed_report(
    app: Callable[..., TestClient[Any]],
    partner: Served,
    github: FakeGithub,
    sink: HttpSink,
    public_url: str | None,
) -> None:
    """No report_app_url: no "Full report", the result's page in receiver when public_url is
    set, else no link; never /api/v1/partner/jobs/{id}/report, which answers 401 without the
    key."""
    number = 12 if public_url else 13
    body = partner_callback(partner, "error", pr(number))
    assert "report_app_url" not in json.loads(body)["results"]
    with app(public_url) as client:
        result_id = client.post("/callbacks/qualitymax", content=body, headers=signed(body)).json()[
            "result_id"
        ]
        text = comment(github, number, f"result #{result_id}")
        status = until(lambda: statuses(github, number))[-1]
        chat = until(lambda: sink.to("/chat"))[0].json()["message"]
    page = f"{PUBLIC}/results/{result_id}"
    for shown in (text, chat, json.dumps(status)):
        assert "/api/v1/partner" not in shown
    assert "Full report" not in text and "Full report" not in chat
    if public_url:
        assert f"[Open in receiver]({page})" in text and page in chat
        assert status["target_url"] == page
    else:
        assert "Open in receiver" not in text and "Open in receiver" not in chat
        assert "target_url" not in status


# -- re-runs -------------------------------------------------------------------------------------


def test_a_rerun_of_a_request_with_a_password_needs_it_again(
    app: Callable[..., TestClient[Any]], partner: Served
) -> None:
    login = {"type": "user_login", "username": "qa@example.com", "password": "s3cret"}
    body = {"url": "https://preview.example.com", "feature_description": "log in", "auth": login}
    with app() as client:
        first = client.post("/api/jobs", json=body, headers=AUTH).json()
        missing = client.post(f"/api/jobs/{first['id']}/rerun", headers=AUTH)
        given = client.post(
            f"/api/jobs/{first['id']}/rerun", json={"auth": {"password": "s3cret"}}, headers=AUTH
        )
        nothing = client.post("/api/jobs/999/rerun", headers=AUTH)
        anonymous = client.post(f"/api/jobs/{first['id']}/rerun")
        stored = client.get(f"/api/jobs/{given.json()['id']}", headers=AUTH).json()
    assert missing.status_code == 400
    assert missing.json()["detail"].startswith("auth.password: job ")
    assert given.status_code == 201, given.text
    assert given.json()["rerun_of"] == first["id"] and stored["rerun_of"] == first["id"]
    assert "s3cret" not in json.dumps(stored)
    assert (nothing.status_code, anonymous.status_code) == (404, 401)
