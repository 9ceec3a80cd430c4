"""Issue 23's settings and what goes with a result: slackbot:// targets, thread_by, repeat_after,
[watch] and [qualitymax] timeout_seconds checked with messages naming the fix; a purged result
takes its ledger row, attempts and matrix row with it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from receiver.config import ConfigError, load_config
from receiver.retention import cutoffs, purge_now
from receiver.routing import Router
from receiver.store import open_store
from tests.conftest import SECRET
from tests.notify_helpers import Harness, all_final, make_config, result, route
from tests.sinks import SLACK_TOKEN, FakeGithub, HttpSink

PR = {"repository": "acme/shop", "pr_number": 42, "sha": "abc123def456"}


def router(tmp_path: Path, text: str, **env: str) -> Router:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return Router.from_config(load_config(path, {"QUALITYMAX_WEBHOOK_SECRET": SECRET, **env}))


@pytest.mark.parametrize(
    ("text", "env", "error"),
    [
        (
            route("chat", "slackbot://#previews"),
            {},
            "A route notifies slackbot://... but SLACK_BOT_TOKEN is not set: set it in the "
            "environment or as [slack] bot_token in",
        ),
        (
            route("chat", "slackbot://previews channel"),
            {"SLACK_BOT_TOKEN": SLACK_TOKEN},
            "route 'chat': 'slackbot://previews channel' names no Slack channel; use "
            "slackbot://#channel",
        ),
        (
            route("a", "slackbot://#x") + route("b", "slackbot://#x", extra='thread_by = "sha"'),
            {"SLACK_BOT_TOKEN": SLACK_TOKEN},
            "routes 'a' and 'b' both notify slackbot://#x with a different thread_by",
        ),
        (
            route("a", "json://127.0.0.1/x", extra="repeat_after = 0"),
            {},
            "route 'a': repeat_after must be a number of seconds > 0",
        ),
        (
            '[watch]\nnotify = ["github://pr-comment"]\n',
            {"GITHUB_TOKEN": "t"},
            "[watch] notify: github://pr-comment cannot take an alert",
        ),
        ("[watch]\nafter_failures = 0\n", {}, "[watch] after_failures must be at least 1"),
        (
            "[qualitymax]\ntimeout_seconds = 0\n",
            {},
            "[qualitymax] timeout_seconds must be greater than 0",
        ),
    ],
)
def test_wrong_settings_are_refused_naming_the_fix(
    tmp_path: Path, text: str, env: dict[str, str], error: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        router(tmp_path, text, **env)
    assert error in str(refused.value)


def test_slackbot_targets_and_the_groups_living_targets_render(tmp_path: Path) -> None:
    text = route(
        "a", "slackbot://%23previews", "github://pr-comment", extra='thread_by = "deploy_id"'
    )
    found = router(tmp_path, text, SLACK_BOT_TOKEN=SLACK_TOKEN, GITHUB_TOKEN="t")
    (target, _) = found.routes[0].targets
    assert (target.kind, target.display) == ("slackbot", "slackbot://#previews")
    assert found.thread_by == {"slackbot://%23previews": ("deploy_id",)}
    assert found.groupings == (("deploy_id",), ("pr_number",))
    assert found.uses_slack and found.uses_github


def test_a_purged_result_takes_its_ledger_attempts_and_matrix_row_with_it(
    sink: HttpSink, github: FakeGithub, tmp_path: Path
) -> None:
    targets = route("all", sink.url("/hook"), "github://pr-comment")
    config = make_config(tmp_path, targets, github_url=github.url)
    tables = ("route_decisions", "delivery_attempts", "matrix_rows")

    async def run() -> None:
        async with Harness(config) as h:
            await h.add(result("failed", **PR))
            await h.settle(all_final)

    asyncio.run(run())
    conn = sqlite3.connect(config.db_path)
    before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    with conn:
        conn.execute("UPDATE results SET created_at = '2020-01-01T00:00:00.000000Z'")
    conn.close()
    database = open_store(config.db_path)
    try:
        purged = purge_now(database, cutoffs(config.retention), dry_run=False)
    finally:
        database.close()
    conn = sqlite3.connect(config.db_path)
    after = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    conn.close()
    assert purged.results == 1
    assert before == {"route_decisions": 1, "delivery_attempts": 2, "matrix_rows": 1}
    assert after == dict.fromkeys(tables, 0)
