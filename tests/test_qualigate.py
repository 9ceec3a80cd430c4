"""Qualigate's client against its simulator, and the normalisation of every documented status."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from receiver.config import QualigateSettings
from receiver.providers import qualigate
from receiver.providers.errors import AuthRejected, RequestRejected, UnknownTarget
from receiver.providers.qualigate import Qualigate, QualigateJob, TriggerRequest
from receiver.results import Result
from receiver.simulator import qualigate as sim
from receiver.simulator.common import Served
from tests import sims
from tests.sims import FakeTime, qualigate_sim

__all__ = ["qualigate_sim"]


def client(url: str, key: str = sim.API_KEY) -> Qualigate:
    time = FakeTime()
    settings = QualigateSettings(base_url=url, api_key=key)
    return Qualigate(settings, sleep=time.sleep, clock=time.clock)


def run_to_end(served: Served, request: QualigateJob) -> Result:
    return sims.run_to_end(client(served.url), request)


def test_wrong_key_shows_qualigates_message(qualigate_sim: Served) -> None:
    api = client(qualigate_sim.url, key="qg_wrong")
    with pytest.raises(AuthRejected, match="401: Unauthorized: Missing or invalid API key"):
        asyncio.run(api.trigger_run(TriggerRequest(test_case_id=sim.PASSING_CASE)))


def test_x_api_key_header_is_accepted_too(qualigate_sim: Served) -> None:
    answer = httpx.get(
        f"{qualigate_sim.url}/api/v1/ci-config",
        params={"project_id": sim.PROJECT},
        headers={"X-API-Key": sim.API_KEY},
    )
    assert answer.status_code == 200


def test_unknown_test_case_shows_not_found(qualigate_sim: Served) -> None:
    api = client(qualigate_sim.url)
    unknown = "99999999-0000-4000-8000-000000000000"
    with pytest.raises(UnknownTarget, match="404: Not Found: Test case not found"):
        asyncio.run(api.trigger_run(TriggerRequest(test_case_id=unknown)))


def test_not_a_uuid_is_a_validation_error(qualigate_sim: Served) -> None:
    api = client(qualigate_sim.url)
    with pytest.raises(RequestRejected, match=r"400: .*test_case_id must be a UUID"):
        asyncio.run(api.trigger_run(TriggerRequest(test_case_id="login-test")))


@pytest.mark.parametrize(
    "request_",
    [QualigateJob(), QualigateJob(test_case_id="a", project_id="b")],
    ids=["none", "two"],
)
def test_exactly_one_target_is_checked_before_sending(request_: QualigateJob) -> None:
    api = client("http://127.0.0.1:9")
    with pytest.raises(RequestRejected, match="exactly one of test_case_id"):
        api.prepare(request_, None)
    assert api.api.requests == 0


def test_context_is_filled_from_custom_data() -> None:
    custom = {"branch": "main", "head_sha": "abc123", "pr_number": 42, "repo": "org/shop", "x": 1}
    request = qualigate.with_context(TriggerRequest(test_suite_id="s"), custom)
    assert request.context == qualigate.Context(
        branch="main", sha="abc123", pr_number="42", repository="org/shop"
    )


def test_context_given_by_hand_wins() -> None:
    given = TriggerRequest(
        test_case_id="t", context=qualigate.Context(source="jenkins", branch="x")
    )
    request = qualigate.with_context(given, {"branch": "main"})
    assert request.context == qualigate.Context(source="jenkins", branch="x")


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        (sim.PASSING_CASE, "passed", None),
        (sim.FAILING_CASE, "failed", "Element not found: button[data-test='submit-order']"),
        (sim.ERROR_CASE, "error", "Browser crashed"),
        (sim.TIMEOUT_CASE, "timeout", "Test exceeded the maximum execution time"),
        (sim.CANCELED_CASE, "canceled", None),
        (sim.ODD_CASE, "error", None),
    ],
)
def test_a_test_case_run_ends_normalised(
    qualigate_sim: Served, case: str, status: str, error: str | None
) -> None:
    result = run_to_end(
        qualigate_sim, QualigateJob(test_case_id=case, custom_data={"branch": "main"})
    )
    assert (result.status, result.total, result.passed) == (status, 1, int(status == "passed"))
    [test] = result.tests
    assert test.name == sim.CASES[case].name
    assert test.error == error
    assert test.duration_ms == 45_000
    assert test.url and test.url.startswith(sim.LINK)
    assert test.video_url
    assert result.report_url == test.url
    assert result.raw_status == sim.CASES[case].outcome  # "exploded" is kept as it came


@pytest.mark.parametrize(
    ("suite", "status", "raw", "passed", "failed"),
    [
        (sim.MIXED_SUITE, "failed", "completed", 1, 1),
        (sim.GREEN_SUITE, "passed", "completed", 2, 0),
        (sim.VERDICT_SUITE, "failed", "failed", 1, 1),
    ],
)
def test_a_suite_run_ends_by_its_counts(
    qualigate_sim: Served, suite: str, status: str, raw: str, passed: int, failed: int
) -> None:
    result = run_to_end(qualigate_sim, QualigateJob(test_suite_id=suite))
    assert (result.status, result.raw_status) == (status, raw)
    assert (result.total, result.passed, result.failed) == (2, passed, failed)
    assert [t.status for t in result.tests] == ["passed", "passed" if failed == 0 else "failed"]
    assert result.summary == f"{sim.SUITES[suite][0]}: {passed} of 2 tests passed"
    if failed:
        assert result.failures[0].test == "Checkout Process"


def test_a_project_run_is_polled_through_results(qualigate_sim: Served) -> None:
    result = run_to_end(qualigate_sim, QualigateJob(project_id=sim.PROJECT))
    assert (result.status, result.total, result.passed, result.failed) == ("failed", 3, 2, 1)
    assert len(result.external_job_id.split(",")) == 3  # type: ignore[union-attr]


def test_ci_config(qualigate_sim: Served) -> None:
    config = asyncio.run(client(qualigate_sim.url).ci_config(sim.PROJECT))
    assert config.ci_config is not None and config.ci_config.test_suite_id == sim.MIXED_SUITE


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("pending", "pending"),
        ("running", "running"),
        ("passed", "ended"),
        ("failed", "ended"),
        ("error", "ended"),
        ("timeout", "ended"),
        ("canceled", "ended"),
        ("completed", "ended"),
        ("exploded", "ended"),
        (None, "ended"),
    ],
)
def test_progress_state(raw: str | None, state: str) -> None:
    assert qualigate.progress_state(raw) == state


@pytest.mark.parametrize(
    ("raw", "total", "passed", "failed", "status"),
    [
        ("passed", 1, 1, 0, "passed"),
        ("failed", 1, 0, 1, "failed"),
        ("error", 1, 0, 0, "error"),
        ("timeout", 1, 0, 0, "timeout"),
        ("canceled", 1, 0, 0, "canceled"),
        ("cancelled", 1, 0, 0, "canceled"),
        ("completed", 5, 5, 0, "passed"),
        ("completed", 5, 4, 1, "failed"),
        ("completed", 5, 4, 0, "failed"),  # one neither passed nor failed: not green
        ("COMPLETED", 0, 0, 0, "passed"),
        ("exploded", 1, 0, 0, "error"),
        ("running", 1, 0, 0, "error"),  # asked for a verdict, a non-terminal one is no verdict
        (None, 1, 0, 0, "error"),
    ],
)
def test_verdict(raw: str | None, total: int, passed: int, failed: int, status: str) -> None:
    assert qualigate.verdict(raw, total=total, passed=passed, failed=failed) == status


def test_a_run_answer_without_results_entry_still_normalises() -> None:
    status = qualigate.RunStatus(id="r1", status="failed", duration_ms=1500.0, error_message="boom")
    result = qualigate.run_result(status, None, "r1", {"pr_number": "7"})
    assert (result.status, result.tests[0].name, result.tests[0].error) == (
        "failed",
        "test run r1",
        "boom",
    )
    assert result.pr_number == 7 and result.duration_ms == 1500
