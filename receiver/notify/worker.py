"""The delivery worker: claims due deliveries from the outbox, sends them, records each outcome.

It lives in the app's lifespan. It wakes as soon as a result's deliveries are committed (the
intake and the poller call ``recorded`` after the commit), when the earliest retry falls due,
or on a slow poll for deliveries another process revived.

A claim moves ``next_attempt_at`` forward by the lease in the same statement that picks the row:
if the process dies mid-send, the lease expires and the delivery is sent again after restart.
What was recorded ``sent`` is never claimed again. Sends run concurrently, each under its own
timeout, and at most ``[delivery] per_target`` of them to one target, so one hanging target
holds up nothing else. ``stop()`` waits a grace period for sends in
flight, then cancels them (their leases expire, they are retried), like saq's worker.

Each attempt is logged in the store with its outcome (time, answer, error: ``receiver
explain``), counted per route and target scheme for ``/metrics``, and counted towards its
target's health (``[watch]``: one alert when it keeps failing, one when it recovers).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Final

from receiver import clock, links, views
from receiver.clock import utc_after
from receiver.config import Config
from receiver.logs import get_logger
from receiver.metrics import Metrics
from receiver.notify import retry
from receiver.notify.apprise_target import AppriseSender
from receiver.notify.escape import mrkdwn
from receiver.notify.github import GithubSender
from receiver.notify.pace import IntakeRate, Pace, pace
from receiver.notify.retry import Outcome
from receiver.notify.slack import SlackSender
from receiver.notify.slack_url import SLACKBOT_SCHEME
from receiver.notify.targets import Sender
from receiver.notify.watch import Watch
from receiver.record import Recorded
from receiver.routing import GITHUB_SCHEME, Target, parse_target
from receiver.store import Store, attempts, deliveries, health
from receiver.store.attempts import Attempt
from receiver.store.deliveries import ClaimedDelivery, DeliveryOutcome
from receiver.store.health import Turn
from receiver.store.tx import Tx
from receiver.views import ResultDetail

log = get_logger("receiver.notify")

POLL_SECONDS: Final = 2.0  # picks up deliveries revived by `receiver redeliver` in another process
CONCURRENCY: Final = 32
GRACE_SECONDS: Final = 5.0


class DeliveryWorker:
    def __init__(
        self,
        database: Store,
        config: Config,
        *,
        concurrency: int = CONCURRENCY,
        poll_seconds: float = POLL_SECONDS,
        draw: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = database
        self.config = config
        self.settings = config.delivery
        self.github_settings = config.github
        self.metrics = metrics
        self.concurrency = concurrency
        self.intake = IntakeRate()  # whether writes pour into the store: sends slow down then
        self.queued_seen = database.queued_writes
        self.last_start = -math.inf  # monotonic time the last send started
        self.poll_seconds = poll_seconds
        self.draw = draw
        # The lease covers the wait for a serial slot and the send, plus recording the outcome.
        self.lease_seconds = 2 * self.settings.timeout_seconds + 2
        self.event = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.in_flight: set[asyncio.Task[None]] = set()
        self.busy: Counter[str] = Counter()  # sends in flight per target URL
        self.locks: dict[str, asyncio.Lock] = {}
        self.waiting: dict[str, int] = {}
        self.stopping = False
        self.apprise: AppriseSender | None = None
        self.github: GithubSender | None = None
        self.slack: SlackSender | None = None
        self.watch: Watch | None = None

    # -- the wake-up ----------------------------------------------------------------------

    def recorded(self, recorded: Recorded) -> None:
        """A result was committed (the intake's and the poller's hook): wake if it has
        deliveries and a send may start (a finishing send wakes the worker otherwise)."""
        if recorded.deliveries and not self.event.is_set() and self.pace().starts > 0:
            self.event.set()

    def pace(self) -> Pace:
        """How many sends may start now (see receiver.notify.pace)."""
        now = time.monotonic()
        queued = self.store.queued_writes
        self.intake.add(now, queued - self.queued_seen)
        self.queued_seen = queued
        return pace(
            heavy=self.intake.heavy(now),
            concurrency=self.concurrency,
            in_flight=len(self.in_flight),
            since_last_start=now - self.last_start,
        )

    def wake(self) -> None:
        self.event.set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        timeout = self.settings.timeout_seconds
        self.apprise = AppriseSender(timeout=timeout, threads=self.concurrency)
        self.github = GithubSender(
            api_url=self.github_settings.api_url,
            token=self.github_settings.token,
            timeout=timeout,
            store=self.store,
        )
        self.slack = SlackSender(
            store=self.store,
            api_url=self.config.slack.api_url,
            token=self.config.slack.bot_token,
            timeout=timeout,
            thread_by=_thread_by(self.config),
        )
        if self.config.watch.notify:
            targets = [parse_target(url, "[watch] notify") for url in self.config.watch.notify]
            self.watch = Watch(targets, self.send_text)
        self.task = asyncio.create_task(self.run(), name="receiver-delivery-worker")
        log.info("worker.started", concurrency=self.concurrency, lease_seconds=self.lease_seconds)

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        self.stopping = True
        self.event.set()
        if self.task is not None:
            await self.task
        if self.in_flight:
            _, late = await asyncio.wait(self.in_flight, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.info("worker.cancelled", deliveries=len(late), hint="leases expire, retried")
        if self.watch is not None:
            await self.watch.drain(grace)
        for sender in (self.apprise, self.github, self.slack):
            if sender is not None:
                await sender.close()
        log.info("worker.stopped")

    async def run(self) -> None:
        while not self.stopping:
            self.event.clear()
            try:
                full = await self.claim_and_start()
            except Exception:  # the store hiccuped: log, wait, go on (saq's upkeep does the same)
                log.exception("worker.claim_failed")
                full = False
            if full and not self.stopping:
                await asyncio.sleep(0)
                continue
            await self.sleep()

    async def claim_and_start(self) -> bool:
        """Claim what is due, as many as may start; True when that many were claimed."""
        free = self.pace().starts
        if free <= 0:
            return False  # a finishing send sets the event, or sleep() waits for the pace
        lease = uuid.uuid4().hex
        busy = dict(self.busy)
        claimed = await self.store.write(
            lambda tx: deliveries.claim(
                tx,
                limit=free,
                lease=lease,
                lease_seconds=self.lease_seconds,
                per_target=self.settings.per_target,
                busy=busy,
            )
        )
        if not claimed:
            return False
        self.last_start = time.monotonic()
        # Read before any task starts: each task then queues on its target's lock as it starts,
        # in claim order, so the later result's send goes last (a commit status or pull-request
        # comment shows the newest result). A read per task let them reach the lock in any order.
        read = partial(_results_of, claimed, self.config)
        results = await asyncio.to_thread(self.store.read, read)
        for delivery, result in zip(claimed, results, strict=True):
            task = asyncio.create_task(self.deliver(delivery, result))
            self.in_flight.add(task)
            self.busy[delivery.target] += 1
            task.add_done_callback(partial(self._finished, delivery.target))
        return len(claimed) == free

    def _finished(self, target: str, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.busy[target] -= 1
        if self.busy[target] <= 0:
            del self.busy[target]
        self.event.set()

    async def sleep(self) -> None:
        timeout = self.poll_seconds
        paced = self.pace()
        if paced.starts <= 0:
            # No send may start: only a finishing send, the pace's wait (or the poll) can change
            # that. Reading the next due time here found it past and spun: a read per loop
            # turn, all run long.
            if paced.wait > 0:
                timeout = min(timeout, paced.wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), timeout)
            return
        try:
            due = await asyncio.to_thread(self.store.read, deliveries.next_due)
        except Exception:
            log.exception("worker.read_failed")
            due = None
        if due is not None:
            timeout = min(timeout, max(0.0, _seconds_until(due)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)

    # -- one delivery ----------------------------------------------------------------------

    async def deliver(self, delivery: ClaimedDelivery, result: ResultDetail | Exception) -> None:
        started = clock.utcnow()
        try:
            if isinstance(result, Exception):
                raise result
            outcome = await self.attempt(delivery, result)
        except Exception as exc:  # a bug in a sender must not stop the worker
            log.exception("delivery.crashed", id=delivery.id)
            outcome = Outcome(ok=False, error=f"internal error: {exc!r}")
        decision = retry.decide(
            outcome,
            attempts=delivery.attempts,
            backoff=self.settings.backoff,
            max_attempts=self.settings.max_attempts,
            draw=self.draw(),
        )
        record = DeliveryOutcome(
            id=delivery.id,
            lease=delivery.lease,
            state=decision.state,
            last_error=decision.reason,
            next_attempt_at=utc_after(decision.delay) if decision.delay is not None else None,
        )
        attempt = Attempt(
            delivery_id=delivery.id,
            lease=delivery.lease,
            result_id=delivery.result_id,
            attempt=delivery.attempts,
            started_at=started,
            ended_at=clock.utcnow(),
            state=decision.state,
            answer=outcome.answer or _answer(outcome),
            error=None if outcome.ok else outcome.error,
        )
        after = self.config.watch.after_failures if self.watch is not None else None

        def keep(tx: Tx) -> tuple[bool, Turn | None]:
            kept = deliveries.finish(tx, record)
            if not kept:
                return False, None
            attempts.insert(tx, attempt)
            if after is None:
                return True, None
            turn = health.observe(
                tx, delivery.target, ok=outcome.ok, error=decision.reason, after_failures=after
            )
            return True, turn

        try:
            kept, turn = await self.store.write(keep)
        except Exception:  # not recorded: the lease expires and the delivery is tried again
            log.exception("delivery.record_failed", id=delivery.id, state=decision.state)
            return
        _log(delivery, decision, kept)
        if kept and self.metrics is not None:
            self.metrics.count_delivery(delivery.route, delivery.target, outcome.ok, decision.state)
        if turn is not None and self.watch is not None:
            self.watch.alert(turn, delivery.target_display, self.routes_of(delivery.target))

    def routes_of(self, target: str) -> list[str]:
        return [route.name for route in self.config.routes if target in route.notify]

    async def send_text(self, target: Target, title: str, body: str) -> Outcome:
        """A [watch] alert to one of its targets."""
        if target.kind == "slackbot" and self.slack is not None:
            return await self.slack.post_text(target.url, f"*{mrkdwn(title)}*\n{mrkdwn(body)}")
        if target.kind == "apprise" and self.apprise is not None:
            return await self.apprise.send_text(target.url, title, body)
        return Outcome(ok=False, error=f"{target.display} cannot take an alert")

    async def attempt(self, delivery: ClaimedDelivery, result: ResultDetail) -> Outcome:
        sender = self.sender(delivery.target)
        key = sender.serial_key(delivery.target, result)
        timeout = self.settings.timeout_seconds
        no_answer = Outcome(ok=False, error=f"no answer within {timeout:g}s (timeout_seconds)")
        try:
            # The lease covers twice the timeout: one for waiting behind an earlier send to the
            # same pull request or commit, one for this send.
            async with asyncio.timeout(2 * timeout), self.lock(key):
                try:
                    return await asyncio.wait_for(sender.send(delivery.target, result), timeout)
                except TimeoutError:
                    return no_answer
        except TimeoutError:
            return Outcome(
                ok=False, error=f"waited over {timeout:g}s behind another send to the same target"
            )

    def sender(self, target: str) -> Sender:
        chosen: Sender | None = self.apprise
        if target.startswith(GITHUB_SCHEME):
            chosen = self.github
        elif target.startswith(SLACKBOT_SCHEME):
            chosen = self.slack
        if chosen is None:
            raise RuntimeError("the worker is not started")
        return chosen

    @contextlib.asynccontextmanager
    async def lock(self, key: str | None) -> AsyncIterator[None]:
        """One send at a time per key; the lock is dropped when nobody holds or awaits it."""
        if key is None:
            yield
            return
        lock = self.locks.setdefault(key, asyncio.Lock())
        self.waiting[key] = self.waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self.waiting[key] -= 1
            if not self.waiting[key]:
                del self.waiting[key], self.locks[key]


def _results_of(
    claimed: list[ClaimedDelivery], config: Config, tx: Tx
) -> list[ResultDetail | Exception]:
    """Each delivery's result, or why it could not be read (that delivery alone fails)."""
    results: list[ResultDetail | Exception] = []
    for delivery in claimed:
        try:
            results.append(links.with_page(views.result_detail(tx, delivery.result_id), config))
        except Exception as exc:
            results.append(exc)
    return results


def _thread_by(config: Config) -> dict[str, tuple[str, ...]]:
    """Each slackbot:// target's thread_by (routing checked that its routes agree)."""
    return {
        url: tuple(route.thread_keys)
        for route in config.routes
        for url in route.notify
        if url.startswith(SLACKBOT_SCHEME)
    }


def _answer(outcome: Outcome) -> str | None:
    if outcome.status_code is not None:
        return f"HTTP {outcome.status_code}"
    return "ok" if outcome.ok else None


def _seconds_until(timestamp: str) -> float:
    return (clock.parse(timestamp) - dt.datetime.now(dt.UTC)).total_seconds()


def _log(delivery: ClaimedDelivery, decision: retry.Decision, kept: bool) -> None:
    fields = {
        "id": delivery.id,
        "result_id": delivery.result_id,
        "route": delivery.route,
        "target": delivery.target_display,
        "attempts": delivery.attempts,
    }
    if not kept:
        log.info("delivery.lease_lost", **fields, hint="redelivered or expired meanwhile")
    elif decision.state == "sent":
        log.info("delivery.sent", **fields)
    elif decision.state == "pending":
        log.info(
            "delivery.retry", **fields, delay_s=round(decision.delay or 0, 2), error=decision.reason
        )
    else:
        log.error("delivery.dead", **fields, error=decision.reason)
