"""The delivery worker on a real SQLite file, sending to real servers on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

from receiver import views
from receiver.process import free_port
from receiver.store import deliveries
from tests.notify_helpers import (
    Harness,
    all_final,
    make_config,
    result,
    route,
)
from tests.sinks import Answer, FakeGithub, HttpSink, always, fail_then_ok

PR: dict[str, Any] = {"repository": "acme/shop", "pr_number": 42, "sha": "abc123def456"}


def at(timestamp: str) -> dt.datetime:
    return dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_commit_wakes_the_worker_without_polling(sink: HttpSink, tmp_path: Path) -> None:
    config = make_config(tmp_path, route("all", sink.url("/hook")))

    async def run() -> list[views.DeliveryView]:
        # A poll every 10 minutes: only the wake-up after the commit can deliver in time.
        async with Harness(config, poll_seconds=600) as h:
            await h.add(result())
            return await h.settle(all_final)

    (delivery,) = asyncio.run(run())
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("sent", 1, None)
    assert len(sink.delivered("/hook")) == 1


def test_a_target_that_fails_twice_then_takes_it(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/flaky", fail_then_ok(2))
    config = make_config(tmp_path, route("all", sink.url("/flaky")), max_attempts=5)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result())
            return await h.settle(all_final)

    (delivery,) = asyncio.run(run())
    assert (delivery.state, delivery.attempts) == ("sent", 3)
    assert [r.answered for r in sink.to("/flaky")] == [500, 500, 200]


def test_always_500_goes_dead_after_max_attempts(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/down", always(500))
    config = make_config(tmp_path, route("all", sink.url("/down")), max_attempts=3)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result())
            return await h.settle(all_final)

    (delivery,) = asyncio.run(run())
    assert (delivery.state, delivery.attempts) == ("dead", 3)
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("gave up after 3 attempts: ")
    assert "error=500" in delivery.last_error
    assert len(sink.to("/down")) == 3


def test_a_404_is_dead_at_once_with_the_reason(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/gone", always(404))
    config = make_config(tmp_path, route("all", sink.url("/gone")), max_attempts=8)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result())
            return await h.settle(all_final)

    (delivery,) = asyncio.run(run())
    assert (delivery.state, delivery.attempts) == ("dead", 1)
    assert delivery.last_error is not None and delivery.last_error.startswith("permanent refusal:")
    assert "error=404" in delivery.last_error


def test_connection_refused_retries_then_dies(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, route("all", f"json://127.0.0.1:{free_port()}/x"), max_attempts=2
    )

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result())
            return await h.settle(all_final)

    (delivery,) = asyncio.run(run())
    assert (delivery.state, delivery.attempts) == ("dead", 2)
    assert delivery.last_error is not None and "Connection error" in delivery.last_error


def test_a_hanging_target_holds_up_no_other(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/hang", lambda n, r: Answer(hang=True))
    targets = [sink.url("/hang"), *(sink.url(f"/ok{i}") for i in range(3))]
    config = make_config(tmp_path, route("all", *targets), max_attempts=2, timeout=1)

    async def run() -> tuple[list[views.DeliveryView], list[views.DeliveryView]]:
        async with Harness(config) as h:
            await h.add(result())
            # The three others are sent while the hanging one is still unanswered.
            early = await h.settle(lambda ds: sum(d.state == "sent" for d in ds) == 3)
            return early, await h.settle(all_final)

    early, final = asyncio.run(run())
    assert [d.state for d in early if "hang" in d.target] == ["pending"]
    hung = next(d for d in final if "hang" in d.target)
    assert (hung.state, hung.attempts) == ("dead", 2)
    assert hung.last_error == "gave up after 2 attempts: no answer within 1s (timeout_seconds)"


def test_429_retry_after_is_honoured(github: FakeGithub, tmp_path: Path) -> None:
    path = f"/repos/acme/shop/statuses/{PR['sha']}"
    github.refuse[f"POST {path}"] = Answer(429, {"Retry-After": "1"}, b'{"message": "slow down"}')
    config = make_config(tmp_path, route("prs", "github://commit-status"), github_url=github.url)

    async def run() -> tuple[list[views.DeliveryView], list[views.DeliveryView]]:
        async with Harness(config) as h:
            await h.add(result(**PR))
            waiting = await h.settle(
                lambda ds: ds[0].attempts == 1 and ds[0].last_error is not None
            )
            del github.refuse[f"POST {path}"]
            return waiting, await h.settle(all_final)

    (waiting,), (done,) = asyncio.run(run())
    assert waiting.last_error is not None and "GitHub answered 429" in waiting.last_error
    assert waiting.next_attempt_at is not None
    # The backoff would be 0.05 s; the stored next attempt is a second after the answer.
    assert (at(waiting.next_attempt_at) - at(waiting.updated_at)).total_seconds() >= 0.9
    assert (done.state, done.attempts) == ("sent", 2)


def test_missing_github_keys_are_dead_with_the_key_named(
    github: FakeGithub, tmp_path: Path
) -> None:
    routes = route("prs", "github://pr-comment", "github://commit-status")
    config = make_config(tmp_path, routes, github_url=github.url)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result(repository="acme/shop"))
            return await h.settle(all_final)

    comment, status = asyncio.run(run())
    assert (comment.state, comment.attempts) == ("dead", 1)
    assert comment.last_error is not None and "custom_data has no 'pr_number'" in comment.last_error
    assert status.last_error is not None and "custom_data has no 'sha'" in status.last_error


def test_concurrent_results_for_one_pull_request_keep_one_comment(
    github: FakeGithub, tmp_path: Path
) -> None:
    config = make_config(tmp_path, route("prs", "github://pr-comment"), github_url=github.url)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            for status in ["failed", "failed", "error", "failed", "passed"]:
                await h.add(result(status, **PR))
            return await h.settle(lambda ds: len(ds) == 5 and all_final(ds))

    found = asyncio.run(run())
    assert {d.state for d in found} == {"sent"}
    (comment,) = github.markers("acme/shop", 42)
    assert "<!-- receiver:result 5 -->" in comment.body and "✅ 3 of 3 tests passed" in comment.body


def test_statuses_for_one_commit_are_sent_in_result_order(
    github: FakeGithub, tmp_path: Path
) -> None:
    config = make_config(tmp_path, route("prs", "github://commit-status"), github_url=github.url)
    statuses = ["failed", "passed", "failed", "error", "passed", "failed", "passed", "passed"]

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            for status in statuses:
                await h.add(result(status, **PR))
            return await h.settle(lambda ds: len(ds) == len(statuses) and all_final(ds))

    assert {d.state for d in asyncio.run(run())} == {"sent"}
    # GitHub shows a commit's newest status: each must follow the one before it.
    expected = ["success" if s == "passed" else s.replace("failed", "failure") for s in statuses]
    assert [s["state"] for s in github.statuses[PR["sha"]]] == expected


def test_an_expired_lease_is_sent_again_and_a_sent_one_never(
    sink: HttpSink, tmp_path: Path
) -> None:
    config = make_config(tmp_path, route("all", sink.url("/hook")))

    async def crash_mid_send() -> None:
        async with Harness(config) as h:
            await h.worker.stop()  # no worker: we play one that dies after its claim
            await h.add(result())
            claimed = await h.store.write(
                lambda tx: deliveries.claim(
                    tx, limit=10, lease="dead-worker", lease_seconds=0.2, per_target=4, busy={}
                )
            )
            assert [c.attempts for c in claimed] == [1]
            # a second worker finds nothing while the lease holds
            again = await h.store.write(
                lambda tx: deliveries.claim(
                    tx, limit=10, lease="other", lease_seconds=5, per_target=4, busy={}
                )
            )
            assert again == []

    async def restart() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            done = await h.settle(all_final)
            # the dead worker's late report is refused: the lease is no longer its own
            late = deliveries.DeliveryOutcome(
                id=done[0].id, lease="dead-worker", state="dead", last_error="late"
            )
            assert await h.store.write(lambda tx: deliveries.finish(tx, late)) is False
            return done

    asyncio.run(crash_mid_send())
    (delivery,) = asyncio.run(restart())
    assert (delivery.state, delivery.attempts) == ("sent", 2)

    async def once_more() -> list[deliveries.ClaimedDelivery]:
        async with Harness(config) as h:
            await asyncio.sleep(0.2)
            return await h.store.write(
                lambda tx: deliveries.claim(
                    tx, limit=10, lease="x", lease_seconds=1, per_target=4, busy={}
                )
            )

    assert asyncio.run(once_more()) == []
    assert len(sink.delivered("/hook")) == 1


def test_redeliver_revives_a_dead_delivery_with_a_fresh_budget(
    sink: HttpSink, tmp_path: Path
) -> None:
    sink.on("/later", fail_then_ok(2))
    config = make_config(tmp_path, route("all", sink.url("/later")), max_attempts=1)

    async def run() -> tuple[views.DeliveryView, views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result())
            (dead,) = await h.settle(all_final)
            await h.store.write(lambda tx: deliveries.redeliver(tx, dead.id))
            h.worker.wake()
            await h.settle(
                lambda ds: (
                    ds[0].attempts == 1
                    and ds[0].state == "dead"
                    and ds[0].updated_at > dead.updated_at
                )
            )
            await h.store.write(lambda tx: deliveries.redeliver(tx, dead.id))
            h.worker.wake()
            (sent,) = await h.settle(lambda ds: ds[0].state == "sent")
            return dead, sent

    dead, sent = asyncio.run(run())
    assert (dead.state, dead.attempts) == ("dead", 1)
    assert (sent.state, sent.attempts, sent.last_error) == ("sent", 1, None)


def test_stop_cancels_a_hanging_send_after_the_grace(sink: HttpSink, tmp_path: Path) -> None:
    sink.on("/hang", lambda n, r: Answer(hang=True))
    config = make_config(tmp_path, route("all", sink.url("/hang")), timeout=30)

    async def run() -> list[views.DeliveryView]:
        h = Harness(config)
        await h.worker.start()
        await h.add(result())
        await asyncio.to_thread(sink.wait_for, lambda: len(sink.received) == 1)
        await h.worker.stop(grace=0.1)
        found = h.deliveries()
        h.store.close()
        return found

    (delivery,) = asyncio.run(run())
    # still pending, its lease in force: after a restart it is sent once the lease expires
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 1, None)


def test_a_429_from_an_apprise_target_is_retried_on_the_backoff(
    sink: HttpSink, tmp_path: Path
) -> None:
    # Apprise does not pass Retry-After on: the retry follows [delivery] backoff (see README).
    sink.on("/limited", fail_then_ok(1, status=429, **{"Retry-After": "3600"}))
    config = make_config(tmp_path, route("all", sink.url("/limited")))

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(result())
            return await h.settle(all_final)

    (delivery,) = asyncio.run(run())
    assert (delivery.state, delivery.attempts) == ("sent", 2)
    assert [r.answered for r in sink.to("/limited")] == [429, 200]


def test_while_results_pour_in_sends_go_one_at_a_time(sink: HttpSink, tmp_path: Path) -> None:
    targets = [sink.url(f"/t{i}") for i in range(4)]
    config = make_config(tmp_path, route("all", *targets))

    async def run() -> tuple[int, list[views.DeliveryView]]:
        async with Harness(config) as h:
            pouring = asyncio.Event()
            pouring.set()

            async def flood() -> None:  # ~1,500 writes a second that queued for the store
                while pouring.is_set():
                    h.worker.intake.add(time.monotonic(), 150)
                    await asyncio.sleep(0.1)

            flooding = asyncio.create_task(flood())
            await asyncio.sleep(0.05)
            await h.add(result())  # four deliveries, due at once
            await asyncio.sleep(1.2)
            sent_while_pouring = len(sink.received)
            pouring.clear()
            await flooding
            return sent_while_pouring, await h.settle(all_final)

    sent_while_pouring, final = asyncio.run(run())
    # Sends start HEAVY_SEND_INTERVAL (0.5 s) apart: at most three in 1.2 s, never none; unpaced,
    # all four go out within milliseconds. Once the flood stops, the rest follow.
    assert 1 <= sent_while_pouring <= 3
    assert [d.state for d in final] == ["sent"] * 4


def test_only_writes_that_queued_for_the_store_count_as_heavy_intake(
    sink: HttpSink, tmp_path: Path
) -> None:
    config = make_config(tmp_path, route("all", sink.url("/one")))

    async def run() -> tuple[bool, bool]:
        async with Harness(config, poll_seconds=600) as h:
            for _ in range(50):  # a lone client: each result is its own batch
                await h.add(result())
            h.worker.pace()
            # (the worker's own writes may share a batch with one now and then)
            heavy_alone = h.worker.intake.heavy(time.monotonic())
            # 400 at once queue up and share batches: that is a store near its limit.
            await asyncio.gather(*(h.add(result()) for _ in range(400)))
            h.worker.pace()
            heavy = h.worker.intake.heavy(time.monotonic())
            await h.settle(all_final, timeout=60)
            return heavy_alone, heavy

    heavy_alone, heavy = asyncio.run(run())
    assert not heavy_alone
    assert heavy


def test_a_backlog_to_a_hanging_target_delays_no_other_target(
    sink: HttpSink, tmp_path: Path
) -> None:
    """40 deliveries wait for a target that never answers; a delivery to a healthy target,
    queued after them, goes out at once: at most ``per_target`` of the hanging ones were tried
    by then, each bounded by its timeout."""
    sink.on("/hang", lambda n, r: Answer(hang=True))
    routes = route("failures", sink.url("/hang"), when='{ status = "failed" }') + route(
        "passes", sink.url("/ok"), when='{ status = "passed" }'
    )
    config = make_config(tmp_path, routes, max_attempts=1, timeout=2)

    async def run() -> tuple[list[views.DeliveryView], list[views.DeliveryView]]:
        async with Harness(config) as h:
            await h.worker.stop()  # queue the backlog first, then let a worker loose on it
            for _ in range(40):
                await h.add(result("failed"))
            await h.add(result("passed"))
            h.worker = type(h.worker)(h.store, config)
            await h.worker.start()
            sent = await h.settle(lambda ds: any(d.state == "sent" for d in ds), timeout=10)
            return sent, h.deliveries()

    when_sent, _ = asyncio.run(run())
    hanging = [d for d in when_sent if "hang" in d.target]
    assert len(hanging) == 40
    assert sum(d.attempts for d in hanging) <= config.delivery.per_target
