"""Triage through the one way results are stored (Recorder.record) into a real SQLite file:
labels per test over sequences of results on main and a pull-request branch, the routes that
match on them, the quarantine list in the API's model and ``receiver flaky``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from receiver import views
from receiver.cli import main
from receiver.config import Config
from receiver.record import Recorded, Recorder
from receiver.results import Result, TestCase
from receiver.routing import Router
from receiver.store import Store, open_store
from receiver.tests_identity import test_id
from receiver.views import ResultDetail
from tests.conftest import SECRET, callback_body
from tests.notify_helpers import make_config, route

TESTS = ("Login", "Checkout", "Search")
HOOK = "json://127.0.0.1:9/hook"  # never sent to: these tests read the outbox


def result(
    branch: str,
    sha: str | None,
    failing: tuple[str, ...] = (),
    *,
    status: str | None = None,
    **custom: Any,
) -> Result:
    """A result of the three tests on ``branch`` at ``sha``, ``failing`` those named."""
    tests = [
        TestCase(
            name=name,
            status="failed" if name in failing else "passed",
            duration_ms=1000,
            error=f"{name} broke" if name in failing else None,
        )
        for name in TESTS
    ]
    custom = {"repository": "acme/shop", "branch": branch, "sha": sha, **custom}
    return Result(
        provider="qualitymax",
        event="test_results",
        status=status or ("failed" if failing else "passed"),
        total=len(tests),
        passed=len(tests) - len(failing),
        failed=len(failing),
        custom_data={k: v for k, v in custom.items() if v is not None},
        tests=tests,
    )


class Stored:
    """A real database and the recorder the service would use for ``config``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: Store = open_store(config.db_path)
        self.recorder = Recorder(Router.from_config(config), config.triage)

    def add(self, value: Result) -> Recorded:
        return self.store.write_sync(lambda tx: self.recorder.record(tx, value, job_id=None))

    def detail(self, result_id: int) -> ResultDetail:
        return self.store.read(lambda tx: views.result_detail(tx, result_id))

    def labels(self, value: Result) -> dict[str, str | None]:
        """Record ``value``; each test's label as read back from the store."""
        detail = self.detail(self.add(value).result_id)
        return {t.name: t.label for t in detail.tests}

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[Stored]:
    database = Stored(make_config(tmp_path, ""))
    yield database
    database.close()


N, S, M, FL, FX = "new", "still failing", "failing on main", "flaky", "fixed"
# Each step: a result (branch, commit, failing tests) and every test's label in it.
Step = tuple[str, str, tuple[str, ...], dict[str, str | None]]
HISTORY: list[Step] = [
    ("main", "a1", ("Search",), {"Login": None, "Checkout": None, "Search": N}),
    ("feat", "b1", ("Login", "Search"), {"Login": N, "Checkout": None, "Search": M}),
    # The same commit again: Login passes now (fixed), and has passed and failed on b1.
    ("feat", "b1", ("Search",), {"Login": FX, "Checkout": None, "Search": M}),
    ("feat", "b2", ("Login", "Checkout"), {"Login": FL, "Checkout": N, "Search": FX}),
    ("main", "a2", (), {"Login": None, "Checkout": None, "Search": FX}),
    ("feat", "b3", ("Checkout",), {"Login": FX, "Checkout": S, "Search": None}),
    ("main", "a3", ("Checkout",), {"Login": None, "Checkout": N, "Search": None}),
    ("main", "a4", ("Checkout",), {"Login": None, "Checkout": M, "Search": None}),
    ("feat", "b4", ("Checkout",), {"Login": None, "Checkout": M, "Search": None}),
]


def test_labels_over_a_history_of_main_and_a_pull_request(stored: Stored) -> None:
    for n, (branch, sha, failing, expected) in enumerate(HISTORY):
        assert stored.labels(result(branch, sha, failing)) == expected, f"step {n + 1}"


def test_the_result_counts_its_labels_and_the_api_carries_them(stored: Stored) -> None:
    for branch, sha, failing, _ in HISTORY[:3]:
        recorded = stored.add(result(branch, sha, failing))
    assert recorded.labels == {"failing on main": 1, "fixed": 1}
    detail = stored.detail(recorded.result_id)
    assert detail.labels == {"failing on main": 1, "fixed": 1}
    search = next(t for t in detail.tests if t.name == "Search")
    assert search.triage is not None and search.triage.base_branch == "main"
    page = stored.store.read(lambda tx: views.result_page(tx, views.ResultFilter()))
    assert page.items[0].labels == {"failing on main": 1, "fixed": 1}  # listings too
    assert page.items[-1].labels == {"new": 1}


def test_still_failing_keeps_since_which_commit_and_how_many_runs(stored: Stored) -> None:
    stored.add(result("feat", "b1", ("Login",)))
    stored.add(result("feat", "b2", ("Login",)))
    detail = stored.detail(stored.add(result("feat", "b3", ("Login",))).result_id)
    login = next(t for t in detail.tests if t.name == "Login")
    assert login.label == S and login.triage is not None
    assert (login.triage.since, login.triage.runs) == ("b1", 3)


def test_the_same_name_in_another_repository_is_another_test(stored: Stored) -> None:
    stored.add(result("main", "a1", ("Login",)))
    other = result("feat", "c1", ("Login",), repository="acme/other")
    assert stored.labels(other)["Login"] == N  # not "failing on main": that is acme/shop's


def test_each_matrix_cell_is_judged_apart(stored: Stored) -> None:
    """Failing on firefox while passing on chromium, on one commit, is no flake."""
    stored.add(result("feat", "b1", (), browser="chromium"))
    firefox = result("feat", "b1", ("Login",), browser="firefox")
    assert stored.labels(firefox)["Login"] == N
    assert stored.labels(result("feat", "b1", (), browser="chromium"))["Login"] is None
    again = stored.labels(result("feat", "b1", ("Login",), browser="firefox"))
    assert again["Login"] == S
    # One commit passing and failing within one cell is a flake, and the list names the cell.
    assert stored.labels(result("feat", "b1", (), browser="firefox"))["Login"] == FX
    flaky = stored.labels(result("feat", "b1", ("Login",), browser="firefox"))
    assert flaky["Login"] == FL
    found = stored.store.read(lambda tx: views.flaky_list(tx)).items
    assert [(t.test, t.cell) for t in found] == [("Login", "firefox")]
    assert found[0].test_id == test_id("qualitymax", "acme/shop", "Login")  # the dashboard's


def test_a_project_stands_for_the_repository(stored: Stored) -> None:
    stored.add(result("main", "a1", ("Login",), repository=None, project="137"))
    later = result("feat", "b1", ("Login",), repository=None, project=137)
    assert stored.labels(later)["Login"] == M


def test_without_repository_or_project_nothing_is_triaged(stored: Stored) -> None:
    """Such a test has no identity: the same name in two applications would be one test."""
    bare = result("main", "a1", ("Login",), repository=None)
    assert stored.labels(bare) == dict.fromkeys(TESTS)
    assert stored.labels(bare) == dict.fromkeys(TESTS)
    assert rows(stored, "test_history") == 0


def test_a_running_update_is_not_triaged_nor_kept_in_the_history(stored: Stored) -> None:
    stored.add(result("feat", "b1", ("Login",)))
    running = result("feat", "b2", ("Login",), status="running")
    assert stored.labels(running) == dict.fromkeys(TESTS)
    assert stored.labels(result("feat", "b3", ("Login",)))["Login"] == S
    login = stored.detail(3).tests[0]
    assert login.triage is not None and login.triage.runs == 2  # the running one not counted


def test_a_name_listed_twice_failed_if_either_failed(stored: Stored) -> None:
    value = result("feat", "b1")
    value.tests.append(TestCase(name="Login", status="failed", error="second run broke"))
    labels = [t.label for t in stored.detail(stored.add(value).result_id).tests]
    assert labels == [None, None, None, N]  # the passed row of the failed name carries none


def test_a_test_passing_again_on_a_commit_its_window_holds_rewrites_nothing(
    tmp_path: Path,
) -> None:
    stored = Stored(make_config(tmp_path, "[triage]\nwindow = 3\n"))
    try:
        for _ in range(3):
            stored.add(result("main", "a1"))
        history, branches = table(stored, "test_history"), table(stored, "test_branches")
        stored.add(result("main", "a1"))
        assert table(stored, "test_history") == history  # last_seen_at included
        assert table(stored, "test_branches") == branches
        stored.add(result("main", "a2"))  # a new commit moves the window: one write per test
        assert table(stored, "test_history") != history
        assert table(stored, "test_branches") == branches  # still passing: its streak stays
    finally:
        stored.close()


def rows(stored: Stored, name: str) -> int:
    return len(table(stored, name))


def table(stored: Stored, name: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(stored.config.db_path)
    try:
        return conn.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


# -- routes on labels --------------------------------------------------------------------------


def deliveries(stored: Stored, value: Result) -> int:
    return stored.add(value).deliveries


def test_new_failures_speaks_on_a_new_failure_only(tmp_path: Path) -> None:
    routes = route("breakage", HOOK, when="{ new_failures = true }")
    stored = Stored(make_config(tmp_path, routes))
    try:
        assert deliveries(stored, result("feat", "b1", ("Login",))) == 1  # Login breaks
        assert deliveries(stored, result("feat", "b2", ("Login",))) == 0  # the same failure
        assert deliveries(stored, result("feat", "b3", ("Login", "Search"))) == 1  # Search new
        assert deliveries(stored, result("feat", "b4")) == 0  # fixed: nothing new
    finally:
        stored.close()


def test_labels_match_any_of_theirs(tmp_path: Path) -> None:
    routes = route("fixes and flakes", HOOK, when='{ labels = ["fixed", "flaky"] }')
    stored = Stored(make_config(tmp_path, routes))
    try:
        assert deliveries(stored, result("feat", "b1", ("Login",))) == 0  # new
        assert deliveries(stored, result("feat", "b2")) == 1  # fixed
        assert deliveries(stored, result("feat", "b2", ("Login",))) == 1  # flaky on b2
        assert deliveries(stored, result("feat", "b3", ("Login",))) == 1  # still flaky
    finally:
        stored.close()


def test_label_routes_with_other_keys_need_them_all(tmp_path: Path) -> None:
    routes = route("main breakage", HOOK, when='{ new_failures = true, branch = "main" }')
    stored = Stored(make_config(tmp_path, routes))
    try:
        assert deliveries(stored, result("feat", "b1", ("Login",))) == 0
        assert deliveries(stored, result("main", "a1", ("Login",))) == 1
    finally:
        stored.close()


# -- the quarantine list -----------------------------------------------------------------------


def flaky_store(tmp_path: Path) -> Stored:
    """Login flaked on b1 in acme/shop, Search on c1 in acme/web; Checkout failed for real."""
    stored = Stored(make_config(tmp_path, ""))
    stored.add(result("feat", "b1", ("Login", "Checkout")))
    stored.add(result("feat", "b1", ("Checkout",)))
    stored.add(result("feat", "c1", repository="acme/web"))
    stored.add(result("feat", "c1", ("Search",), repository="acme/web"))
    return stored


def test_the_flaky_list_names_each_flaky_test_with_its_figures(tmp_path: Path) -> None:
    stored = flaky_store(tmp_path)
    try:
        found = stored.store.read(lambda tx: views.flaky_list(tx)).items
        assert [(t.test, t.repository) for t in found] == [
            ("Search", "acme/web"),  # the latest failure first
            ("Login", "acme/shop"),
        ]
        login = found[1]
        assert (login.provider, login.runs, login.failures) == ("qualitymax", 2, 1)
        assert (login.same_commit_failures, login.flake_rate) == (1, 1.0)  # F then P: 2 flips
        assert login.last_failure is not None and login.last_seen >= login.last_failure
        only = stored.store.read(lambda tx: views.flaky_list(tx, "acme/shop")).items
        assert [t.test for t in only] == ["Login"]
    finally:
        stored.close()


def invoke(config: Config, *args: str) -> tuple[int, str]:
    env = {"QUALITYMAX_WEBHOOK_SECRET": SECRET, "RECEIVER_DB": config.db_path}
    outcome = CliRunner().invoke(main, ["flaky", *args, "--config", config.source], env=env)
    return outcome.exit_code, outcome.output


def test_receiver_flaky_prints_the_list(tmp_path: Path) -> None:
    stored = flaky_store(tmp_path)
    stored.close()
    code, output = invoke(stored.config)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == [
        "test",
        "provider",
        "repository",
        "failed",
        "flips",
        "same",
        "commit",
        "last",
        "failure",
    ]
    assert lines[1].split()[:7] == ["Search", "qualitymax", "acme/web", "1", "of", "2", "50%"]
    assert lines[2].split()[:4] == ["Login", "qualitymax", "acme/shop", "1"]
    code, output = invoke(stored.config, "--repository", "acme/shop", "--json")
    assert code == 0, output
    (login,) = json.loads(output)
    assert (login["test"], login["repository"], login["runs"]) == ("Login", "acme/shop", 2)
    code, output = invoke(stored.config, "--repository", "acme/none")
    assert (code, output) == (0, "no flaky tests\n")


def test_receiver_flaky_never_creates_a_database(tmp_path: Path) -> None:
    config = make_config(tmp_path, "")
    code, output = invoke(config)
    assert code == 1
    assert output.startswith("Error: No database at ")
    assert not Path(config.db_path).exists()


def test_check_config_result_says_which_routes_wait_on_labels(tmp_path: Path) -> None:
    routes = route("breakage", HOOK, when='{ new_failures = true, branch = "feat/*" }') + route(
        "main fixes", HOOK, when='{ labels = ["fixed"], branch = "main" }'
    )
    config = make_config(tmp_path, routes)
    body = tmp_path / "callback.json"
    body.write_bytes(callback_body())  # feat/new-feature
    env = {"QUALITYMAX_WEBHOOK_SECRET": SECRET, "RECEIVER_DB": config.db_path}
    args = ["check-config", "--config", config.source, "--result", str(body)]
    outcome = CliRunner().invoke(main, args, env=env)
    assert (outcome.exit_code, outcome.output) == (
        0,
        "result: passed (qualitymax, event test_results, feat/new-feature)\n"
        "route 'breakage': only if its tests' triage labels match (known when stored)\n"
        "reaches no route\n",
    )


def test_flaky_has_help_with_an_example() -> None:
    output = CliRunner().invoke(main, ["flaky", "--help"]).output
    assert "Example:" in output and "--repository" in output and "--json" in output
