import pytest

from receiver.results import Result, normalise_status


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("passed", "passed"),
        ("PASSED", "passed"),
        ("success", "passed"),
        ("failed", "failed"),
        ("failure", "failed"),
        ("error", "error"),
        ("timed_out", "timeout"),
        ("timeout", "timeout"),
        ("cancelled", "canceled"),
        ("canceled", "canceled"),
        ("queued", "pending"),
        ("running", "running"),
        ("in-progress", "running"),
        ("exploded", "error"),
        (None, "error"),
    ],
)
def test_statuses_normalise(raw: str | None, status: str) -> None:
    assert normalise_status(raw) == status


@pytest.mark.parametrize(
    ("custom_data", "pr_number"),
    [
        ({"pr_number": 42}, 42),
        ({"pr_number": "42"}, 42),
        ({"pr_number": "x"}, None),
        ({"pr_number": True}, None),
        ({}, None),
    ],
)
def test_pr_number_accepts_integer_or_numeric_string(
    custom_data: dict[str, object], pr_number: int | None
) -> None:
    result = Result(provider="p", event="e", status="passed", custom_data=custom_data)
    assert result.pr_number == pr_number


def test_repository_and_sha_aliases() -> None:
    result = Result(
        provider="p", event="e", status="passed", custom_data={"repo": "o/r", "commit_sha": "c"}
    )
    assert (result.repository, result.sha) == ("o/r", "c")
