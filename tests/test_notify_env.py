"""One variable to get alerts: RECEIVER_NOTIFY (and RECEIVER_NOTIFY_ALL), the environment alone
without a config file, and the one-line warning when no route exists."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.config import (
    ENVIRONMENT_ONLY,
    NOTIFY_ROUTE,
    ConfigError,
    find_config,
    load_config,
    notify_targets,
)
from receiver.preflight import NO_ROUTE
from receiver.process import ServiceProcess
from receiver.results import Result
from receiver.routing import Router
from tests.conftest import SECRET, callback_body, signed
from tests.sinks import HttpSink


def routed(env: dict[str, str], status: str) -> list[str]:
    """The routes a result of ``status`` reaches with this environment and no file."""
    router = Router.from_config(load_config(None, {"QUALITYMAX_WEBHOOK_SECRET": "s", **env}))
    result = Result(provider="qualitymax", event="test_results", status=status)
    return [reach.route for reach in router.reach(result)]


def callback_of(status: str, deploy_id: str) -> bytes:
    document = json.loads(callback_body(custom_data={"deploy_id": deploy_id}))
    document["results"]["status"] = status
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("status", "notified"),
    [("failed", True), ("error", True), ("timeout", True), ("passed", False)],
)
def test_receiver_notify_routes_failed_errored_and_timed_out_results(
    status: str, notified: bool
) -> None:
    env = {"RECEIVER_NOTIFY": "json://127.0.0.1:9/hook"}
    assert routed(env, status) == ([NOTIFY_ROUTE] if notified else [])


@pytest.mark.parametrize("status", ["passed", "failed", "canceled"])
def test_receiver_notify_all_routes_every_result(status: str) -> None:
    env = {"RECEIVER_NOTIFY": "json://127.0.0.1:9/hook", "RECEIVER_NOTIFY_ALL": "1"}
    assert routed(env, status) == [NOTIFY_ROUTE]


def test_the_notify_route_comes_after_the_files_routes(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config('[[routes]]\nname = "mine"\nnotify = ["json://127.0.0.1:9/a"]\n')
    config = load_config(path, {"RECEIVER_NOTIFY": "json://127.0.0.1:9/b"})
    assert [(r.name, r.notify) for r in config.routes] == [
        ("mine", ["json://127.0.0.1:9/a"]),
        (NOTIFY_ROUTE, ["json://127.0.0.1:9/b"]),
    ]
    assert config.routes[1].when.status == ["failed", "error", "timeout"]


def test_targets_split_on_commas_before_a_scheme_only() -> None:
    value = (
        " slack://T1/B2/C3 ,github://pr-comment,"
        "mailto://me:pw@example.com?to=a@example.com,b@example.com, "
    )
    assert notify_targets(value) == [
        "slack://T1/B2/C3",
        "github://pr-comment",
        "mailto://me:pw@example.com?to=a@example.com,b@example.com",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RECEIVER_NOTIFY": "json://x", "RECEIVER_NOTIFY_ALL": "always"},
            "RECEIVER_NOTIFY_ALL must be 1 (notify every result) or 0 (failed, errored and "
            "timed-out results), not 'always'",
        ),
        (
            {"RECEIVER_NOTIFY_ALL": "1"},
            "RECEIVER_NOTIFY_ALL is set but RECEIVER_NOTIFY is empty: set RECEIVER_NOTIFY to the "
            "targets to notify (Apprise URLs or github://...), comma-separated",
        ),
    ],
)
def test_wrong_notify_settings_say_what_to_do(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, env)
    assert str(raised.value) == message


def test_a_github_notify_target_needs_the_token() -> None:
    config = load_config(None, {"RECEIVER_NOTIFY": "github://commit-status"})
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set"):
        Router.from_config(config)


def test_no_file_at_the_default_path_means_the_environment_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {}) is None
    assert load_config(None, {}).source == ENVIRONMENT_ONLY
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "receiver.toml").write_text("")
    assert find_config(None, {}) == Path("config/receiver.toml")
    # A file that is named stays required, even where none is.
    assert find_config(None, {"RECEIVER_CONFIG": "other.toml"}) == Path("other.toml")
    assert find_config("given.toml", {}) == Path("given.toml")


def test_check_config_with_no_file_and_no_route_warns_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"QUALITYMAX_WEBHOOK_SECRET": "s", "RECEIVER_CONFIG": "", "RECEIVER_NOTIFY": ""}
    result = CliRunner().invoke(main, ["check-config"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"config: {ENVIRONMENT_ONLY}" in lines
    assert "routes: 0" in lines
    assert [line for line in lines if line.startswith("warning:")] == [f"warning: {NO_ROUTE}"]


def test_check_config_shows_the_notify_route_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": "s",
        "RECEIVER_CONFIG": "",
        "RECEIVER_NOTIFY": "json://user:hunter2@127.0.0.1:9/hook",
    }
    result = CliRunner().invoke(main, ["check-config"], env=env)
    assert result.exit_code == 0, result.output
    assert f"  - {NOTIFY_ROUTE}: 1 target(s)" in result.output
    assert '      when: {"status": ["failed", "error", "timeout"]}' in result.output
    assert "hunter2" not in result.output
    assert "warning:" not in result.output


def test_only_the_secret_and_receiver_notify_bring_a_chat_message(
    tmp_path: Path, sink: HttpSink
) -> None:
    """The issue's promise: a fresh deploy with two variables, no file, tells the team."""
    home = tmp_path / "fresh"  # no config/ here: the default path has no file
    home.mkdir()
    inherited = {k: "" for k in os.environ if k.startswith(("RECEIVER_", "QUALITYMAX_"))}
    env = {
        **inherited,
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_NOTIFY": sink.url("/chat"),
    }
    service = ServiceProcess(None, env, tmp_path / "serve.log", cwd=home).start()
    try:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            for status, deploy in (("passed", "d-ok"), ("failed", "d-red")):
                body = callback_of(status, deploy)
                answer = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
                assert answer.status_code == 200, answer.text
        sink.wait_for(lambda: len(sink.delivered("/chat")) >= 1)
    finally:
        code = service.stop()
    assert code == 0
    (message,) = [request.json() for request in sink.delivered("/chat")]
    assert "d-red" in message["title"] + message["message"]
    assert "d-ok" not in json.dumps(message)
    assert (home / "data" / "receiver.db").exists()  # the default database path, under cwd
