"""GitHub targets against a local server implementing the REST calls receiver makes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from receiver import views
from receiver.notify.github import GithubSender, comment_body, status_description
from receiver.notify.retry import Outcome
from receiver.process import free_port
from tests.notify_helpers import result
from tests.sinks import GITHUB_TOKEN, Answer, FakeGithub
from tests.store_helpers import details

SHA = "0123456789abcdef0123456789abcdef01234567"
PR = {"repository": "acme/shop", "pr_number": "42", "sha": SHA}


def send(
    api_url: str, target: str, *values: views.ResultDetail, token: str = GITHUB_TOKEN
) -> list[Outcome]:
    async def run() -> list[Outcome]:
        sender = GithubSender(api_url=api_url, token=token, timeout=2)
        try:
            return [await sender.send(target, v) for v in values]
        finally:
            await sender.close()

    return asyncio.run(run())


def results(tmp_path: Path, *statuses: str, **custom: Any) -> list[views.ResultDetail]:
    values = [result(status, **{**PR, **custom}) for status in statuses]
    return details(tmp_path / "gh.db", *values)


def test_one_comment_per_pull_request_turns_from_red_to_green(
    github: FakeGithub, tmp_path: Path
) -> None:
    # 150 other comments: the marker must be found past the first page.
    github.seed_comments("acme/shop", 42, 150)
    red, green = results(tmp_path, "failed", "passed")
    assert send(github.url, "github://pr-comment", red) == [Outcome(ok=True)]
    (comment,) = github.markers("acme/shop", 42)
    assert "❌ 2 of 3 tests failed" in comment.body
    assert (
        "| ❌ | Login | 4.2s | [screenshot](https://example.com/s1.png) · "
        "[video](https://example.com/v1.mp4) |" in comment.body
    )
    assert "Expected dashboard, got /login" in comment.body
    assert send(github.url, "github://pr-comment", green) == [Outcome(ok=True)]
    (again,) = github.markers("acme/shop", 42)
    assert again.id == comment.id
    assert "✅ 3 of 3 tests passed" in again.body and "❌" not in again.body
    pages = [r.path for r in github.sink.received if r.method == "GET"]
    assert any("page=2" in p for p in pages)


def test_a_late_retry_of_an_older_result_does_not_roll_the_comment_back(
    github: FakeGithub, tmp_path: Path
) -> None:
    older, newer = results(tmp_path, "failed", "passed")
    send(github.url, "github://pr-comment", newer, older)
    (comment,) = github.markers("acme/shop", 42)
    assert "✅ 3 of 3 tests passed" in comment.body


def test_commit_status_flips_with_the_report_as_target(github: FakeGithub, tmp_path: Path) -> None:
    red, green = results(tmp_path, "failed", "passed")
    assert send(github.url, "github://commit-status", red, green) == [Outcome(ok=True)] * 2
    assert github.statuses[SHA] == [
        {
            "state": "failure",
            "description": "1/3 passed",
            "context": "receiver/qualitymax",
            "target_url": "https://app.qualitymax.io/#/projects/137",
        },
        {
            "state": "success",
            "description": "3/3 passed",
            "context": "receiver/qualitymax",
            "target_url": "https://app.qualitymax.io/#/projects/137",
        },
    ]


@pytest.mark.parametrize(
    ("status", "state"),
    [("error", "error"), ("timeout", "error"), ("canceled", "error"), ("running", "pending")],
)
def test_commit_state_mapping(github: FakeGithub, tmp_path: Path, status: str, state: str) -> None:
    (value,) = results(tmp_path, status)
    send(github.url, "github://commit-status", value)
    assert github.statuses[SHA][0]["state"] == state


@pytest.mark.parametrize(
    ("target", "missing", "custom"),
    [
        ("github://pr-comment", "'repository'", {"repository": None}),
        ("github://pr-comment", "'pr_number'", {"pr_number": None}),
        ("github://commit-status", "'sha'", {"sha": None}),
        ("github://commit-status", "'repository'", {"repository": None}),
    ],
)
def test_a_missing_key_is_a_permanent_refusal_naming_it(
    github: FakeGithub, tmp_path: Path, target: str, missing: str, custom: dict[str, Any]
) -> None:
    (value,) = results(tmp_path, "failed", **custom)
    (outcome,) = send(github.url, target, value)
    assert outcome.permanent and not outcome.ok
    assert outcome.error is not None and f"custom_data has no {missing}" in outcome.error
    assert github.sink.received == []


@pytest.mark.parametrize(
    ("answer", "code", "retry_after"),
    [
        (Answer(404, body=b'{"message": "Not Found"}'), 404, None),
        (Answer(422, body=b'{"message": "Validation Failed"}'), 422, None),
        (Answer(500, body=b'{"message": "oops"}'), 500, None),
        (Answer(429, {"Retry-After": "17"}), 429, 17.0),
        (Answer(403, {"Retry-After": "30"}, b'{"message": "secondary rate limit"}'), 429, 30.0),
        (Answer(403, body=b'{"message": "Resource not accessible"}'), 403, None),
    ],
)
def test_github_answers_become_outcomes(
    github: FakeGithub, tmp_path: Path, answer: Answer, code: int, retry_after: float | None
) -> None:
    github.refuse[f"POST /repos/acme/shop/statuses/{SHA}"] = answer
    (value,) = results(tmp_path, "failed")
    (outcome,) = send(github.url, "github://commit-status", value)
    assert (outcome.ok, outcome.status_code, outcome.retry_after) == (False, code, retry_after)
    assert outcome.error is not None and outcome.error.startswith(
        f"GitHub answered {answer.status} to POST /repos/acme/shop/statuses/"
    )


def test_a_wrong_token_is_401(github: FakeGithub, tmp_path: Path) -> None:
    (value,) = results(tmp_path, "failed")
    (outcome,) = send(github.url, "github://commit-status", value, token="wrong")
    assert (
        outcome.status_code == 401
        and outcome.error is not None
        and "Bad credentials" in outcome.error
    )


def test_unreachable_github_is_transient(tmp_path: Path) -> None:
    (value,) = results(tmp_path, "failed")
    (outcome,) = send(f"http://127.0.0.1:{free_port()}", "github://commit-status", value)
    assert not outcome.ok and outcome.status_code is None and not outcome.permanent
    assert outcome.error is not None and outcome.error.startswith("Cannot reach GitHub")


def test_descriptions_and_marker(tmp_path: Path) -> None:
    (value,) = results(tmp_path, "failed")
    assert status_description(value) == "1/3 passed"
    assert comment_body(value).startswith("<!-- receiver:pr-comment -->\n")


def test_github_enterprise_api_under_a_path(tmp_path: Path) -> None:
    enterprise = FakeGithub(GITHUB_TOKEN, prefix="/api/v3")
    try:
        enterprise.seed_comments("acme/shop", 42, 120)
        red, green = results(tmp_path, "failed", "passed")
        assert send(enterprise.url, "github://pr-comment", red, green) == [Outcome(ok=True)] * 2
        (comment,) = enterprise.markers("acme/shop", 42)
        assert "✅ 3 of 3 tests passed" in comment.body
    finally:
        enterprise.close()


@pytest.mark.parametrize(
    "report", ["javascript:alert(1)", "data:text/html,<script>", "/relative/report", "//evil/x"]
)
def test_commit_status_links_only_an_http_report(
    github: FakeGithub, tmp_path: Path, report: str
) -> None:
    (value,) = results(tmp_path, "failed")
    value.links.report = report
    assert send(github.url, "github://commit-status", value) == [Outcome(ok=True)]
    assert "target_url" not in github.statuses[SHA][0]
    assert report not in comment_body(value)


def test_a_sha_that_is_not_hex_is_shown_escaped_not_in_a_code_span(tmp_path: Path) -> None:
    (value,) = results(tmp_path, "failed", sha="`</details>`")
    assert "commit \\`\\<\u200d/details\\>\\`" in comment_body(value)
    (hexed,) = results(tmp_path, "failed")
    assert f"commit `{SHA[:12]}`" in comment_body(hexed)


@pytest.mark.parametrize(
    ("custom", "error"),
    [
        ({"sha": "abc/../../issues/7/comments"}, "it must be a commit's hex SHA"),
        ({"repository": "../x"}, "it must be owner/name"),
        ({"repository": "acme/.."}, "it must be owner/name"),
        ({"repository": "acme/shop/issues"}, "it must be owner/name"),
    ],
)
def test_custom_data_cannot_steer_the_api_path(
    github: FakeGithub, tmp_path: Path, custom: dict[str, str], error: str
) -> None:
    """repository and sha land in the API path with our token: nothing reaches another
    endpoint, and the refusal is permanent with the reason."""
    (value,) = results(tmp_path, "failed", **custom)
    targets = ["github://commit-status"]
    if "repository" in custom:  # the comment's path holds the repository, not the sha
        targets.append("github://pr-comment")
    for target in targets:
        (outcome,) = send(github.url, target, value)
        assert not outcome.ok and outcome.permanent and error in (outcome.error or "")
    assert github.sink.received == [], "nothing may reach GitHub"
