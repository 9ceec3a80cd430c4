"""receiver explain / GET /api/results/{id}/explain: the routing decision recorded when the
result was routed, then its deliveries and every attempt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.cli import main
from receiver.explain import Explanation, explain
from tests.conftest import TOKEN
from tests.notify_helpers import Harness, all_final, make_config, result
from tests.sinks import HttpSink, fail_then_ok

ROUTES = (
    '\n[[routes]]\nname = "main failures"\nwhen = { status = "failed", branch = "main" }\n'
    'notify = ["{main}"]\n'
    '\n[[routes]]\nname = "changes"\nnotify = ["{change}"]\non_change = true\n'
    'group_by = ["branch"]\n'
)


def explained(tmp_path: Path, sink: HttpSink) -> tuple[Path, list[Explanation]]:
    sink.on("/change", fail_then_ok(1))
    routes = ROUTES.replace("{main}", sink.url("/main")).replace("{change}", sink.url("/change"))
    config = make_config(tmp_path, routes)

    async def run() -> list[Explanation]:
        async with Harness(config) as h:
            first = await h.add(result("failed"))  # feat/login: a new failure of its group
            await h.settle(all_final)
            second = await h.add(result("failed"))  # the same status again: held
            await h.settle(all_final)
            return [h.store.read(lambda tx, r=r: explain(tx, r)) for r in (first, second)]  # type: ignore[misc]

    return tmp_path / "notify.toml", asyncio.run(run())


def test_matched_unmatched_and_held_routes_are_explained(sink: HttpSink, tmp_path: Path) -> None:
    _, (first, second) = explained(tmp_path, sink)
    unmatched, matched = first.routes
    assert (unmatched.route, unmatched.matched) == ("main failures", False)
    assert unmatched.miss is not None
    assert (unmatched.miss.key, unmatched.miss.wanted, unmatched.miss.seen) == (
        "branch",
        "main",
        "feat/login",
    )
    assert matched.matched and matched.on_change is not None and matched.on_change.spoke
    assert matched.on_change.reason == "first result of its group"
    assert first.verdict == "Notified 1 target(s): 1 sent"
    (delivery,) = first.deliveries
    assert [(a.attempt, a.state, a.answer) for a in delivery.log] == [
        (1, "pending", "HTTP 500"),
        (2, "sent", "ok"),
    ]
    assert delivery.log[0].error is not None and "error=500" in delivery.log[0].error
    held = second.routes[1].on_change
    assert held is not None and not held.spoke
    assert (held.previous_result_id, held.previous_status, held.reason) == (
        1,
        "failed",
        "status still failed",
    )
    assert second.verdict == "Silent: on_change held it (changes)"
    assert second.deliveries == []


def test_receiver_explain_prints_the_decisions(sink: HttpSink, tmp_path: Path) -> None:
    config_file, _ = explained(tmp_path, sink)
    env = {"RECEIVER_DB": str(tmp_path / "notify.db")}
    out = CliRunner().invoke(main, ["explain", "2", "--config", str(config_file)], env=env)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[1:] == [
        "Silent: on_change held it (changes)",
        "",
        "routes:",
        '  main failures: did not match: when.branch wants "main", the result has "feat/login"',
        "  changes: matched",
        "    on_change held it: status still failed (previous result #1: failed); group "
        '["qualitymax","feat/login"]',
        "deliveries: none",
    ]
    first = CliRunner().invoke(main, ["explain", "1", "--config", str(config_file)], env=env)
    assert "    attempt 1 at " in first.output and "-> pending HTTP 500: " in first.output
    missing = CliRunner().invoke(main, ["explain", "99", "--config", str(config_file)], env=env)
    assert (missing.exit_code, missing.output) == (1, "Error: No result 99\n")


def test_the_api_explains_with_the_bearer_token(sink: HttpSink, tmp_path: Path) -> None:
    explained(tmp_path, sink)
    routes = ROUTES.replace("{main}", sink.url("/main")).replace("{change}", sink.url("/change"))
    config = make_config(tmp_path, routes)
    with TestClient(create_app(config)) as client:
        assert client.get("/api/results/2/explain").status_code == 401
        answer = client.get("/api/results/2/explain", headers={"Authorization": f"Bearer {TOKEN}"})
        missing = client.get(
            "/api/results/99/explain", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 200
    body = answer.json()
    assert body["verdict"] == "Silent: on_change held it (changes)"
    assert body["routes"][0]["miss"] == {"key": "branch", "wanted": "main", "seen": "feat/login"}
    assert body["routes"][1]["on_change"]["previous_result_id"] == 1
    assert missing.status_code == 404
