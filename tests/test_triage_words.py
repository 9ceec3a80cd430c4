"""What people read of triage: titles, chat bodies and pull-request comments in each medium, the
commit status of flaky_is_green, and the [triage] settings with their errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from receiver.config import ConfigError, TriageSettings, effective_settings, load_config
from receiver.notify.escape import ZWJ
from receiver.notify.github import comment_body, only_flaky, status_description
from receiver.notify.message import HTML, MARKDOWN, PLAIN, message, title
from receiver.results import Failure, Result, TestCase
from receiver.views import ResultDetail
from tests.notify_helpers import make_config, route
from tests.test_triage_store import Stored, result


@pytest.fixture
def develop(tmp_path: Path) -> Iterator[Stored]:
    """A store whose base branch is ``release_1`` (a name Markdown must escape)."""
    stored = Stored(make_config(tmp_path, '[triage]\nbase_branch = "release_1"\n'))
    yield stored
    stored.close()


def run(branch: str, sha: str, failing: str = "", passing: str = "") -> Result:
    """A result of the tests named in ``failing`` (failed) and ``passing`` (passed)."""
    value = result(branch, sha)
    value.tests = [
        TestCase(name=name, status=status, duration_ms=1000 if status == "passed" else None)
        for status, names in (("failed", failing), ("passed", passing))
        for name in names.split()
    ]
    for test in value.tests:
        test.error = f"{test.name} broke" if test.status == "failed" else None
    value.failed = len(failing.split())
    value.total = value.failed + len(passing.split())
    value.passed = value.total - value.failed
    value.status = "failed" if value.failed else "passed"
    return value


def labelled(stored: Stored) -> ResultDetail:
    """A result with a failure of each label and a fixed test."""
    stored.add(run("release_1", "a1", failing="Search"))
    stored.add(run("feat", "b1", failing="Checkout Cart"))
    stored.add(run("feat", "b2", failing="Login Checkout Cart"))
    stored.add(run("feat", "b2", failing="Checkout Cart", passing="Login"))  # Login flaky
    value = run("feat", "b3", failing="Signup Checkout Search Login", passing="Cart")
    return stored.detail(stored.add(value).result_id)


def test_the_title_counts_failures_by_label_in_reading_order(develop: Stored) -> None:
    detail = labelled(develop)
    assert title(detail) == (
        "❌ 4 of 5 tests failed: 1 new, 1 still failing, 1 failing on release_1, 1 flaky; "
        "1 fixed · feat"
    )


def test_a_pr_comment_groups_the_failures_under_their_labels(develop: Stored) -> None:
    body = comment_body(labelled(develop))
    headings = [line for line in body.splitlines() if line.startswith("#### ")]
    assert headings == [
        "#### New (1)",
        "#### Still failing (1)",
        "#### Failing on release\\_1 (1)",
        "#### Flaky (1)",
        "#### Fixed (1)",
    ]
    assert "- **Signup** (–): Signup broke" in body
    assert "  _still failing since b1 (4 runs)_" in body
    assert "  _failing on release\\_1 since a1 (1 run)_" in body
    assert "  _flaky: failed 2 of its last 3 runs, 1 time on a commit where it also passed_" in (
        body
    )
    assert "- **Cart** (1.0s)<br>\n  _fixed after failing 3 runs_" in body
    assert "**4 of 5 tests failed: 1 new, 1 still failing, 1 failing on release\\_1," in body


def test_each_medium_escapes_the_base_branch_and_marks_the_labels(develop: Stored) -> None:
    detail = labelled(develop)
    markdown = message(detail, MARKDOWN).body
    assert "1 failing on release\\_1" in markdown
    assert "- _still failing_ · **Checkout** (–): Checkout broke" in markdown
    assert "- _failing on release\\_1_ · **Search** (–): Search broke" in markdown
    assert "Fixed: **Cart**" in markdown
    assert "<li><em>flaky</em> · <strong>Login</strong> (–): Login broke</li>" in (
        message(detail, HTML).body
    )
    assert "- new · Signup (–): Signup broke" in message(detail, PLAIN).body


def test_failures_not_tied_to_a_test_are_listed_apart(develop: Stored) -> None:
    value = result("feat", "b1", ("Login",))
    value.failures = [Failure(test=None, error="The crawl stopped at <!channel>")]
    body = comment_body(develop.detail(develop.add(value).result_id))
    assert "#### New (1)" in body and "#### Other failures (1)" in body
    assert f"The crawl stopped at \\<{ZWJ}!channel\\>" in body


def test_a_hostile_test_name_stays_harmless_under_its_heading(develop: Stored) -> None:
    name = "Login <!here> @acme/team"
    value = result("feat", "b1")
    value.tests.append(TestCase(name=name, status="failed", error="x"))
    body = comment_body(develop.detail(develop.add(value).result_id))
    assert "#### New (1)" in body
    assert f"**Login \\<{ZWJ}!here\\> @{ZWJ}acme/team**" in body
    assert "<!here>" not in body and "@acme" not in body


def test_only_flaky_failures_make_flaky_is_green_green(develop: Stored) -> None:
    develop.add(result("feat", "b1", ("Login",)))
    develop.add(result("feat", "b1"))
    flaky_only = develop.detail(develop.add(result("feat", "b2", ("Login",))).result_id)
    assert only_flaky(flaky_only) and status_description(flaky_only) == "2/3 passed, 1 flaky"
    value = result("feat", "b3", ("Login",))
    value.failures = [Failure(test=None, error="and the run itself broke")]
    assert not only_flaky(develop.detail(develop.add(value).result_id))
    also_new = develop.detail(develop.add(result("feat", "b4", ("Login", "Search"))).result_id)
    assert not only_flaky(also_new)


# -- [triage] and the routes' label keys ---------------------------------------------------------


def test_triage_defaults_are_the_designs(write_config: Callable[[str], Path]) -> None:
    config = load_config(write_config(""), {})
    assert config.triage == TriageSettings(
        base_branch="main", window=50, flaky_threshold=0.2, flaky_is_green=False
    )
    assert effective_settings(config)["triage"] == {
        "base_branch": "main",
        "window": "50",
        "flaky_threshold": "0.2",
        "flaky_is_green": "False",
    }


@pytest.mark.parametrize(
    ("text", "message_part"),
    [
        ("[triage]\nwindow = 1\n", "[triage] window must be from 2 to 1000 runs"),
        ("[triage]\nwindow = 5000\n", "[triage] window must be from 2 to 1000 runs"),
        ("[triage]\nflaky_threshold = 1.5\n", "[triage] flaky_threshold is a share of runs"),
        ('[triage]\nbase_branch = " "\n', "[triage] base_branch must name a branch"),
        ("[triage]\nflaky = true\n", "[triage]: Object contains unknown field `flaky`"),
        (
            route("r", "json://127.0.0.1:9/x", when='{ labels = ["new", "broken"] }'),
            "route 'r' (routes[0]) has when.labels ['broken']; use any of 'new', "
            "'still failing', 'failing on main', 'flaky', 'fixed'",
        ),
        (
            route("r", "json://127.0.0.1:9/x", when='{ new_failures = "yes" }'),
            "Expected `bool`, got `str`",
        ),
    ],
)
def test_wrong_triage_settings_say_what_to_fix(
    write_config: Callable[[str], Path], text: str, message_part: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(text), {})
    assert message_part in str(raised.value)
