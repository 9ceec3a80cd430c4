"""Routes: every ``when`` key, validation with messages naming the route, on_change groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from receiver import views
from receiver.config import ConfigError, When
from receiver.record import Recorder
from receiver.results import Result
from receiver.routing import Router, group_key, matches, parse_target
from receiver.store import open_store
from receiver.store.tx import Tx
from tests.notify_helpers import make_config, result, route


def when(**keys: Any) -> When:
    return msgspec.convert(keys, When)


FAILED_ON_LOGIN = result("failed", pr_number="7", repository="acme/shop")

MATCHING = [
    ({}, True),
    ({"provider": "qualitymax"}, True),
    ({"provider": ["qualigate", "qualitymax"]}, True),
    ({"provider": "qualgent"}, False),
    ({"event": "test_results"}, True),
    ({"event": ["job_started"]}, False),
    ({"status": "failed"}, True),
    ({"status": ["failed", "error"]}, True),
    ({"status": "passed"}, False),
    ({"branch": "feat/*"}, True),
    ({"branch": "feat/login"}, True),
    ({"branch": ["main", "release/*"]}, False),
    ({"branch": ["main", "feat/log?n"]}, True),
    ({"branch": "FEAT/*"}, False),  # globs are case-sensitive, like git's branch names
    ({"has": ["pr_number"]}, True),
    ({"has": ["pr_number", "sha"]}, False),
    ({"custom_data": {"deploy_id": "abc-123"}}, True),
    ({"custom_data": {"pr_number": 7}}, True),  # TOML integer vs JSON string
    ({"custom_data": {"deploy_id": "other"}}, False),
    ({"custom_data": {"missing": "x"}}, False),
    ({"status": "failed", "branch": "feat/*", "has": ["repository"]}, True),
    ({"status": "failed", "branch": "main"}, False),  # all keys must match
]


@pytest.mark.parametrize(("keys", "expected"), MATCHING)
def test_when_keys(keys: dict[str, Any], expected: bool) -> None:
    assert matches(when(**keys), FAILED_ON_LOGIN) is expected


def test_a_branch_glob_never_matches_a_result_without_branch() -> None:
    bare = Result(provider="qualitymax", event="test_results", status="failed")
    assert not matches(when(branch="*"), bare)
    assert matches(when(), bare)


def test_booleans_match_only_booleans() -> None:
    flagged = Result(
        provider="qualitymax", event="e", status="passed", custom_data={"nightly": True}
    )
    assert matches(when(custom_data={"nightly": True}), flagged)
    assert not matches(when(custom_data={"nightly": "true"}), flagged)


def test_targets_are_masked_for_display() -> None:
    target = parse_target("https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXSECRET", "r")
    assert target.kind == "apprise"
    assert "SECRET" not in target.display and target.display.startswith("slack://")
    mail = parse_target("mailto://user:hunter2@example.com", "r")
    assert "hunter2" not in mail.display


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "github://pr-coment",
            "route 'r': unknown GitHub target 'github://pr-coment'; "
            "use github://pr-comment or github://commit-status",
        ),
        ("slak://T1/B1/C1", "route 'r': Apprise cannot use the target starting 'slak'"),
        ("not a url", "route 'r': Apprise cannot use the target starting 'not a url'"),
    ],
)
def test_a_wrong_target_names_the_route_and_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target(url, "r")
    assert str(caught.value).startswith(message)


def test_github_targets_need_a_token(tmp_path: Path) -> None:
    config = make_config(tmp_path, route("prs", "github://pr-comment"))
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set"):
        Router.from_config(config)


def test_route_names_are_unique(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, route("a", "json://127.0.0.1:1/x") + route("a", "json://127.0.0.1:1/y")
    )
    with pytest.raises(ConfigError, match="two routes are named 'a'"):
        Router.from_config(config)


def test_an_unknown_when_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="branches"):
        make_config(tmp_path, route("r", "json://127.0.0.1:1/x", when='{ branches = "main" }'))


# -- the outbox rows a result gets, in a real database -----------------------------------------


def record(tmp_path: Path, routes: str, *results: Result) -> list[views.DeliveryView]:
    config = make_config(tmp_path, routes)
    recorder = Recorder(Router.from_config(config))
    database = open_store(config.db_path)
    try:
        for value in results:
            database.write_sync(lambda tx, v=value: recorder.record(tx, v, job_id=None))  # type: ignore[misc]
        page = database.read(lambda tx: views.delivery_page(tx, views.DeliveryFilter()))
    finally:
        database.close()
    return sorted(page.items, key=lambda d: d.id)


def record_together(
    tmp_path: Path, routes: str, *results: Result
) -> tuple[list[views.DeliveryView], list[int]]:
    """``record``, but the results in one transaction (as one batch of the writer)."""
    config = make_config(tmp_path, routes)
    recorder = Recorder(Router.from_config(config))
    database = open_store(config.db_path)

    def write(tx: Tx) -> list[int]:
        return [recorder.record(tx, value, job_id=None).deliveries for value in results]

    try:
        counts = database.write_sync(write)
        page = database.read(lambda tx: views.delivery_page(tx, views.DeliveryFilter()))
    finally:
        database.close()
    return sorted(page.items, key=lambda d: d.id), counts


def test_results_of_one_transaction_get_the_deliveries_they_get_one_by_one(
    tmp_path: Path,
) -> None:
    """on_change groups, targets shared by two routes, unmatched results."""
    routes = route(
        "changes", "json://127.0.0.1:9/x", extra='on_change = true\ngroup_by = ["branch"]'
    ) + route(
        "failures", "json://127.0.0.1:9/x", "json://127.0.0.1:9/y", when='{ status = "failed" }'
    )
    results = [result(s) for s in ("passed", "failed", "failed", "passed", "running")]
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one_by_one = record(tmp_path / "one", routes, *results)
    together, counts = record_together(tmp_path / "many", routes, *results)

    def rows(found: list[views.DeliveryView]) -> list[tuple[object, ...]]:
        return [(d.id, d.result_id, d.route, d.target, d.state) for d in found]

    assert rows(together) == rows(one_by_one)
    assert counts == [0, 2, 2, 1, 0]  # result 2: the changed group's x and the failure's y


def test_one_delivery_per_result_and_target(tmp_path: Path) -> None:
    hook = "json://127.0.0.1:9/hook"
    routes = route("failures", hook, when='{ status = "failed" }') + route(
        "all", hook, "json://127.0.0.1:9/b"
    )
    rows = record(tmp_path, routes, result("failed"), result("passed"))
    assert [(d.result_id, d.route, d.target, d.state) for d in rows] == [
        (1, "failures", "json://127.0.0.1:9/hook", "pending"),
        (1, "all", "json://127.0.0.1:9/b", "pending"),
        (2, "all", "json://127.0.0.1:9/hook", "pending"),
        (2, "all", "json://127.0.0.1:9/b", "pending"),
    ]


def test_on_change_speaks_on_changes_only(tmp_path: Path) -> None:
    routes = route(
        "changes", "json://127.0.0.1:9/x", extra='on_change = true\ngroup_by = ["branch"]'
    )
    statuses = ["passed", "passed", "failed", "failed", "passed", "passed"]
    rows = record(tmp_path, routes, *(result(s) for s in statuses))
    # the first passed stays quiet, then each change speaks once
    assert [d.result_id for d in rows] == [3, 5]


def test_the_first_failure_of_a_group_speaks(tmp_path: Path) -> None:
    routes = route(
        "changes", "json://127.0.0.1:9/x", extra='on_change = true\ngroup_by = ["branch"]'
    )
    rows = record(
        tmp_path,
        routes,
        result("failed", branch="a"),
        result("failed", branch="b"),  # another group: its first failure speaks too
        result("failed", branch="a"),
    )
    assert [d.result_id for d in rows] == [1, 2]


def test_group_key_is_provider_and_group_by_values() -> None:
    cfg_route = msgspec.convert(
        {"name": "r", "notify": [], "group_by": ["branch", "environment"]},
        __import__("receiver.config", fromlist=["Route"]).Route,
    )
    assert group_key(cfg_route, result("failed", environment="staging")) == (
        '["qualitymax","feat/login","staging"]'
    )


def test_on_change_ignores_running_updates(tmp_path: Path) -> None:
    routes = route("changes", "json://127.0.0.1:9/x", extra="on_change = true")
    rows = record(tmp_path, routes, result("failed"), result("running"), result("failed"))
    assert [d.result_id for d in rows] == [1]
