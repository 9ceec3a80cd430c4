"""End to end: a signed callback full of hostile text and ``javascript:`` links, taken by a real
``receiver serve`` and routed to a json:// sink, a real SMTP server and the GitHub stand-in. No
payload may carry a live mention, a raw tag or a non-http link; people still read the words.

Slack's host cannot run here, and Apprise has no URL option to point a ``slack://`` target
elsewhere. So the Slack leg sends the result that serve stored through the real Slack plugin,
in process, with that plugin object's ``webhook_url`` attribute pointed at a local sink: the one
thing replaced. The payload it posts there is the exact one Slack would get.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from markdown_it import MarkdownIt

from receiver import views
from receiver.notify.apprise_target import AppriseSender
from receiver.notify.escape import ZWJ
from receiver.notify.retry import Outcome
from receiver.process import ServiceProcess
from receiver.simulator.standin import Received
from tests.conftest import callback_body, signed
from tests.sinks import GITHUB_TOKEN, Answer, FakeGithub, HttpSink, mailto, smtp_server
from tests.store_helpers import opened

SHA = "c0ffee" * 6 + "beef"
NAME = "Login <!channel> @acme/everyone </details><script>alert(1)</script>"
ERROR = (
    "Expected <img src=x onerror=alert(1)> for @octocat <!here>, see [docs](https://evil.example)"
)
SUMMARY = "<!everyone> crawl done, [click me](https://evil.example) | **not bold**"
CUSTOM = {
    "branch": "feat/<!here>",
    "deploy_id": "<@U024BE7LH>",
    "environment": "<!subteam^S0123|@oncall> & qa_eu",
    "repository": "acme/shop",
    "pr_number": 7,
    "sha": SHA,
}
EVIL_LINK = "javascript:alert(1)"
LIVE = ("<!channel>", "<!here>", "<!everyone>", "<!subteam", "<@U024BE7LH>", "@acme/everyone")
SLACK_HOOK = "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"


def hostile_callback() -> bytes:
    return callback_body(
        custom_data=CUSTOM,
        workflow_summary=SUMMARY,
        results={
            "status": "failed",
            "total_tests": 2,
            "passed": 1,
            "failed": 1,
            "duration_ms": 54600,
            "report_app_url": EVIL_LINK,
            "tests": [
                {
                    "test": NAME,
                    "status": "failed",
                    "duration_ms": 4200,
                    "error": ERROR,
                    "screenshot_url": EVIL_LINK,
                    "video_url": EVIL_LINK,
                },
                {"test": "Search", "status": "passed", "duration_ms": 800},
            ],
            "failures": [{"test": NAME, "error": ERROR}],
        },
    )


def config_text(sink: HttpSink, smtp_port: int) -> str:
    return f"""
[delivery]
max_attempts = 3
backoff = [0.2]
timeout_seconds = 5

[[routes]]
name = "everywhere"
notify = ["{sink.url("/hook")}", "{mailto(smtp_port)}", "github://pr-comment", "github://commit-status"]
"""


def until(test: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        time.sleep(0.05)


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_harmless(texts: list[str], where: str) -> None:
    for text in texts:
        for live in LIVE:
            assert live not in text, f"{where}: a live {live!r} in {text!r}"
        assert "javascript:" not in text.lower(), f"{where}: a javascript: link in {text!r}"
        assert "<script" not in text.lower(), f"{where}: a raw <script in {text!r}"


def reads(text: str) -> str:
    """What a person reads: the zero-width joiners are invisible."""
    return text.replace(ZWJ, "")


def mail_texts(content: bytes) -> dict[str, str]:
    """The subject and each text part of a mail, decoded (parts may be base64)."""
    mail = email.message_from_bytes(content, policy=email.policy.default)
    found = {"subject": str(mail["subject"])}
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            found[part.get_content_type()] = part.get_content()
    return found


def test_hostile_callback_reaches_every_target_harmless_and_readable(
    sink: HttpSink, github: FakeGithub, tmp_path: Path, env: dict[str, str]
) -> None:
    with smtp_server() as (inbox, port):
        config = tmp_path / "receiver.toml"
        config.write_text(config_text(sink, port))
        keys = {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": github.url}
        service = ServiceProcess(config, {**env, **keys}, tmp_path / "serve.log").start()
        try:
            body = hostile_callback()
            answer = httpx.post(
                f"{service.url}/callbacks/qualitymax", content=body, headers=signed(body)
            )
            assert answer.status_code == 200, answer.text
            until(
                lambda: bool(
                    sink.delivered("/hook")
                    and inbox.messages
                    and github.markers("acme/shop", 7)
                    and github.statuses.get(SHA)
                ),
                "all four targets received the result",
            )
        finally:
            service.stop()

    (chat,) = sink.delivered("/hook")
    check_json(chat.json())
    (mail,) = inbox.messages
    check_mail(mail.content)
    (comment,) = github.markers("acme/shop", 7)
    check_comment(comment.body)
    # The report link was javascript:, so the status has none.
    assert github.statuses[SHA] == [
        {"state": "failure", "description": "1/2 passed", "context": "receiver/qualitymax"}
    ]
    with opened(Path(env["RECEIVER_DB"])) as database:
        stored = database.read(lambda tx: views.result_detail(tx, 1))
    for blocks in ("no", "yes"):  # Apprise's legacy Slack payload (its default) and Block Kit
        check_slack(post_to_slack(sink, stored, blocks))


def check_json(payload: dict[str, Any]) -> None:
    assert_harmless(list(strings(payload)), "json://")
    message = reads(payload["message"])
    assert f"{NAME} (4.2s): {ERROR}" in message  # the words, as they were sent
    assert reads(payload["title"]) == (
        "❌ 1 of 2 tests failed: 1 new · feat/<!here> · deploy <@U024BE7LH> · "
        "<!subteam^S0123|@oncall> & qa_eu"
    )
    assert "**" not in message.replace(SUMMARY, "")  # plain text: no Markdown of ours
    assert "Full report" not in message and "screenshot" not in message  # links dropped


def check_mail(content: bytes) -> None:
    parts = mail_texts(content)
    assert set(parts) == {"subject", "text/plain", "text/html"}
    assert_harmless(list(parts.values()), "mailto://")
    page = parts["text/html"]
    assert "<a " not in page and "<details" not in page and "<img" not in page
    assert f"<strong>{html.escape(NAME)}</strong>" in reads(page)
    assert f"{NAME} (4.2s): {ERROR}" in reads(parts["text/plain"])


def check_comment(text: str) -> None:
    assert_harmless([text], "github://pr-comment")
    page = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)
    # Our <details> is the only one, and it closes where we close it: after the failures.
    assert page.count("<details") == 1 and page.count("</details>") == 1
    assert page.index("</details>") > page.index("onerror")
    assert "<script" not in page and "<img" not in page
    assert "href=" not in page  # the links were javascript:, the one in the error only text
    shown = reads(html.unescape(page))
    assert f"<td>{NAME}</td>" in shown
    assert f"{NAME}</strong> (4.2s): {ERROR}" in shown


def post_to_slack(sink: HttpSink, result: views.ResultDetail, blocks: str) -> Received:
    """``result`` through Apprise's real Slack plugin; its host, hooks.slack.com, is the sink."""
    target = f"slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#ci?blocks={blocks}"
    sink.on(SLACK_HOOK, lambda n, r: Answer(200, body=b"ok"))
    before = len(sink.delivered(SLACK_HOOK))

    async def send() -> Outcome:
        # One pool thread: the plugin object pointed at the sink is the one that sends.
        sender = AppriseSender(timeout=5, threads=1)
        try:
            await asyncio.get_running_loop().run_in_executor(
                sender.pool, point_at_sink, sender, target, sink
            )
            return await sender.send(target, result)
        finally:
            await sender.close()

    assert asyncio.run(send()) == Outcome(ok=True)
    sent = sink.delivered(SLACK_HOOK)
    assert len(sent) == before + 1
    return sent[-1]


def point_at_sink(sender: AppriseSender, target: str, sink: HttpSink) -> None:
    """Point the Slack plugin at the sink, in the pool thread that sends (each thread keeps its
    own plugin objects)."""
    prepared = sender.prepared(target)
    assert prepared is not None
    plugin: Any = prepared.sender[0]
    plugin.webhook_url = f"{sink.base_url}/services"  # the one thing replaced


def check_slack(request: Received) -> None:
    texts = list(strings(request.json()))
    assert_harmless(texts, "slack://")
    # Slack reads "<" as the start of a link or a mention: none reaches it (no link was http),
    # and nothing is escaped twice.
    for text in texts:
        assert "<" not in text and ">" not in text and "&amp;lt;" not in text
    (body,) = [t for t in texts if "Failing tests:" in t]
    shown = reads(body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    # People read the words as sent: no backslash, which Slack would show.
    assert "on feat/<!here>, deploy <@U024BE7LH>, <!subteam^S0123|@oncall> & qa_eu" in shown
    assert f"{NAME}* (4.2s): {ERROR}" in shown
