"""`receiver deliveries`, `receiver redeliver` and `check-config` with routes, via CliRunner."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.config import Config
from receiver.store import open_store
from tests.conftest import SECRET, callback_body
from tests.notify_helpers import Harness, all_final, make_config, result, route
from tests.sinks import HttpSink, always

PASSWORD = "hunter2-very-secret"


@pytest.fixture
def outbox(sink: HttpSink, tmp_path: Path) -> Config:
    """A database with one sent and one dead delivery."""
    sink.on("/gone", always(404))
    ok = f"json://bot:{PASSWORD}@127.0.0.1:{sink.port}/hook"
    config = make_config(tmp_path, route("all", ok, sink.url("/gone")))

    async def run() -> None:
        async with Harness(config) as h:
            await h.add(result())
            await h.settle(all_final)

    asyncio.run(run())
    return config


def invoke(config: Config, *args: str) -> tuple[int, str]:
    env = {"QUALITYMAX_WEBHOOK_SECRET": SECRET, "RECEIVER_DB": config.db_path}
    outcome = CliRunner().invoke(main, [*args, "--config", config.source], env=env)
    return outcome.exit_code, outcome.output


def test_deliveries_table_masks_targets(outbox: Config, sink: HttpSink) -> None:
    code, output = invoke(outbox, "deliveries")
    assert code == 0
    lines = output.splitlines()
    assert lines[0].split() == [
        "id",
        "state",
        "attempts",
        "result",
        "route",
        "target",
        "when",
        "last",
        "error",
    ]
    assert lines[1].split()[:6] == [
        "2",
        "dead",
        "1",
        "1",
        "all",
        f"json://127.0.0.1:{sink.port}/gone",
    ]
    assert "permanent refusal" in lines[1]
    assert lines[2].split()[:6] == [
        "1",
        "sent",
        "1",
        "1",
        "all",
        f"json://bot:****@127.0.0.1:{sink.port}/hook",
    ]
    assert PASSWORD not in output


def test_deliveries_failed_and_json(outbox: Config) -> None:
    code, output = invoke(outbox, "deliveries", "--failed", "--json")
    assert code == 0
    (item,) = json.loads(output)
    assert (item["id"], item["state"]) == (2, "dead")
    assert item["last_error"].startswith("permanent refusal: ")


def test_redeliver(outbox: Config, sink: HttpSink) -> None:
    code, output = invoke(outbox, "redeliver", "2")
    assert (code, output) == (
        0,
        f"delivery 2 to json://127.0.0.1:{sink.port}/gone is pending again (attempts reset)\n",
    )
    code, output = invoke(outbox, "deliveries", "--state", "pending", "--json")
    assert [(d["id"], d["attempts"]) for d in json.loads(output)] == [(2, 0)]


def test_redeliver_unknown(outbox: Config) -> None:
    assert invoke(outbox, "redeliver", "99") == (
        1,
        "Error: No delivery 99: `receiver deliveries` lists them\n",
    )


def test_empty_outbox(tmp_path: Path) -> None:
    config = make_config(tmp_path, "")
    open_store(config.db_path).close()  # as receiver serve leaves it
    assert invoke(config, "deliveries") == (0, "no deliveries\n")


def test_a_missing_database_is_refused_not_made(tmp_path: Path) -> None:
    config = make_config(tmp_path, "")
    expected = (
        f"Error: No database at {config.db_path}: pass --config or set RECEIVER_DB to the "
        "service's database (it is created by receiver serve)\n"
    )
    assert invoke(config, "deliveries") == (1, expected)
    assert invoke(config, "redeliver", "1") == (1, expected)
    assert not Path(config.db_path).exists()


def test_check_config_shows_routes_masked(tmp_path: Path) -> None:
    routes = route(
        "failures",
        f"json://bot:{PASSWORD}@127.0.0.1:9/hook",
        when='{ status = ["failed", "error"], branch = "feat/*" }',
        extra='on_change = true\ngroup_by = ["branch"]',
    )
    code, output = invoke(make_config(tmp_path, routes), "check-config")
    assert code == 0
    assert (
        "  - failures: 1 target(s)\n"
        '      when: {"status": ["failed", "error"], "branch": "feat/*"}\n'
        "      on_change: yes, grouped by branch\n"
        "      -> json://bot:****@127.0.0.1:9/hook\n"
    ) in output
    assert PASSWORD not in output


def test_check_config_refuses_a_typo_in_a_target(tmp_path: Path) -> None:
    config = make_config(tmp_path, route("prs", "github://pr-coment"))
    assert invoke(config, "check-config") == (
        1,
        "Error: route 'prs': unknown GitHub target 'github://pr-coment'; "
        "use github://pr-comment or github://commit-status\n",
    )


def test_check_config_result_prints_what_a_callback_reaches(tmp_path: Path) -> None:
    routes = (
        route("failures", "json://127.0.0.1:9/fail", when='{ status = "failed" }')
        + route("feature branches", "json://127.0.0.1:9/feat", when='{ branch = "feat/*" }')
        + route("main", "json://127.0.0.1:9/main", when='{ branch = "main" }')
    )
    body = tmp_path / "callback.json"
    body.write_bytes(callback_body())
    code, output = invoke(make_config(tmp_path, routes), "check-config", "--result", str(body))
    assert (code, output) == (
        0,
        "result: passed (qualitymax, event test_results, feat/new-feature)\n"
        "reaches 1 route(s):\n"
        "  - feature branches\n"
        "      -> json://127.0.0.1:9/feat\n",
    )
    body.write_bytes(b"[1, 2]")
    code, output = invoke(make_config(tmp_path, routes), "check-config", "--result", str(body))
    assert (code, output) == (
        1,
        f"Error: {body}: The body is JSON but not an object; send a JSON object\n",
    )


def test_commands_have_help_with_an_example() -> None:
    for command in ("deliveries", "redeliver", "check-config"):
        output = CliRunner().invoke(main, [command, "--help"]).output
        assert "Example:" in output, command


def test_serve_refuses_to_start_with_a_wrong_route(tmp_path: Path) -> None:
    config = make_config(tmp_path, route("chat", "slakc://T1/B1/C1"))
    code, output = invoke(config, "serve", "--port", "1")
    assert code == 1
    assert output.startswith("Error: route 'chat': Apprise cannot use the target starting 'slakc'")
