"""QualityMax beyond the webhook, client against simulator: each partner endpoint, each refusal
the document lists (and those receiver makes before sending), the documented limits kept by the
client's windows, and a Retry-After obeyed in full."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from functools import partial
from typing import Any, TypeVar

import httpx
import pytest
import stamina

from receiver.config import QualityMaxSettings
from receiver.providers import qualitymax as qm
from receiver.providers.errors import ProviderUnavailable, RequestRejected, UnknownTarget
from receiver.simulator import qualitymax as sim
from receiver.simulator.common import Served
from tests.sims import FakeTime
from tests.sinks import HttpSink, always

KEY = "qm-apis-key"
T = TypeVar("T")


@pytest.fixture
def partner() -> Iterator[Served]:
    settings = sim.SimulatorSettings(api_key=KEY, delay=0.05)
    with Served(sim.create_simulator(settings)) as served:
        yield served


def client(url: str, **options: Any) -> qm.QualityMax:
    settings = QualityMaxSettings(
        base_url=url, api_key=KEY, partner_slug="acme", webhook_secret=sim.DEV_WEBHOOK_SECRET
    )
    return qm.QualityMax(settings, **options)


def run(url: str, call: Callable[[qm.QualityMax], Awaitable[T]], **options: Any) -> T:
    async def go() -> T:
        partner = client(url, **options)
        try:
            return await call(partner)
        finally:
            await partner.aclose()

    return asyncio.run(go())


def requests_of(served: Served) -> dict[str, int]:
    answer: dict[str, int] = httpx.get(f"{served.url}/_simulator/counters").json()["requests"]
    return answer


def rates(served: Served) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{served.url}/_simulator/rates").json()
    return answer


# -- each endpoint -------------------------------------------------------------------------------


def test_a_repository_is_imported_then_scanned_to_a_failing_verdict(partner: Served) -> None:
    async def go(c: qm.QualityMax) -> tuple[qm.ImportAnswer, list[qm.ScanResult]]:
        imported = await c.import_repository(
            qm.ImportRequest(url="https://github.com/acme/insecure-api")
        )
        assert imported.repository_id is not None
        started = await c.start_scan(qm.SastScanRequest(repository_id=imported.repository_id))
        return imported, [await c.scan_result(started.job_id) for _ in range(3)]

    imported, polls = run(partner.url, go)
    assert (imported.success, imported.already_exists) == (True, False)
    assert [p.status for p in polls] == ["pending", "running", "completed"]
    result = qm.sast_result(polls[-1], "scan_x", {"branch": "main"})
    assert (result.kind, result.status, result.event) == ("sast", "failed", "sast_scan")
    security = result.security
    assert security is not None
    assert security.counts == {"critical": 1, "high": 2, "medium": 1, "low": 1}
    assert [f.severity for f in security.findings] == ["critical", "high", "high", "medium", "low"]
    assert security.findings[0].cwe == "CWE-798" and security.findings[0].line == 8
    assert result.summary == "SAST fail: 1 critical, 2 high, 1 medium, 1 low"


def test_the_documents_repository_passes_with_its_high_finding(partner: Served) -> None:
    async def go(c: qm.QualityMax) -> qm.ScanResult:
        started = await c.start_scan(qm.SastScanRequest(repository_id=42))
        for _ in range(2):
            await c.scan_result(started.job_id)
        return await c.scan_result(started.job_id)

    result = qm.sast_result(run(partner.url, go), "scan_y", {})
    assert result.status == "passed"  # the verdict decides, not the severities
    assert result.security is not None and result.security.worst == "high"


def test_a_gap_analysis_reports_tests_per_category(partner: Served) -> None:
    request = qm.GapAnalysisRequest(repository_id=42, categories=["e2e", "security"])

    async def go(c: qm.QualityMax) -> list[qm.GapStatus]:
        started = await c.start_gap_analysis(request)
        assert started.status == "queued"
        return [await c.gap_status(started.job_id) for _ in range(3)]

    polls = run(partner.url, go)
    assert [p.progress for p in polls] == [0.0, 0.5, 1.0]
    result = qm.gap_result(polls[-1], "gap_1", {})
    assert (result.kind, result.status, result.total) == ("gap_analysis", "passed", 10)
    assert result.coverage is not None and result.coverage.categories == {"e2e": 5, "security": 5}
    assert result.summary == "10 tests generated: e2e 5, security 5"


def test_tests_are_generated_and_created(partner: Served) -> None:
    async def go(c: qm.QualityMax) -> list[dict[str, Any]]:
        return [
            await c.generate_api_tests(
                qm.ApiTestsRequest(openapi_url="https://api.example.com/openapi.json")
            ),
            await c.create_test_case(qm.TestCaseRequest(project_id=15, title="Login works")),
            await c.generate_test_cases(
                qm.GenerateTestCasesRequest(project_id=15, description="Login", count=2)
            ),
        ]

    api_tests, created, generated = run(partner.url, go)
    assert api_tests["tests_generated"] == 4
    assert created["title"] == "Login works"
    assert len(generated["test_cases"]) == 2
    assert requests_of(partner) == {
        "api_tests_generate": 1,
        "test_cases": 1,
        "test_cases_generate": 1,
    }


def test_report_logs_and_artifacts_of_a_finished_job(partner: Served) -> None:
    sink = HttpSink()
    try:

        async def go(c: qm.QualityMax) -> tuple[qm.JobReport, qm.ExecutionLogs, str]:
            outgoing = c.prepare(
                qm.QualityMaxJob(
                    url="https://a.example",
                    feature_description="log in",
                    custom_data={"simulate": "failed"},
                ),
                f"{sink.base_url}/cb",
            )
            sent = await c.send(outgoing)
            assert sink.wait_for(lambda: len(sink.to("/cb")) == 1)
            execution = sink.to("/cb")[0].json()["results"]["tests"][1]["execution_id"]
            return (
                await c.report(sent.external_id),
                await c.logs(execution),
                await c.artifact_location(execution, "screenshot"),
            )

        report, logs, location = run(partner.url, go)
    finally:
        sink.close()
    assert report.job.tests_generated == 3
    assert logs.error_message is not None and "task sections" in logs.error_message
    assert location.startswith(partner.url) and location.endswith("screenshot.png")


# -- refusals ------------------------------------------------------------------------------------


def test_a_scan_of_a_repository_not_imported_is_the_documents_404(partner: Served) -> None:
    with pytest.raises(UnknownTarget, match="Import it first"):
        run(partner.url, lambda c: c.start_scan(qm.SastScanRequest(repository_id=999)))


def test_api_tests_need_exactly_one_spec_before_anything_is_sent(partner: Served) -> None:
    both = qm.ApiTestsRequest(openapi_spec="{}", openapi_url="https://x.example/spec")
    for request in (qm.ApiTestsRequest(project_id=15), both):
        with pytest.raises(RequestRejected, match=r"^openapi_spec: give either"):
            run(partner.url, partial(_generate_api_tests, request=request))
    assert requests_of(partner) == {}


def test_an_execution_id_cannot_climb_to_another_endpoint(partner: Served) -> None:
    with pytest.raises(RequestRejected, match=r"^execution_id"):
        run(partner.url, lambda c: c.logs("../jobs/pwj_1"))
    assert requests_of(partner) == {}


@pytest.mark.parametrize(
    ("job", "problem"),
    [
        ({"kind": "sast"}, "repository_id: kind sast needs an imported repository's id"),
        ({"kind": "sast", "repository_id": 42, "url": "https://a"}, "url: is for kind tests"),
        ({"kind": "sast", "repository_id": 42, "engines": ["zap"]}, "engines: 'zap' is not"),
        ({"kind": "sast", "repository_id": 42, "engines": []}, "engines: give at least one"),
        ({"kind": "sast", "repository_id": 42, "categories": ["e2e"]}, "categories: is for kind"),
        ({"kind": "gap_analysis", "repository_id": 42}, "categories: give one or more"),
        (
            {"kind": "gap_analysis", "repository_id": 42, "categories": ["e2e"],
             "max_tests_per_category": 0},
            "max_tests_per_category: is 0",
        ),
        ({"url": "https://a", "feature_description": "f", "engines": ["semgrep"]}, "engines: is"),
    ],
)  # fmt: skip
def test_a_job_of_one_kind_refuses_the_fields_of_another(job: dict[str, Any], problem: str) -> None:
    import msgspec

    request = msgspec.convert(job, qm.QualityMaxJob)
    partner = client("http://127.0.0.1:9")
    with pytest.raises(RequestRejected) as refused:
        partner.prepare(request, "https://receiver.example/cb")
    assert str(refused.value).startswith(problem)


def test_a_scan_needs_only_the_api_key() -> None:
    partner = qm.QualityMax(QualityMaxSettings(api_key=KEY))  # no slug, no webhook secret
    outgoing = partner.prepare(qm.QualityMaxJob(kind="sast", repository_id=42), None)
    assert outgoing.wire == qm.SastScanRequest(repository_id=42)
    assert outgoing.kept == '{"repository_id":42,"branch":"main","engines":["semgrep","bandit"]}'


# -- the documented limits -----------------------------------------------------------------------


def test_the_client_keeps_every_documented_window(partner: Served) -> None:
    """LLM endpoints together, free ones together, import and scan each on top of free: a burst
    through the client never goes over any (the simulator scaled to 3 and 5 per 0.6 s)."""
    scaled = sim.SimulatorSettings(
        api_key=KEY, webhook_per_minute=3, free_per_minute=5, endpoint_per_minute=2,
        window_seconds=0.6,
    )  # fmt: skip
    with Served(sim.create_simulator(scaled)) as small:

        async def burst(c: qm.QualityMax) -> None:
            generate = qm.GenerateTestCasesRequest(project_id=15, description="x", count=1)
            calls: list[Coroutine[Any, Any, object]]
            calls = [c.generate_test_cases(generate) for _ in range(7)]
            calls += [c.import_repository(qm.ImportRequest(url=f"https://github.com/a/r{i}"))
                      for i in range(4)]  # fmt: skip
            calls += [c.create_test_case(qm.TestCaseRequest(project_id=15, title="t"))
                      for _ in range(6)]  # fmt: skip
            await asyncio.gather(*calls)

        limits = {"llm": 3, "free": 5, "import": 2, "sast_scan": 2}
        run(small.url, burst, limits=limits, rate_window=0.6)
        score = rates(small)
    assert score["limited"] == 0
    assert score["admitted"] == {"llm": 7, "free": 10, "import": 4}
    assert score["max_in_window"]["llm"] <= 3
    assert score["max_in_window"]["free"] <= 5
    assert score["max_in_window"]["import"] <= 2


def test_a_429s_retry_after_is_obeyed_in_full() -> None:
    """45 s, longer than the 30 s the old client capped it at: the window holds it whole."""
    partner_api = HttpSink()
    partner_api.on("/api/v1/partner/sast/scan/scan_1", always(429, **{"Retry-After": "45"}))
    clock = FakeTime()
    try:
        with stamina.set_testing(True, attempts=2), pytest.raises(ProviderUnavailable):
            run(
                partner_api.base_url,
                lambda c: c.scan_result("scan_1"),
                sleep=clock.sleep,
                clock=clock.clock,
            )
    finally:
        partner_api.close()
    assert 45.0 in [round(s, 1) for s in clock.sleeps]


async def _generate_api_tests(client: qm.QualityMax, *, request: qm.ApiTestsRequest) -> object:
    return await client.generate_api_tests(request)
