"""``receiver demo``: the README's first command shows the whole loop and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from receiver.demo import chat_message, commit_status, pr_comment, title
from receiver.results import Failure, TestCase
from receiver.store import Links, ResultDetail


def test_the_demo_runs_from_any_folder_and_shows_what_people_receive(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECEIVER_", "QUALITYMAX_"))}
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "❌ 1 of 3 tests failed · feat/login · deploy abc-123" in out
    assert "✅ 3 of 3 tests passed · main · deploy abc-122" in out
    assert "<!-- receiver:qualitymax -->" in out and "| Dashboard shows the task sections |" in out
    assert "acme/shop@4b1e7c0  failure" in out and "acme/shop@9f3c2a1  success" in out
    assert "forged signature -> 401" in out
    assert list(tmp_path.iterdir()) == []  # the throwaway database went with its folder


def result(status: str, **changes: object) -> ResultDetail:
    tests = [
        TestCase(name="Login", status="passed", duration_ms=2100),
        TestCase(
            name="Dashboard",
            status="failed",
            error="Expected 4 sections",
            screenshot_url="https://a/s.png",
        ),
    ]
    fields: dict[str, object] = {
        "id": 1,
        "provider": "qualitymax",
        "event": "test_results",
        "status": status,
        "total": 2,
        "passed": 1,
        "failed": 1,
        "duration_ms": 5000,
        "branch": "feat/login",
        "repository": "acme/shop",
        "pr_number": 42,
        "sha": "4b1e7c0a52",
        "report_url": "https://qm/report",
        "job_id": 1,
        "callback_id": 1,
        "created_at": "",
        "raw_status": status,
        "summary": None,
        "external_job_id": "pwj_1",
        "custom_data": {"deploy_id": "abc-123"},
        "failures": [Failure(test="Dashboard", error="Expected 4 sections")],
        "tests": tests,
        "links": Links(report="https://qm/report"),
    }
    fields.update(changes)
    return msgspec.convert(fields, ResultDetail, from_attributes=True)


def test_the_title_names_counts_branch_and_deploy() -> None:
    assert title(result("failed")) == "❌ 1 of 2 tests failed · feat/login · deploy abc-123"


def test_the_chat_message_lists_failing_tests_and_links() -> None:
    message = chat_message(result("failed")).splitlines()
    assert message[1:] == [
        "✗ Dashboard: Expected 4 sections",
        "  screenshot: https://a/s.png",
        "Report: https://qm/report",
    ]


def test_the_pr_comment_is_a_markdown_table_with_a_sticky_marker() -> None:
    comment = pr_comment(result("failed"))
    assert comment.startswith("<!-- receiver:qualitymax -->\n### ❌ 1 of 2 tests failed")
    assert "| Dashboard | ❌ failed |  | [screenshot](https://a/s.png) |" in comment
    assert comment.endswith("[Full report](https://qm/report) · commit `4b1e7c0`")


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("passed", "success"),
        ("failed", "failure"),
        ("error", "error"),
        ("timeout", "error"),
        ("canceled", "error"),
        ("running", "pending"),
        ("pending", "pending"),
    ],
)
def test_commit_states_follow_design(status: str, state: str) -> None:
    assert commit_status(result(status)).state == state
