"""``receiver notify-test`` against real servers on loopback, and ``receiver init``'s file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from receiver.cli import main
from receiver.config import load_config
from receiver.routing import Router
from tests.sinks import SLACK_TOKEN, FakeSlack, HttpSink, always


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: no config file at the default path."""
    monkeypatch.chdir(tmp_path)
    for name in ("RECEIVER_CONFIG", "RECEIVER_NOTIFY", "RECEIVER_NOTIFY_ALL", "GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


# -- notify-test ---------------------------------------------------------------------------------


def test_notify_test_sends_a_sample_and_says_it_was_taken(home: Path, sink: HttpSink) -> None:
    result = run("notify-test", sink.url("/chat"))
    assert result.exit_code == 0, result.output
    assert result.output == f"json://127.0.0.1:{sink.port}/chat: sent (the target took it)\n"
    (request,) = sink.delivered("/chat")
    sample = request.json()
    assert "1 of 2 tests failed" in sample["title"]
    assert "receiver notify-test" in sample["message"]


def test_notify_test_says_what_a_refusing_target_answered(home: Path, sink: HttpSink) -> None:
    sink.on("/gone", always(404))
    result = run("notify-test", sink.url("/gone"))
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"json://127.0.0.1:{sink.port}/gone: failed: ")
    assert "error=404" in line


def test_notify_test_without_a_target_tries_every_target_of_the_config(
    home: Path, sink: HttpSink
) -> None:
    sink.on("/down", always(500))
    (home / "config").mkdir()
    (home / "config" / "receiver.toml").write_text(
        f'[[routes]]\nname = "team"\nnotify = ["{sink.url("/team")}", "{sink.url("/down")}"]\n'
    )
    result = run("notify-test", RECEIVER_NOTIFY=f"{sink.url('/team')},{sink.url('/env')}")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.split(": ", 1)[0].rsplit("/", 1)[1] for line in lines] == ["team", "down", "env"]
    assert [": sent" in line for line in lines] == [True, False, True]
    assert len(sink.delivered("/team")) == 1  # one target of two routes is tried once


def test_notify_test_masks_the_target(home: Path, sink: HttpSink) -> None:
    target = f"json://user:hunter2@127.0.0.1:{sink.port}/chat"
    result = run("notify-test", target)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output


def test_notify_test_posts_to_a_slack_channel(home: Path, slack: FakeSlack) -> None:
    result = run(
        "notify-test", "slackbot://#alerts", SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=slack.url
    )
    assert result.exit_code == 0, result.output
    assert result.output == "slackbot://#alerts: sent (chat.postMessage ok)\n"
    (posted,) = slack.top_level()
    assert "sample message" in posted.text


def test_notify_test_tries_the_github_token_and_posts_nothing(home: Path, sink: HttpSink) -> None:
    sink.on(
        "/api/rate_limit",
        lambda n, r: always(200 if "good" in r.headers["authorization"] else 401)(n, r),
    )
    api = f"{sink.base_url}/api"
    good = run("notify-test", "github://pr-comment", GITHUB_TOKEN="good", GITHUB_API_URL=api)
    assert good.exit_code == 0, good.output
    assert good.output.startswith("github://pr-comment: sent (GITHUB_TOKEN accepted (HTTP 200)")
    bad = run("notify-test", "github://commit-status", GITHUB_TOKEN="bad", GITHUB_API_URL=api)
    assert bad.exit_code == 1
    assert bad.output.startswith("github://commit-status: failed: GitHub answered 401")
    assert [r.method for r in sink.received] == ["GET", "GET"]


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (
            ["notify-test"],
            {},
            "Error: No target to try in config/receiver.toml (no such file: the environment "
            "alone): pass one (receiver notify-test URL), or set RECEIVER_NOTIFY or add [[routes]]",
        ),
        (
            ["notify-test", "github://pr-comment"],
            {},
            "Error: github://pr-comment needs GITHUB_TOKEN: set it in the environment or as "
            "[github] token in config/receiver.toml (no such file: the environment alone)",
        ),
        (
            ["notify-test", "nope://x"],
            {},
            "Error: route 'notify-test': Apprise cannot use the target starting 'nope': check the "
            "URL's scheme and parts against https://github.com/caronc/apprise/wiki (e.g. "
            "slack://..., mailto://..., json://...)",
        ),
    ],
)
def test_notify_test_refusals_say_what_to_do(
    home: Path, args: list[str], env: dict[str, str], error: str
) -> None:
    result = run(*args, **env)
    assert result.exit_code == 1
    assert result.output == error + "\n"


# -- init ----------------------------------------------------------------------------------------


def test_init_writes_a_starter_that_loads_with_its_routes(home: Path) -> None:
    webhook = "https://hooks.slack.com/services/T0000/B0000/abcdefghijklmnop"
    result = run("init", "--slack", webhook, "--github")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "wrote config/receiver.toml (routes: failures to slack, pull requests)"
    )
    assert "abcdefghijklmnop" not in result.output
    text = (home / "config" / "receiver.toml").read_text()
    assert "abcdefghijklmnop" not in text and '"${SLACK_URL}"' in text
    env = {"SLACK_URL": webhook, "GITHUB_TOKEN": "t", "QUALITYMAX_WEBHOOK_SECRET": "s"}
    config = load_config(Path("config/receiver.toml"), env)
    router = Router.from_config(config)
    assert [(r.route.name, [t.display for t in r.targets]) for r in router.routes] == [
        ("failures to slack", ["slack://T...0/B...0/a...p//"]),
        ("pull requests", ["github://pr-comment", "github://commit-status"]),
    ]
    checked = run("check-config", **env)
    assert checked.exit_code == 0, checked.output


def test_init_keeps_a_slackbot_channel_and_asks_for_its_token(home: Path) -> None:
    result = run("init", "--slack", "slackbot://#ci", "--config", "elsewhere/r.toml")
    assert result.exit_code == 0, result.output
    assert "SLACK_BOT_TOKEN" in result.output.splitlines()[-1]
    config = load_config(Path("elsewhere/r.toml"), {"SLACK_BOT_TOKEN": "xoxb-1"})
    assert config.routes[0].notify == ["slackbot://#ci"]


def test_init_without_flags_writes_no_route_and_check_config_warns(home: Path) -> None:
    assert run("init").exit_code == 0
    checked = run("check-config", QUALITYMAX_WEBHOOK_SECRET="s")
    assert checked.exit_code == 0, checked.output
    assert "routes: 0" in checked.output and "warning: no route:" in checked.output


def test_init_refuses_to_overwrite_without_force(home: Path) -> None:
    assert run("init").exit_code == 0
    (home / "config" / "receiver.toml").write_text("# mine\n")
    again = run("init", "--github")
    assert again.exit_code == 1
    assert again.output == (
        "Error: config/receiver.toml already exists: pass --force to overwrite it, or --config "
        "FILE to write another file\n"
    )
    assert (home / "config" / "receiver.toml").read_text() == "# mine\n"
    forced = run("init", "--github", "--force")
    assert forced.exit_code == 0, forced.output
    assert "github://pr-comment" in (home / "config" / "receiver.toml").read_text()


def test_init_refuses_a_slack_url_no_send_could_use(home: Path) -> None:
    result = run("init", "--slack", "hooks.slack.com/no-scheme")
    assert result.exit_code == 1
    assert result.output.startswith("Error: route 'failures to slack': Apprise cannot use")
    assert not (home / "config").exists()
