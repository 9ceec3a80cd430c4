"""The issue's "done when", through the app: a failed result reaches a chat webhook and an inbox
once each, the pull request keeps one comment that turns from red to green, the commit status
flips, on_change stays quiet on repeats, and a dead delivery is replayed from the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.cli import main
from tests.conftest import SECRET, callback_body, signed
from tests.notify_helpers import make_config, route
from tests.sinks import FakeGithub, HttpSink, always, mailto, smtp_server

SHA = "feedface" * 5
PR = {
    "branch": "feat/login",
    "deploy_id": "abc-123",
    "repository": "acme/shop",
    "pr_number": 7,
    "sha": SHA,
}


def body(status: str, run: int) -> bytes:
    failed = 2 if status == "failed" else 0
    tests = [
        {
            "test": f"Test {i}",
            "status": "failed" if i < failed else "passed",
            "duration_ms": 1000 + i,
            "error": "Expected dashboard, got /login" if i < failed else None,
            "screenshot_url": f"https://example.com/shot-{i}.png",
        }
        for i in range(14)
    ]
    return callback_body(
        custom_data={**PR, "run": run},
        results={
            "status": status,
            "total_tests": 14,
            "passed": 14 - failed,
            "failed": failed,
            "duration_ms": 54600,
            "report_app_url": "https://app.qualitymax.io/#/projects/137",
            "tests": tests,
            "failures": [],
        },
    )


def wait(test: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_done_when(
    sink: HttpSink, github: FakeGithub, tmp_path: Path, auth: dict[str, str]
) -> None:
    sink.on("/broken", always(410))
    with smtp_server() as (inbox, port):
        routes = (
            route(
                "failures", sink.url("/chat"), mailto(port), when='{ status = ["failed", "error"] }'
            )
            + route(
                "pull requests",
                "github://pr-comment",
                "github://commit-status",
                when='{ has = ["pr_number"] }',
            )
            + route(
                "changes", sink.url("/changes"), extra='on_change = true\ngroup_by = ["branch"]'
            )
            + route("broken", sink.url("/broken"), when='{ status = "passed" }')
        )
        config = make_config(tmp_path, routes, github_url=github.url)
        with TestClient(create_app(config)) as client:

            def post(status: str, run: int) -> None:
                data = body(status, run)
                response = client.post("/callbacks/qualitymax", content=data, headers=signed(data))
                assert response.status_code == 200

            def settled() -> bool:
                page = client.get("/api/deliveries", params={"limit": 500}, headers=auth).json()
                return all(d["state"] != "pending" for d in page["items"])

            post("failed", 1)
            wait(lambda: settled() and len(inbox.messages) == 1, "the failure is delivered")
            (chat,) = sink.delivered("/chat")
            # Both failures are the pull request's own: triage labels them new.
            title = "❌ 2 of 14 tests failed: 2 new · feat/login · deploy abc-123"
            assert chat.json()["title"] == title
            (comment,) = github.markers("acme/shop", 7)
            assert "❌ 2 of 14 tests failed" in comment.body
            assert github.statuses[SHA][-1]["state"] == "failure"
            assert github.statuses[SHA][-1]["description"] == "12/14 passed"

            post("failed", 2)  # a repeat: on_change stays quiet
            post("passed", 3)
            wait(lambda: settled() and len(github.statuses[SHA]) == 3, "the fix is delivered")
            (comment,) = github.markers("acme/shop", 7)
            assert "✅ 14 of 14 tests passed" in comment.body and "❌ 2 of 14" not in comment.body
            assert [s["state"] for s in github.statuses[SHA]] == ["failure", "failure", "success"]
            assert len(sink.delivered("/chat")) == 2 and len(inbox.messages) == 2  # failures only
            changes = [r.json()["title"][:1] for r in sink.delivered("/changes")]
            assert changes == ["❌", "✅"]  # run 2 repeated run 1's status

            dead = client.get("/api/deliveries", params={"state": "dead"}, headers=auth).json()
            (broken,) = dead["items"]
            assert (
                broken["last_error"].startswith("permanent refusal: ")
                and "410" in broken["last_error"]
            )

        sink.on("/broken", always(200))
        env = {"QUALITYMAX_WEBHOOK_SECRET": SECRET, "RECEIVER_DB": config.db_path}
        replay = CliRunner().invoke(
            main, ["redeliver", str(broken["id"]), "--config", config.source], env=env
        )
        assert replay.exit_code == 0, replay.output
        with TestClient(create_app(config)) as client:

            def recorded_sent() -> bool:
                # The sink has the request before the worker records the outcome: wait for both.
                params = {"state": "sent"}
                found = client.get("/api/deliveries", params=params, headers=auth).json()
                return broken["id"] in {d["id"] for d in found["items"]}

            wait(recorded_sent, "the replayed delivery is recorded sent")
            assert len(sink.delivered("/broken")) == 1
    assert json.loads(sink.delivered("/broken")[0].body)["title"].startswith(
        "✅ 14 of 14 tests passed"
    )
