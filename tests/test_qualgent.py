"""QualGent's client against its simulator, and the normalisation of every documented status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from receiver.config import QualgentSettings
from receiver.providers import qualgent
from receiver.providers.errors import AuthRejected, RequestRejected, UnknownTarget
from receiver.providers.qualgent import Device, Qualgent, QualgentJob
from receiver.results import Result
from receiver.simulator import qualgent as sim
from receiver.simulator.common import Served
from tests import sims
from tests.sims import FakeTime, qualgent_sim

__all__ = ["qualgent_sim"]

PIXEL = Device(**sim.DEVICE)


def client(url: str, key: str = sim.API_KEY) -> Qualgent:
    time = FakeTime()
    settings = QualgentSettings(base_url=url, api_key=key)
    return Qualgent(settings, sleep=time.sleep, clock=time.clock)


def run_to_end(served: Served, request: QualgentJob) -> Result:
    return sims.run_to_end(client(served.url), request)


def test_wrong_key_shows_qualgents_message(qualgent_sim: Served) -> None:
    with pytest.raises(AuthRejected, match="401: Invalid or missing API key"):
        asyncio.run(client(qualgent_sim.url, key="qg_wrong").list_jobs())


def test_unknown_test_case(qualgent_sim: Served) -> None:
    request = QualgentJob(test_case_id="tc_nope", app_file_id=sim.APP_ID, device=PIXEL)
    api = client(qualgent_sim.url)
    with pytest.raises(UnknownTarget, match="404: Test case tc_nope not found"):
        asyncio.run(api.send(api.prepare(request, None)))


def test_unknown_test_run(qualgent_sim: Served) -> None:
    with pytest.raises(UnknownTarget, match="Test run run_nope not found"):
        asyncio.run(client(qualgent_sim.url).job_status("run_nope"))


def test_a_body_qualgent_cannot_read_shows_its_422(qualgent_sim: Served) -> None:
    api = client(qualgent_sim.url)
    with pytest.raises(RequestRejected, match=r"422: .*job"):
        asyncio.run(api.api.call("POST", "/v1/test-cases/run", window="all", json={"job": []}))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (QualgentJob(), "needs test_case_id, or run_all"),
        (QualgentJob(test_case_id="tc_pass"), "needs app_file_id and device"),
        (QualgentJob(run_all=True, device=PIXEL), "run_all needs app_file_id and device"),
        (QualgentJob(run_all=True, test_case_id="tc_pass"), "not both"),
    ],
)
def test_requests_are_checked_before_sending(request_: QualgentJob, message: str) -> None:
    api = client("http://127.0.0.1:9")
    with pytest.raises(RequestRejected, match=message):
        api.prepare(request_, None)
    assert api.api.requests == 0


@pytest.mark.parametrize(
    ("case", "status", "raw"),
    [
        ("tc_pass", "passed", "completed"),
        ("tc_passed_form", "passed", "passed"),
        ("tc_fail", "failed", "failed"),
        ("tc_odd", "error", "exploded"),
    ],
)
def test_a_test_case_run_ends_normalised(
    qualgent_sim: Served, case: str, status: str, raw: str
) -> None:
    request = QualgentJob(test_case_id=case, app_file_id=sim.APP_ID, device=PIXEL)
    result = run_to_end(qualgent_sim, request)
    assert (result.status, result.raw_status, result.total) == (status, raw, 1)
    [test] = result.tests
    assert test.name == sim.TEST_CASES[case].name
    assert test.url == f"{sim.LINK}{test.execution_id}"
    assert result.report_url == test.url
    assert (test.device, test.platform) == ("Pixel 7", "Android 14")  # kept per test
    if status != "passed":
        assert result.failures[0].error == raw


def test_run_all_by_category(qualgent_sim: Served) -> None:
    request = QualgentJob(
        run_all=True, app_file_id=sim.APP_ID, device=PIXEL, category_id="cat_smoke"
    )
    result = run_to_end(qualgent_sim, request)
    assert [(t.name, t.status) for t in result.tests] == [
        ("Login Flow Test", "passed"),
        ("Payment Flow Test", "failed"),
    ]
    assert (result.status, result.passed, result.failed) == ("failed", 1, 1)


def test_upload_then_run_on_it(qualgent_sim: Served, tmp_path: Path) -> None:
    apk = tmp_path / "app.apk"
    apk.write_bytes(b"PK\x03\x04 not really an apk")
    api = client(qualgent_sim.url)

    async def go() -> str:
        uploaded = await api.upload_app(apk, app_name="MyApp", version="1.2.0")
        assert uploaded.file is not None
        assert (uploaded.file.os, uploaded.file.file_size) == ("android", apk.stat().st_size)
        cases = await api.list_test_cases(category="cat_smoke")
        assert [c.id for c in cases] == ["tc_pass", "tc_fail"]
        latest = await api.get_app("latest")
        assert latest.name == "MyApp v1.2.0"
        assert latest.id in [a.id for a in await api.list_apps()]
        job = QualgentJob(test_case_id="tc_pass", app_file_id=latest.id, device=PIXEL)
        triggered = await api.send(api.prepare(job, None))
        status = await api.job_status(triggered.external_id)
        listed = await api.list_jobs()
        assert [r.id for r in listed.test_runs] == [triggered.external_id]
        return (status.app.name if status.app else None) or ""

    assert asyncio.run(go()) == "MyApp v1.2.0"


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("queued", "pending"),
        ("running", "running"),
        ("passed", "passed"),
        ("completed", "passed"),
        ("failed", "failed"),
        ("Completed", "passed"),
        ("exploded", "error"),
        ("", "error"),
        (None, "error"),
    ],
)
def test_run_state(raw: str | None, state: str) -> None:
    assert qualgent.run_state(raw) == state


@pytest.mark.parametrize(
    ("link", "run_id"),
    [
        (
            qualgent.JobLink(link="https://app.qualgent.ai/test-runs/run_abc123def456"),
            "run_abc123def456",
        ),
        (qualgent.JobLink(link="https://app.qualgent.ai/test-runs/run_abc/"), "run_abc"),
        (qualgent.JobLink(id="run_x", link="https://x/y/z"), "run_x"),
        (qualgent.JobLink(), None),
    ],
)
def test_run_id_from_the_link(link: qualgent.JobLink, run_id: str | None) -> None:
    assert qualgent.run_id(link) == run_id
