"""slackbot:// through the Slack Web API stand-in (receiver/simulator/slack.py, served on
loopback): one living message per pull request, edited in place, a threaded reply on a status
change, posted anew when deleted; Slack's documented refusals decide the retry."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from receiver import views
from receiver.config import Config
from receiver.store import messages
from tests.notify_helpers import Harness, all_final, make_config, result, route
from tests.sinks import FakeSlack

PR = {"repository": "acme/shop", "pr_number": 42, "sha": "abc123def456"}


def slack_config(tmp_path: Path, slack: FakeSlack, *targets: str, **options: Any) -> Config:
    return make_config(
        tmp_path, route("prs", *(targets or ("slackbot://#previews",))), slack_url=slack.url,
        **options,
    )  # fmt: skip


async def one_by_one(h: Harness, *results: Any) -> list[views.DeliveryView]:
    """Each result stored and its delivery settled before the next arrives."""
    for value in results:
        await h.add(value)
        await h.settle(all_final)
    return h.deliveries()


def section_texts(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")


def test_three_results_of_one_pr_post_once_then_edit_and_reply_on_the_change(
    slack: FakeSlack, tmp_path: Path
) -> None:
    config = slack_config(tmp_path, slack)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            return await one_by_one(
                h,
                result("passed", browser="chromium", **PR),
                result("passed", browser="firefox", **PR),
                result("failed", browser="webkit", **PR),
            )

    found = asyncio.run(run())
    assert [d.state for d in found] == ["sent"] * 3
    (message,) = slack.top_level()
    assert message.channel == "C0PREVIEWS" and message.edits == 2
    assert [c.method for c in slack.calls] == [
        "chat.postMessage",
        "chat.update",
        "chat.update",
        "chat.postMessage",  # the threaded reply: passed -> failed
    ]
    assert all(c.ok for c in slack.calls)
    (reply,) = slack.replies(message)
    assert reply.text.startswith("✅ → ❌ 1 of 3 jobs failed")
    assert message.blocks[0]["text"]["text"] == (
        "❌ 1 of 3 jobs failed · PR #42 · feat/login · deploy abc-123"
    )
    rows = section_texts(message.blocks)
    for browser in ("chromium", "firefox", "webkit"):
        assert f"*qualitymax · {browser}* —" in rows
    assert "• qualitymax · webkit › *Login*: Expected dashboard, got /login" in rows
    assert "chromium › " not in rows  # passed rows list no failing tests


def test_a_message_deleted_in_slack_is_posted_anew(slack: FakeSlack, tmp_path: Path) -> None:
    config = slack_config(tmp_path, slack)

    async def run() -> tuple[list[views.DeliveryView], messages.LivingMessage | None]:
        async with Harness(config) as h:
            await one_by_one(h, result("failed", **PR))
            slack.delete(slack.top_level()[0])
            found = await one_by_one(h, result("failed", **PR))
            kept = h.store.read(
                lambda tx: messages.get(tx, "slackbot://#previews", "pr:acme/shop#42")
            )
            return found, kept

    found, kept = asyncio.run(run())
    assert [d.state for d in found] == ["sent", "sent"]
    assert [(c.method, c.error) for c in slack.calls] == [
        ("chat.postMessage", None),
        ("chat.update", "message_not_found"),
        ("chat.postMessage", None),
    ]
    (message,) = slack.top_level()
    assert kept is not None and kept.ts == message.ts and kept.result_id == 2
    assert "result #2" in message.blocks[-1]["elements"][0]["text"]


def test_ratelimited_waits_its_retry_after(slack: FakeSlack, tmp_path: Path) -> None:
    slack.limit_next(1, retry_after=1)
    config = slack_config(tmp_path, slack)

    async def run() -> tuple[views.DeliveryView, views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result("failed", **PR))
            (waiting,) = await h.settle(lambda ds: ds[0].last_error is not None)
            (done,) = await h.settle(all_final)
            return waiting, done

    waiting, done = asyncio.run(run())
    assert waiting.last_error == (
        "Slack answered ratelimited to chat.postMessage: waiting 1s (Retry-After)"
    )
    assert waiting.next_attempt_at is not None
    wait = _at(waiting.next_attempt_at) - _at(waiting.updated_at)
    assert wait.total_seconds() >= 0.9  # the backoff alone would be 0.05 s
    assert (done.state, done.attempts) == ("sent", 2)
    assert [c.error for c in slack.calls] == ["ratelimited", None]


def test_invalid_auth_and_channel_not_found_are_dead_at_once_with_the_reason(
    slack: FakeSlack, tmp_path: Path
) -> None:
    config = slack_config(tmp_path, slack, "slackbot://#previews", "slackbot://#nowhere")
    slack.revoked = True

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result("failed", **PR))
            await h.settle(all_final)
            slack.revoked = False
            await h.add(result("failed", **PR))
            return await h.settle(lambda ds: len(ds) == 4 and all_final(ds))

    revoked, revoked_too, ok, nowhere = asyncio.run(run())
    assert (revoked.state, revoked.attempts) == ("dead", 1)
    assert revoked.last_error == (
        "permanent refusal: Slack answered invalid_auth to chat.postMessage: SLACK_BOT_TOKEN is "
        "not valid (revoked, or no bot token): set an xoxb- token"
    )
    assert revoked_too.state == "dead"
    assert ok.state == "sent"
    assert (nowhere.state, nowhere.attempts) == ("dead", 1)
    assert nowhere.last_error is not None
    assert "Slack answered channel_not_found to chat.postMessage: no such channel" in (
        nowhere.last_error
    )


def test_partner_text_is_escaped_as_slack_mrkdwn(slack: FakeSlack, tmp_path: Path) -> None:
    config = slack_config(tmp_path, slack)
    hostile = result("failed", **PR)
    hostile.tests[0].name = "<!channel> `code` <https://evil.example|click> & @here"
    hostile.report_url = "javascript:alert(1)"

    async def run() -> None:
        async with Harness(config) as h:
            await one_by_one(h, hostile)

    asyncio.run(run())
    text = section_texts(slack.top_level()[0].blocks)
    zwj = "\u200d"  # escape.defang's joiner: no renderer reads the pair as its syntax
    assert (
        f"&lt;{zwj}!channel&gt; ˋcodeˋ &lt;{zwj}https://evil.example|click&gt; &amp; @{zwj}here"
        in text
    )
    assert "<!channel>" not in text and "javascript:" not in text


def _at(timestamp: str) -> dt.datetime:
    return dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")
