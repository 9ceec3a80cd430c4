"""Apprise targets against real servers on loopback: an HTTP sink (json://) and SMTP (mailto://)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path

from receiver import views
from receiver.notify.apprise_target import AppriseSender
from receiver.notify.retry import Outcome
from receiver.process import free_port
from tests.notify_helpers import result
from tests.sinks import Answer, HttpSink, always, mailto, smtp_server
from tests.test_message import detail


def send(target: str, value: views.ResultDetail, timeout: float = 2) -> Outcome:
    async def run() -> Outcome:
        sender = AppriseSender(timeout=timeout)
        try:
            return await sender.send(target, value)
        finally:
            await sender.close()

    return asyncio.run(run())


def test_json_target_gets_title_and_markdown_body(sink: HttpSink, tmp_path: Path) -> None:
    outcome = send(sink.url("/hook"), detail(tmp_path, result("failed")))
    assert outcome == Outcome(ok=True)
    (request,) = sink.to("/hook")
    payload = request.json()
    assert payload["title"] == "❌ 2 of 3 tests failed · feat/login · deploy abc-123"
    assert "Expected dashboard, got /login" in payload["message"]
    assert payload["type"] == "failure"


def test_a_500_is_transient_with_its_status(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/hook", always(500))
    outcome = send(sink.url("/hook"), detail(tmp_path, result("failed")))
    assert not outcome.ok and outcome.status_code == 500 and not outcome.permanent
    assert outcome.error is not None and "error=500" in outcome.error


def test_a_404_carries_its_status_so_retry_can_give_up(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/hook", always(404))
    outcome = send(sink.url("/hook"), detail(tmp_path, result("failed")))
    assert outcome.status_code == 404


def test_connection_refused_is_a_failure_without_status(tmp_path: Path) -> None:
    outcome = send(f"json://127.0.0.1:{free_port()}/hook", detail(tmp_path, result("failed")))
    assert not outcome.ok and outcome.status_code is None
    assert outcome.error is not None and "Connection error" in outcome.error


def test_a_hanging_target_times_out(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/hang", lambda n, r: Answer(hang=True))
    outcome = send(sink.url("/hang"), detail(tmp_path, result("failed")), timeout=0.5)
    assert not outcome.ok and outcome.status_code is None


def test_mailto_reaches_a_real_smtp_server(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        outcome = send(mailto(port), detail(tmp_path, result("failed")))
        assert outcome.ok
        assert inbox.arrived.wait(10)
    (mail,) = inbox.messages
    assert mail.rcpt_tos == ["team@example.com"]
    text = mail.content.decode()
    assert "Subject: =?utf-8?q?=E2=9D=8C_2_of_3_tests_failed" in text
    assert "<strong>Login</strong>" in text  # Markdown became HTML for email


def test_each_target_gets_the_markup_its_service_renders(sink: HttpSink, tmp_path: Path) -> None:
    value = detail(tmp_path, result("failed"))
    shot = "https://example.com/s1.png"
    assert send(sink.url("/plain"), value).ok  # json:// renders plain text by default
    assert send(sink.url("/hook") + "?format=markdown", value).ok  # unless its URL says otherwise
    plain = sink.to("/plain")[0].json()["message"]
    assert f"- Login (4.2s): Expected dashboard, got /login — screenshot: {shot}" in plain
    marked = sink.to("/hook")[0].json()["message"]
    assert f"- **Login** (4.2s): Expected dashboard, got /login — [screenshot]({shot})" in marked
    with smtp_server() as (inbox, port):
        assert send(mailto(port), value).ok
        assert inbox.arrived.wait(10)
    mail = email.message_from_bytes(inbox.messages[0].content, policy=email.policy.default)
    (page,) = [p.get_content() for p in mail.walk() if p.get_content_type() == "text/html"]
    assert (
        f'<strong>Login</strong> (4.2s): Expected dashboard, got /login — <a href="{shot}">' in page
    )
