"""The words people read: the title carries the verdict and where; the body the failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from receiver import views
from receiver.notify.message import duration, message, title
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
