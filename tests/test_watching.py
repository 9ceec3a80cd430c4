"""receiver watching itself: a submitted job whose callback never comes becomes a routed
``timeout`` result (and a late real result replaces it, saying so); a target that keeps failing
alerts once and once more when it recovers; repeats within repeat_after update living messages
only; /metrics counts per route and target scheme."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx

from receiver import views
from receiver.explain import Explanation, explain
from receiver.metrics import Metrics
from receiver.process import ServiceProcess, free_port
from receiver.simulator.process import SimulatorProcess
from receiver.store import jobs
from receiver.submit import ApiClient
from receiver.timeouts import TimeoutWatcher, limits
from tests.conftest import QM_KEY, QM_SLUG, SECRET, TOKEN, callback_body, signed
from tests.notify_helpers import Harness, all_final, make_config, result, route
from tests.sinks import FakeSlack, HttpSink, always, fail_then_ok
from tests.store_helpers import intake, take_one

PR = {"repository": "acme/shop", "pr_number": 42, "sha": "abc123def456"}


def test_a_job_without_callback_times_out_is_routed_and_a_late_result_replaces_it(
    sink: HttpSink, tmp_path: Path
) -> None:
    extra = "[qualitymax]\ntimeout_seconds = 0.3\n"
    config = make_config(tmp_path, route("all", sink.url("/hook")), extra=extra)
    waiting = jobs.NewJob(
        provider="qualitymax",
        state="submitted",
        job_key="key-1",
        custom_data={"deploy_id": "abc-123", "branch": "feat/login"},
    )

    async def run() -> tuple[list[int], list[int], views.JobView]:
        async with Harness(config) as h:
            job_id = await h.store.write(lambda tx: jobs.insert(tx, waiting))
            watcher = TimeoutWatcher(
                h.store, h.recorder, limits(config), on_recorded=h.worker.recorded
            )
            early = await watcher.check()  # not yet overdue
            await asyncio.sleep(0.35)
            made = await watcher.check()
            assert await watcher.check() == []  # once only
            await h.settle(all_final)
            into = intake(h.store, h.router)
            into.on_recorded = h.worker.recorded
            await take_one(into, callback_body(), job_key="key-1")
            await h.settle(lambda ds: len(ds) == 2 and all_final(ds))
            return early, made, h.store.read(lambda tx: views.job_view(tx, job_id))

    early, made, job = asyncio.run(run())
    assert early == [] and made == [1]
    first, late = (json.loads(r.body) for r in sink.delivered("/hook"))
    assert first["title"] == "⏱️ test run timed out · feat/login · deploy abc-123"
    assert "No result for deploy abc-123 within 0.3 s (timeout_seconds)" in first["message"]
    assert job.result_id == 2 and job.result is not None and job.result.replaces == 1
    assert (job.state, job.result.status) == ("passed", "passed")
    assert "Came late, after the timeout (result #1); replaces it." in late["message"]


def test_receiver_serve_times_out_a_submitted_job_and_takes_its_late_callback(
    tmp_path: Path, sink: HttpSink
) -> None:
    simulator = SimulatorProcess(
        {
            "QUALITYMAX_API_KEY": QM_KEY,
            "QUALITYMAX_WEBHOOK_SECRET": SECRET,
            "QUALITYMAX_PARTNER_SLUG": QM_SLUG,
            "RECEIVER_SIMULATOR_DELAY": "2.5",  # the callback comes after the timeout
        },
        tmp_path / "simulate.log",
    ).start()
    port = free_port()
    config = tmp_path / "receiver.toml"
    config.write_text(
        "[qualitymax]\ntimeout_seconds = 0.5\n[delivery]\nbackoff = [0.1]\n"
        + route("all", sink.url("/hook"))
    )
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": TOKEN,
        "RECEIVER_DB": str(tmp_path / "receiver.db"),
        "QUALITYMAX_API_KEY": QM_KEY,
        "QUALITYMAX_PARTNER_SLUG": QM_SLUG,
        "QUALITYMAX_BASE_URL": simulator.url,
        "RECEIVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    service = ServiceProcess(config, env, tmp_path / "serve.log", port=port).start()
    try:
        with ApiClient(service.url, TOKEN) as api:
            job = api.submit(
                {
                    "url": "https://preview-7.example.com",
                    "feature_description": "Users can log in",
                    "custom_data": {"deploy_id": "abc-7", "simulate": "failed"},
                }
            )
            sink.wait_for(lambda: len(sink.delivered("/hook")) == 2, timeout=20)
            seen = api.job(job.id)
    finally:
        service.stop()
        simulator.kill()
    timed_out, late = (json.loads(r.body) for r in sink.delivered("/hook"))
    assert timed_out["title"].startswith("⏱️ test run timed out")
    assert "No result for deploy abc-7 within 0.5 s" in timed_out["message"]
    assert late["title"].startswith("❌")
    assert seen.result is not None and seen.result.status == "failed"
    assert seen.result.replaces is not None and seen.result.replaces < seen.result.id


def test_a_target_failing_three_times_alerts_once_and_recovers_once(
    sink: HttpSink, tmp_path: Path
) -> None:
    sink.on("/down", fail_then_ok(4, status=500))
    extra = f'[watch]\nafter_failures = 3\nnotify = ["{sink.url("/alerts")}"]\n'
    config = make_config(tmp_path, route("team", sink.url("/down")), max_attempts=1, extra=extra)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            for _ in range(6):  # four fail (dead at once: max_attempts 1), then two go through
                await h.add(result())
                await h.settle(all_final)
            await asyncio.to_thread(sink.wait_for, lambda: len(sink.to("/alerts")) >= 2)
            await asyncio.sleep(0.2)  # no third alert is on its way
            return h.deliveries()

    found = asyncio.run(run())
    assert [d.state for d in found] == ["dead"] * 4 + ["sent"] * 2
    alerts = [json.loads(r.body) for r in sink.to("/alerts")]
    assert len(alerts) == 2
    down_url = sink.url("/down")
    assert alerts[0]["title"] == f"⚠️ receiver: deliveries to {down_url} keep failing"
    assert f"Deliveries to {down_url} (route team) failed 3 times in a row." in alerts[0]["message"]
    assert "Last error: gave up after 1 attempts:" in alerts[0]["message"]
    assert alerts[1]["title"] == f"✅ receiver: {down_url} takes deliveries again"
    assert "after 4 failed in a row" in alerts[1]["message"]


def test_an_alert_names_a_target_with_its_secret_masked(sink: HttpSink, tmp_path: Path) -> None:
    secret_target = f"json://user:hunter2@127.0.0.1:{sink.port}/down"
    sink.on("/down", always(404))
    extra = f'[watch]\nafter_failures = 1\nnotify = ["{sink.url("/alerts")}"]\n'
    config = make_config(tmp_path, route("team", secret_target), max_attempts=1, extra=extra)

    async def run() -> None:
        async with Harness(config) as h:
            await h.add(result())
            await h.settle(all_final)
            await asyncio.to_thread(sink.wait_for, lambda: len(sink.to("/alerts")) == 1)

    asyncio.run(run())
    (alert,) = [r.body.decode() for r in sink.to("/alerts")]
    assert "hunter2" not in alert
    # (escape.plain's joiner follows the "@": no chat renders it as a mention)
    assert "deliveries to json://user:****@\u200d127.0.0.1:" in json.loads(alert)["title"]


def test_repeats_within_repeat_after_update_the_living_message_only(
    sink: HttpSink, slack: FakeSlack, tmp_path: Path
) -> None:
    extra_route = "repeat_after = 3600\n"
    config = make_config(
        tmp_path,
        route("team", sink.url("/chat"), "slackbot://#previews", extra=extra_route),
        slack_url=slack.url,
    )

    async def run() -> tuple[list[views.DeliveryView], list[Explanation]]:
        async with Harness(config) as h:
            for status in ("failed", "failed", "passed"):
                await h.add(result(status, **PR))
                await h.settle(all_final)
            return h.deliveries(), [h.store.read(lambda tx: explain(tx, 2))]

    found, (second,) = asyncio.run(run())
    by_result = {(d.result_id, d.target.split(":")[0]) for d in found}
    # The repeat (result 2) edited the Slack message but sent no chat message.
    assert by_result == {
        (1, "json"),
        (1, "slackbot"),
        (2, "slackbot"),
        (3, "json"),
        (3, "slackbot"),
    }
    assert len(sink.delivered("/chat")) == 2
    assert [c.method for c in slack.calls][:2] == ["chat.postMessage", "chat.update"]
    decision = second.routes[0]
    assert decision.repeat is not None and decision.repeat.repeat
    assert decision.skipped == [sink.url("/chat")]
    assert decision.repeat.reason.startswith("same status (failed) and failing tests as result #1")


def test_metrics_count_per_route_and_scheme_never_the_url(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/flaky", fail_then_ok(1))
    config = make_config(tmp_path, route("team", sink.url("/flaky")), max_attempts=3)
    metrics = Metrics()

    async def run() -> None:
        async with Harness(config, metrics=metrics) as h:
            await h.add(result())
            await h.settle(all_final)

    asyncio.run(run())
    metrics.set_oldest_pending({("team", sink.url("/flaky")): 12.5})
    text = metrics.render().decode()
    assert (
        'receiver_target_deliveries_total{outcome="failed",route="team",scheme="json"} 1.0' in text
    )
    assert 'receiver_target_deliveries_total{outcome="sent",route="team",scheme="json"} 1.0' in text
    assert 'receiver_target_oldest_pending_seconds{route="team",scheme="json"} 12.5' in text
    assert "127.0.0.1" not in text


def test_metrics_endpoint_shows_the_oldest_pending_delivery(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the delivery stays pending
    config = tmp_path / "receiver.toml"
    config.write_text("[delivery]\nbackoff = [60]\n" + route("team", f"json://127.0.0.1:{port}/x"))
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": TOKEN,
        "RECEIVER_DB": str(tmp_path / "receiver.db"),
    }
    service = ServiceProcess(config, env, tmp_path / "serve.log").start()
    try:
        body = callback_body()
        answer = httpx.post(
            f"{service.url}/callbacks/qualitymax", content=body, headers=signed(body)
        )
        assert answer.status_code == 200
        time.sleep(1.2)
        text = httpx.get(f"{service.url}/metrics").text
    finally:
        service.stop()
    gauge = 'receiver_target_oldest_pending_seconds{route="team",scheme="json"}'
    line = next(line for line in text.splitlines() if line.startswith(gauge))
    assert float(line.split()[-1]) >= 1.0
    assert (
        'receiver_target_deliveries_total{outcome="failed",route="team",scheme="json"} 1.0' in text
    )
