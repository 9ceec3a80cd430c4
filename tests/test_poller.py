"""The poller end to end against the simulators: trigger, poll to the end, store once, resume
after a restart, time out a run that never ends, and never go over a provider's rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from receiver import views
from receiver.clock import utcnow
from receiver.config import QualgentSettings, QualigateSettings, load_config
from receiver.jobs import Submission
from receiver.poller import Poller
from receiver.process import free_port
from receiver.providers import job_body_type
from receiver.providers.base import Provider
from receiver.providers.errors import NotConfigured, RequestRejected
from receiver.providers.http import RetryPolicy
from receiver.providers.qualgent import Qualgent
from receiver.providers.qualigate import Qualigate
from receiver.record import Recorded, Recorder
from receiver.results import Result
from receiver.routing import Router
from receiver.sender import Sender
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from receiver.store import Store, jobs, open_store
from tests.sims import stats
from tests.store_helpers import opened

PR = {"branch": "feature/x", "sha": "abc123", "pr_number": 42, "repository": "org/shop"}
LIMIT, WINDOW = 5, 0.5  # the simulators' limits, scaled down so tests reach them in a second


@pytest.fixture
def gate_sim_fast() -> Iterator[Served]:
    with Served(gate_sim.create_app(limit=LIMIT, window=WINDOW)) as served:
        yield served


@pytest.fixture
def gent_sim_fast() -> Iterator[Served]:
    with Served(gent_sim.create_app(limit=LIMIT, window=WINDOW)) as served:
        yield served


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "receiver.db"))
    yield opened
    opened.close()


def qualigate(url: str, **settings: Any) -> Qualigate:
    values = {"poll_seconds": 0.01, "timeout_seconds": 60, **settings}
    config = QualigateSettings(base_url=url, api_key=gate_sim.API_KEY, **values)
    return Qualigate(config, rate_limit=LIMIT, rate_window=WINDOW)


def qualgent(url: str, **settings: Any) -> Qualgent:
    values = {"poll_seconds": 0.01, "timeout_seconds": 60, **settings}
    config = QualgentSettings(base_url=url, api_key=gent_sim.API_KEY, **values)
    return Qualgent(config, rate_limit=LIMIT, rate_window=WINDOW)


class Hook:
    """Stands in for the delivery worker: notes each result, once its commit is done."""

    def __init__(self, database: Store) -> None:
        self.database = database
        self.calls: list[tuple[int, str]] = []

    def __call__(self, recorded: Recorded) -> None:
        status = self.database.read(lambda tx: views.result_detail(tx, recorded.result_id).status)
        self.calls.append((recorded.result_id, status))


def polling(database: Store, providers: list[Provider], hook: Hook | None = None) -> Poller:
    return Poller(database, providers, Recorder(Router([])), on_recorded=hook)


def job(database: Store, job_id: int) -> views.JobView:
    return database.read(lambda tx: views.job_view(tx, job_id))


def count_results(database: Store) -> int:
    return int(database.read(lambda tx: tx.execute("SELECT count(*) FROM results").fetchone()[0]))


async def until(check: Callable[[], bool], limit: int = 2000) -> None:
    """Wait for a state, not for a time: give up only after many turns."""
    for _ in range(limit):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the state never came")


def run_poller(
    poller: Poller, done: Callable[[list[int]], bool], *submits: tuple[str, dict[str, Any]]
) -> list[int]:
    """Submit (provider, request) pairs, poll until ``done(job ids)``, stop: all on one loop, as
    in the service (a client's connections belong to the loop that opened them)."""

    async def go() -> list[int]:
        poller.start()
        submission = submitting(poller)
        sender = Sender(submission, poller.providers.values())  # jobs over a limit wait there
        submission.on_queued = sender.wake
        sender.start()
        try:
            ids = [(await submission.submit(body(p, r))).id for p, r in submits]
            await until(lambda: done(ids))
            return ids
        finally:
            await sender.stop()
            await poller.stop()
            for provider in poller.providers.values():
                await provider.aclose()

    return asyncio.run(go())


def submitting(poller: Poller) -> Submission:
    """How the service submits: record, send, then wake the poller."""
    config = load_config(Path("/dev/null"), {})
    return Submission(poller.store, config, poller.providers, on_polled=poller.wake)


def body(provider: str, request: dict[str, Any], custom_data: dict[str, Any] = PR) -> Any:
    """POST /api/jobs' body, decoded as the service decodes it."""
    fields = {"provider": provider, **request, "custom_data": custom_data}
    return msgspec.convert(fields, job_body_type())


def test_suite_and_mobile_runs_go_from_submit_to_one_stored_result(
    database: Store, gate_sim_fast: Served, gent_sim_fast: Served
) -> None:
    hook = Hook(database)
    providers: list[Provider] = [qualigate(gate_sim_fast.url), qualgent(gent_sim_fast.url)]
    poller = polling(database, providers, hook)
    ids: list[int] = []

    async def go() -> None:
        poller.start()
        submission = submitting(poller)
        suite = await submission.submit(body("qualigate", {"test_suite_id": gate_sim.MIXED_SUITE}))
        mobile = await submission.submit(
            body(
                "qualgent",
                {"run_all": True, "app_file_id": gent_sim.APP_ID, "device": gent_sim.DEVICE},
                {"branch": "main"},
            )
        )
        assert (suite.state, suite.external_kind) == ("submitted", "suite_run")
        ids.extend([suite.id, mobile.id])
        await until(lambda: all(job(database, i).result_id for i in ids))
        await poller.stop()

    asyncio.run(go())
    suite_job, mobile_job = (job(database, i) for i in ids)
    assert suite_job.state == "failed" and suite_job.result is not None
    assert suite_job.result.summary == "Critical User Flows: 1 of 2 tests passed"
    assert suite_job.result.pr_number == 42 and suite_job.result.branch == "feature/x"
    assert [(t.name, t.status) for t in suite_job.result.tests] == [
        ("User Login Flow", "passed"),
        ("Checkout Process", "failed"),
    ]
    assert all(t.url and t.url.startswith(gate_sim.LINK) for t in suite_job.result.tests)
    assert suite_job.result.failures[0].error.startswith("Element not found")
    assert mobile_job.state == "failed" and mobile_job.result is not None
    assert mobile_job.result.total == 3
    assert sorted(hook.calls) == sorted(
        [(suite_job.result_id, "failed"), (mobile_job.result_id, "failed")]
    )
    assert count_results(database) == 2
    for sim in (gate_sim_fast, gent_sim_fast):
        assert stats(sim)["limited"] == 0


def test_many_jobs_never_go_over_the_rate_limit(
    database: Store, gate_sim_fast: Served, gent_sim_fast: Served
) -> None:
    gate, gent = qualigate(gate_sim_fast.url), qualgent(gent_sim_fast.url)
    poller = polling(database, [gate, gent])

    mobile: dict[str, Any] = {
        "test_case_id": "tc_pass",
        "app_file_id": gent_sim.APP_ID,
        "device": gent_sim.DEVICE,
    }
    submits: list[tuple[str, dict[str, Any]]] = [
        ("qualigate", {"test_case_id": gate_sim.PASSING_CASE}),
        ("qualgent", mobile),
    ] * 6
    run_poller(poller, lambda ids: all(job(database, i).state == "passed" for i in ids), *submits)
    gate_score, gent_score = stats(gate_sim_fast), stats(gent_sim_fast)
    assert gate_score["limited"] == 0 and gent_score["limited"] == 0
    assert max(gate_score["max_in_window"].values()) <= LIMIT
    assert gent_score["max_in_window"]["all"] <= LIMIT
    # 6 runs, each: pending, running, passed on GET trigger, then one /results for its name.
    assert gate_score["admitted"] == {"trigger_post": 6, "trigger_get": 18, "results": 6}
    assert gate.api.requests == 30 and count_results(database) == 12


def test_polling_resumes_from_the_store_after_a_restart(
    tmp_path: Path, gate_sim_fast: Served
) -> None:
    path = str(tmp_path / "receiver.db")
    with opened(Path(path)) as first:
        before = polling(first, [qualigate(gate_sim_fast.url)])

        async def submit_and_poll_once() -> int:
            submission = submitting(before)
            submitted = await submission.submit(
                body("qualigate", {"test_case_id": gate_sim.FAILING_CASE})
            )
            await before.run_once()
            await before.stop()
            return submitted.id

        job_id = asyncio.run(submit_and_poll_once())
        assert job(first, job_id).state == "pending"
    with opened(Path(path)) as second:  # a new process: nothing but the database is left
        hook = Hook(second)
        after = polling(second, [qualigate(gate_sim_fast.url)], hook)
        run_poller(after, lambda _: job(second, job_id).result_id is not None)
        resumed = job(second, job_id)
        assert resumed.state == "failed"
        assert resumed.result is not None and resumed.result.tests[0].name == "Checkout Process"
        assert len(hook.calls) == 1 and count_results(second) == 1


def test_a_run_that_never_ends_is_marked_timeout(database: Store, gate_sim_fast: Served) -> None:
    hook = Hook(database)
    poller = polling(database, [qualigate(gate_sim_fast.url, timeout_seconds=0.3)], hook)
    endless = ("qualigate", {"test_case_id": gate_sim.ENDLESS_CASE})
    [job_id] = run_poller(poller, lambda ids: job(database, ids[0]).result_id is not None, endless)
    timed_out = job(database, job_id)
    assert timed_out.state == "timeout" and timed_out.result is not None
    assert timed_out.result.raw_status == "running"
    assert timed_out.result.summary == (
        "No terminal status from qualigate after 0.3 s (last seen: running)"
    )
    assert timed_out.result.pr_number == 42
    assert hook.calls == [(timed_out.result_id, "timeout")]


def test_a_result_is_never_stored_twice(database: Store, gate_sim_fast: Served) -> None:
    hook = Hook(database)
    poller = polling(database, [qualigate(gate_sim_fast.url)], hook)

    async def go() -> tuple[int | None, int | None]:
        submission = submitting(poller)
        submitted = await submission.submit(
            body("qualigate", {"test_case_id": gate_sim.PASSING_CASE}, {})
        )
        [due] = database.read(lambda tx: jobs.due_for_polling(tx, "qualigate"))
        result = Result(provider="qualigate", event="test_results", status="passed")
        both = await asyncio.gather(poller.finish(due, result), poller.finish(due, result))
        assert submitted.id == due.id
        await poller.stop()
        return both[0], both[1]

    first, second = asyncio.run(go())
    assert first is not None and second is None
    assert len(hook.calls) == 1 and count_results(database) == 1
    assert database.read(lambda tx: jobs.due_for_polling(tx, "qualigate")) == []


def test_a_run_the_provider_does_not_know_ends_as_error(
    database: Store, gate_sim_fast: Served
) -> None:
    provider = qualigate(gate_sim_fast.url)
    lost = jobs.NewJob(
        provider="qualigate", state="submitted", external_id="gone", external_kind="test_run"
    )
    job_id = database.write_sync(lambda tx: jobs.insert(tx, lost))
    poller = polling(database, [provider])
    run_poller(poller, lambda _: job(database, job_id).result_id is not None)
    ended = job(database, job_id)
    assert ended.state == "error" and ended.result is not None
    assert ended.result.summary == "Qualigate answered 404: Not Found: Test run not found"


def test_an_unreachable_provider_defers_the_job(database: Store) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = QualigateSettings(base_url=url, api_key="qg_x", poll_seconds=0.01)
    provider = Qualigate(config, policy=RetryPolicy(attempts=1))
    waiting = jobs.NewJob(
        provider="qualigate", state="running", external_id="r1", external_kind="test_run"
    )
    job_id = database.write_sync(lambda tx: jobs.insert(tx, waiting))
    poller = polling(database, [provider])

    async def go() -> None:
        await poller.run_once()
        await poller.stop()

    asyncio.run(go())
    deferred = job(database, job_id)
    assert deferred.state == "running" and deferred.result_id is None
    assert deferred.error is not None and "Qualigate is unreachable" in deferred.error
    row = database.read(
        lambda db: db.execute(
            "SELECT poll_errors, poll_after FROM jobs WHERE id = ?", [job_id]
        ).fetchone()
    )
    assert row[0] == 1 and row[1] > utcnow()  # asked again later, not now


def test_a_request_is_refused_before_anything_is_recorded_or_sent(
    database: Store, gate_sim_fast: Served
) -> None:
    poller = polling(database, [qualigate(gate_sim_fast.url)])
    with pytest.raises(msgspec.ValidationError, match="Object contains unknown field `test_case`"):
        body("qualigate", {"test_case": "x"})
    with pytest.raises(RequestRejected, match="exactly one of"):
        asyncio.run(submitting(poller).submit(body("qualigate", {})))
    assert database.read(lambda tx: views.job_page(tx, limit=50).items) == []
    assert stats(gate_sim_fast)["admitted"].get("trigger_post", 0) == 0


def test_submit_to_an_unconfigured_provider_says_what_to_set(database: Store) -> None:
    submission = submitting(polling(database, []))
    with pytest.raises(
        NotConfigured, match="qualgent is not configured on this service: set QUALGENT_API_KEY"
    ):
        asyncio.run(submission.submit(body("qualgent", {"test_case_id": "t"})))
