"""The words people read: the title carries the verdict and where; the body the failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apprise.plugins.slack import NotifySlack

from receiver import views
from receiver.notify import escape
from receiver.notify.message import HTML, MARKDOWN, PLAIN, SLACK, duration, message, title
from receiver.results import Failure, Result
from receiver.results import TestCase as Case
from tests.notify_helpers import result
from tests.store_helpers import details


def detail(tmp_path: Path, value: Result) -> views.ResultDetail:
    (found,) = details(tmp_path / "m.db", value)
    return found


def test_a_failure_title_says_how_many_where_and_which_deploy(tmp_path: Path) -> None:
    assert title(detail(tmp_path, result("failed"))) == (
        "❌ 2 of 3 tests failed · feat/login · deploy abc-123"
    )


@pytest.mark.parametrize(
    ("status", "custom", "expected"),
    [
        ("passed", {}, "✅ 3 of 3 tests passed · feat/login · deploy abc-123"),
        (
            "timeout",
            {"environment": "staging"},
            "⏱️ test run timed out · feat/login · deploy abc-123 · staging",
        ),
        ("error", {}, "⚠️ test run errored · feat/login · deploy abc-123"),
        ("canceled", {}, "🚫 test run was canceled · feat/login · deploy abc-123"),
    ],
)
def test_titles(tmp_path: Path, status: str, custom: dict[str, Any], expected: str) -> None:
    assert title(detail(tmp_path, result(status, **custom))) == expected


def test_the_body_lists_failing_tests_with_errors_and_links(tmp_path: Path) -> None:
    body = message(detail(tmp_path, result("failed"))).body
    assert "**2 of 3 tests failed** on feat/login, deploy abc-123 in 1m 05s" in body
    assert (
        "- **Login** (4.2s): Expected dashboard, got /login — "
        "[screenshot](https://example.com/s1.png) · [video](https://example.com/v1.mp4)"
    ) in body
    assert "- **Checkout** (1.5s): Timeout waiting for #pay" in body
    assert "Search" not in body
    assert "[Full report](https://app.qualitymax.io/#/projects/137)" in body


def test_failures_not_tied_to_a_test_are_shown_and_long_lists_cut(tmp_path: Path) -> None:
    tests = [Case(name=f"t{i}", status="failed", error="x" * 1000) for i in range(12)]
    value = Result(
        provider="qualitymax",
        event="test_results",
        status="failed",
        total=12,
        failed=12,
        tests=tests,
        failures=[Failure(error="the browser crashed")],
    )
    body = message(detail(tmp_path, value)).body
    assert "… and 3 more in the report" in body
    assert max(len(line) for line in body.splitlines()) < 500
    assert title(detail(tmp_path, value)) == "❌ 12 of 12 tests failed"


@pytest.mark.parametrize(
    ("ms", "text"), [(None, "–"), (800, "0.8s"), (59_940, "59.9s"), (65_000, "1m 05s")]
)
def test_duration(ms: int | None, text: str) -> None:
    assert duration(ms) == text


def test_each_markup_links_only_http_and_writes_its_own_syntax(tmp_path: Path) -> None:
    value = result("failed")
    value.tests[1].screenshot_url = "javascript:alert(1)"
    value.tests[1].video_url = "data:text/html,<script>alert(1)</script>"
    value.tests[1].url = "/relative"
    detail_ = detail(tmp_path, value)
    shot = "https://example.com/s1.png"
    said = "(4.2s): Expected dashboard, got /login —"
    bodies = {
        "markdown": (MARKDOWN, f"- **Login** {said} [screenshot]({shot})"),
        "slack": (SLACK, f"- **Login** {said} [screenshot]({shot})"),
        "html": (HTML, f'<li><strong>Login</strong> {said} <a href="{shot}">screenshot</a>'),
        "plain": (PLAIN, f"- Login {said} screenshot: {shot}"),
    }
    for name, (markup, line) in bodies.items():
        text = message(detail_, markup).body
        assert line in text, name
        assert "javascript:" not in text and "data:" not in text and "/relative" not in text, name
        assert "Checkout" in text and "Timeout waiting for #pay" in text, name
    # What Slack gets once Apprise's Slack plugin made mrkdwn of it.
    mrkdwn = NotifySlack._commonmark_to_slack(message(detail_, SLACK).body)  # type: ignore[no-untyped-call]
    assert f"- *Login* {said} <{shot}|screenshot>" in mrkdwn


def test_partner_text_in_the_title_is_escaped_for_where_it_lands(tmp_path: Path) -> None:
    value = result("failed", branch="<!here>", deploy_id="@acme/ops", environment="a_b*")
    detail_ = detail(tmp_path, value)
    z = "\u200d"
    assert title(detail_) == f"❌ 2 of 3 tests failed · <{z}!here> · deploy @{z}acme/ops · a_b*"
    assert title(detail_, escape.markdown) == (
        f"❌ 2 of 3 tests failed · \\<{z}!here\\> · deploy @{z}acme/ops · a\\_b\\*"
    )
