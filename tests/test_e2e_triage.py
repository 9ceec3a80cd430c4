"""Triage end to end: signed callbacks into the app, labels out through ``GET /api/flaky``, the
results API, and a real ``receiver serve``'s chat message, pull-request comment and commit
status."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import load_config
from receiver.process import ServiceProcess
from tests.conftest import callback_body, signed
from tests.sinks import GITHUB_TOKEN, FakeGithub, HttpSink

REPO = "acme/shop"
PR = 42
NAMES = ("Login", "Dashboard", "Logout")


def callback(sha: str, failing: tuple[str, ...] = (), branch: str = "feat/login") -> bytes:
    """QualityMax's callback for the three tests at ``sha``, ``failing`` those named."""
    tests = [
        {
            "test": name,
            "status": "failed" if name in failing else "passed",
            "duration_ms": 1500,
            "error": f"{name} did not finish" if name in failing else None,
        }
        for name in NAMES
    ]
    return callback_body(
        job_id=f"job-{sha}-{'-'.join(failing)}-{time.monotonic_ns()}",
        custom_data={"repository": REPO, "branch": branch, "sha": sha, "pr_number": PR},
        results={
            "status": "failed" if failing else "passed",
            "total_tests": len(tests),
            "passed": len(tests) - len(failing),
            "failed": len(failing),
            "duration_ms": 4500,
            "tests": tests,
        },
    )


# -- GET /api/flaky, in process ------------------------------------------------------------------


@pytest.fixture
def triage_client(
    write_config: Callable[[str], Path], env: dict[str, str]
) -> Iterator[TestClient[Any]]:
    config = load_config(write_config("[triage]\nwindow = 3\n"), env)
    with TestClient(create_app(config)) as client:
        yield client


def test_api_flaky_lists_a_test_then_drops_it_after_a_window_of_clean_runs(
    triage_client: TestClient[Any], auth: dict[str, str]
) -> None:
    def post(data: bytes) -> None:
        response = triage_client.post("/callbacks/qualitymax", content=data, headers=signed(data))
        assert response.status_code == 200, response.text

    def flaky() -> list[dict[str, Any]]:
        response = triage_client.get("/api/flaky", headers=auth)
        assert response.status_code == 200
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    assert flaky() == []
    post(callback("aaaa0001", ("Logout",)))
    assert flaky() == []  # one failure: new, not flaky
    post(callback("aaaa0001"))  # the same commit passes: flaky
    (listed,) = flaky()
    assert {k: listed[k] for k in ("test", "provider", "repository", "runs", "failures")} == {
        "test": "Logout",
        "provider": "qualitymax",
        "repository": REPO,
        "runs": 2,
        "failures": 1,
    }
    # Both runs flipped: the first failed where the branch started passing (from main).
    assert listed["flake_rate"] == 1.0 and listed["same_commit_failures"] == 1
    assert listed["last_failure"] <= listed["last_seen"]
    assert re.fullmatch(r"[0-9a-f]{16}", listed["test_id"])
    other = triage_client.get("/api/flaky", params={"repository": "acme/web"}, headers=auth)
    assert other.json() == {"items": []}
    post(callback("aaaa0002"))
    assert [t["test"] for t in flaky()] == ["Logout"]  # 2 clean runs of a window of 3
    post(callback("aaaa0003"))
    assert flaky() == []  # 3 clean runs: off the list
    assert triage_client.get("/api/flaky").status_code == 401  # bearer, like all of /api


def test_the_results_api_carries_the_labels(
    triage_client: TestClient[Any], auth: dict[str, str]
) -> None:
    for data in (callback("bbbb0001", ("Login",)), callback("bbbb0002", ("Login", "Logout"))):
        response = triage_client.post("/callbacks/qualitymax", content=data, headers=signed(data))
        assert response.status_code == 200
    page = triage_client.get("/api/results", headers=auth).json()
    assert [r["labels"] for r in page["items"]] == [
        {"new": 1, "still failing": 1},
        {"new": 1},
    ]
    detail = triage_client.get(f"/api/results/{page['items'][0]['id']}", headers=auth).json()
    by_name = {t["name"]: (t["label"], t["triage"]) for t in detail["tests"]}
    assert by_name == {
        "Login": ("still failing", {"since": "bbbb0001", "runs": 2}),
        "Dashboard": (None, None),
        "Logout": ("new", None),
    }


# -- a real receiver serve -----------------------------------------------------------------------


def until(test: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        time.sleep(0.05)


def test_chat_message_pr_comment_and_commit_status_show_the_labels(
    tmp_path: Path, env: dict[str, str], sink: HttpSink, github: FakeGithub
) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text(
        f"""
[delivery]
backoff = [0.2]
timeout_seconds = 5

[triage]
flaky_is_green = true

[[routes]]
name = "chat"
notify = ["{sink.url("/chat")}"]

[[routes]]
name = "pull requests"
notify = ["github://pr-comment", "github://commit-status"]
"""
    )
    env = {**env, "GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": github.url}
    service = ServiceProcess(config, env, tmp_path / "serve.log").start()
    try:
        history = [
            callback("9f3c2a1d", branch="main"),  # main passes everything
            callback("4b1e7c0a", ("Logout",)),  # the pull request: Logout fails...
            callback("4b1e7c0a"),  # ...and passes on a re-run of that commit: flaky
            callback("e5a8d3f9", ("Dashboard", "Logout")),  # Dashboard new, Logout flaky
            callback("77aa55cc", ("Logout",)),  # Dashboard fixed; only the flaky one fails
        ]
        for data in history:
            answer = httpx.post(
                f"{service.url}/callbacks/qualitymax", content=data, headers=signed(data)
            )
            assert answer.status_code == 200, answer.text
        until(lambda: len(sink.delivered("/chat")) == len(history), "every chat message")
        until(lambda: len(github.statuses.get("77aa55cc", [])) == 1, "the last commit status")
        until(lambda: "receiver:result 5 -->" in comment(github), "the comment of the last")
        comment_of_4 = github_comment_history(github)
    finally:
        service.stop()

    chats = {message_id(r.json()): r.json() for r in sink.delivered("/chat")}
    assert chats[4]["title"] == "❌ 2 of 3 tests failed: 1 new, 1 flaky · feat/login"
    # json:// renders plain text: the label, then the test as before.
    assert "- new · Dashboard (1.5s): Dashboard did not finish" in chats[4]["message"]
    assert "- flaky · Logout (1.5s): Logout did not finish" in chats[4]["message"]
    assert chats[5]["title"] == "❌ 1 of 3 tests failed: 1 flaky; 1 fixed · feat/login"
    assert "Fixed: Dashboard" in chats[5]["message"]
    assert chats[3]["title"] == "✅ 3 of 3 tests passed, 1 fixed · feat/login"

    # The pull request's comment, as GitHub held it for result 4, then for result 5.
    assert "#### New (1)\n\n- **Dashboard** (1.5s): Dashboard did not finish" in comment_of_4
    assert "#### Flaky (1)\n\n- **Logout** (1.5s): Logout did not finish" in comment_of_4
    flake = "_flaky: failed 2 of its last 4 runs, 1 time on a commit where it also passed_"
    assert flake in comment_of_4
    last = comment(github)
    assert "#### Fixed (1)\n\n- **Dashboard** (1.5s)<br>\n  _fixed after failing 1 run_" in last
    assert "_flaky: failed 3 of its last 5 runs, 1 time on a commit where it also passed_" in last

    # flaky_is_green: result 5 failed only by a flaky test, so its commit is green; result 4
    # also failed by a new one, so its commit is not.
    assert github.statuses["e5a8d3f9"][-1]["state"] == "failure"
    (green,) = github.statuses["77aa55cc"]
    assert (green["state"], green["description"]) == ("success", "2/3 passed, 1 flaky")


def comment(github: FakeGithub) -> str:
    found = github.markers(REPO, PR)
    return found[-1].body if found else ""


def github_comment_history(github: FakeGithub) -> str:
    """The comment's body as the PATCH for result 4 set it (the stand-in keeps the latest)."""
    with github.sink.lock:
        received = list(github.sink.received)
    for request in received:
        if request.method in ("POST", "PATCH") and "/comments" in request.path:
            body = json.loads(request.body)["body"]
            if "receiver:result 4 -->" in body:
                return str(body)
    raise AssertionError("no comment was written for result 4")


def message_id(payload: dict[str, Any]) -> int:
    match = re.search(r"result #(\d+)", payload["message"])
    assert match is not None
    return int(match.group(1))
