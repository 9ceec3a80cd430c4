"""The poller: asks Qualigate and QualGent about every open job until it ends, then stores it once.

The jobs table is the queue: a job of a polling provider without a result, in state submitted,
pending or running, is asked about when its ``poll_after`` has passed. Nothing lives only in
memory, so a restarted service resumes every such job. A terminal result is stored exactly like a
QualityMax callback's, in one transaction with the routing hook, and only while the job is still
open in that same transaction: never twice. A job that has not ended after the provider's
``timeout_seconds`` gets a ``timeout`` result.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from functools import partial
from typing import Final

from receiver import clock
from receiver.background import BackgroundLoop
from receiver.clock import utc_after
from receiver.logs import get_logger
from receiver.providers import polled
from receiver.providers.base import Provider
from receiver.providers.errors import ProviderError, UnknownTarget
from receiver.record import Recorded, RecordedHook, Recorder
from receiver.results import Result
from receiver.store import Store, jobs
from receiver.store.jobs import PollJob
from receiver.store.tx import Tx

log = get_logger("receiver.poller")

MAX_ERROR_BACKOFF: Final = 300.0  # a provider down for long is asked every 5 minutes
MAX_TICK: Final = 1.0
# How long a claimed job is this instance's to ask about: three of its poll intervals, within
# these bounds. A poll that outlasts it (retrying a provider that is down) may meet another
# instance's poll of the same run: harmless, polls only read, and a result is stored once.
LEASE_MIN: Final = 5.0
LEASE_MAX: Final = 30.0


class Poller(BackgroundLoop):
    """Polls every open job of its providers; ``start()`` and ``stop()`` live in the lifespan."""

    def __init__(
        self,
        database: Store,
        providers: Iterable[Provider],
        recorder: Recorder,
        *,
        on_recorded: RecordedHook | None = None,
        concurrency: int = 32,
    ) -> None:
        self.store = database
        self.providers = {p.name: p for p in providers}
        self.recorder = recorder
        self.on_recorded = on_recorded
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        super().__init__(
            name="receiver-poller", every=self.tick, log=log, failed="poll.dispatch_failed"
        )

    @property
    def tick(self) -> float:
        seconds = [p.settings.poll_seconds for p in self.providers.values()]
        return min([MAX_TICK, *seconds])

    def start(self) -> None:
        super().start()
        log.info("poll.started", providers=sorted(self.providers))

    async def stop(self, grace: float = 5.0) -> None:
        """Let polls in flight finish for ``grace`` seconds, then cancel them."""
        await super().stop()
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        log.info("poll.stopped")

    async def step(self) -> None:
        await self._dispatch()

    async def _dispatch(self) -> list[asyncio.Task[None]]:
        started = []
        for provider in self.providers.values():
            for job in await self._claim(provider):
                if job.id in self._in_flight:
                    continue
                task = asyncio.create_task(self._guarded(provider, job))
                self._in_flight[job.id] = task
                task.add_done_callback(partial(self._done, job.id))
                started.append(task)
        return started

    async def _claim(self, provider: Provider) -> list[PollJob]:
        """The due jobs of ``provider``, each held for a lease (another instance sharing the
        database skips them; if this one dies, the lease runs out and another asks)."""
        if not self.store.read(partial(jobs.any_due_for_polling, provider=provider.name)):
            return []  # the usual answer, without a write
        busy = list(self._in_flight)
        lease = min(LEASE_MAX, max(LEASE_MIN, 3 * provider.settings.poll_seconds))
        return await self.store.write(
            lambda tx: jobs.claim_for_polling(tx, provider.name, lease_seconds=lease, skip=busy)
        )

    def _done(self, job_id: int, _: asyncio.Task[None]) -> None:
        self._in_flight.pop(job_id, None)

    async def run_once(self) -> int:
        """Poll every due job once and wait for the answers (tests and tools; no loop needed)."""
        tasks = await self._dispatch()
        await asyncio.gather(*tasks)
        return len(tasks)

    async def _guarded(self, provider: Provider, job: PollJob) -> None:
        async with self._slots:
            try:
                await self.poll_job(provider, job)
            except Exception as exc:  # never let one job's surprise stop the others
                log.exception("poll.failed", job_id=job.id, provider=provider.name)
                await self._defer(provider, job, f"{type(exc).__name__}: {exc}")

    async def poll_job(self, provider: Provider, job: PollJob) -> None:
        settings = provider.settings
        if _age(job.created_at) >= settings.timeout_seconds:
            await self.finish(job, timeout_result(provider.name, job, settings.timeout_seconds))
            return
        try:
            progress = await provider.poll(
                job.external_kind, job.external_id, job.custom_data, job.request
            )
        except UnknownTarget as exc:  # the run is gone: asking again cannot help
            await self.finish(job, error_result(provider.name, job, str(exc)))
            return
        except ProviderError as exc:  # wrong key, down, rate limited: keep asking, slower
            await self._defer(provider, job, str(exc))
            return
        if progress.result is not None:
            await self.finish(job, progress.result)
            return
        poll_after = utc_after(settings.poll_seconds)

        def advance(tx: Tx) -> bool:
            return jobs.record_poll(
                tx, job.id, state=progress.state, poll_after=poll_after, progress=progress.progress
            )

        await self.store.write(advance)
        self.wake_in(settings.poll_seconds)  # so its cadence is poll_seconds, not + every
        log.debug("poll.progress", job_id=job.id, state=progress.state, raw=progress.raw_status)

    async def _defer(self, provider: Provider, job: PollJob, error: str) -> None:
        wait = min(MAX_ERROR_BACKOFF, max(provider.settings.poll_seconds, 2.0**job.poll_errors))
        poll_after = utc_after(wait)

        def defer(tx: Tx) -> None:
            jobs.record_poll_error(tx, job.id, error=error, poll_after=poll_after)

        await self.store.write(defer)
        self.wake_in(wait)
        log.warning("poll.error", job_id=job.id, provider=provider.name, error=error, retry_in=wait)

    async def finish(self, job: PollJob, result: Result) -> int | None:
        """Store and route ``result`` for ``job`` in one transaction; None if it was stored
        before (the job is no longer open), so a result is never stored twice."""

        def keep(tx: Tx) -> Recorded | None:
            if not jobs.is_open(tx, job.id):
                return None  # finished already (another poll, or a crash after commit)
            return self.recorder.record(tx, result, job_id=job.id)

        recorded = await self.store.write(keep)
        if recorded is not None and self.on_recorded is not None:
            self.on_recorded(recorded)
        result_id = recorded.result_id if recorded else None
        log.info(
            "poll.result", job_id=job.id, result_id=result_id, status=result.status,
            raw=result.raw_status,
        )  # fmt: skip
        return result_id


def timeout_result(provider: str, job: PollJob, limit: float) -> Result:
    summary = f"No terminal status from {provider} after {limit:g} s (last seen: {job.state})"
    return ended_result(provider, job, "timeout", summary)


def error_result(provider: str, job: PollJob, message: str) -> Result:
    return ended_result(provider, job, "error", message)


def ended_result(provider: str, job: PollJob, status: str, summary: str) -> Result:
    """A result receiver writes itself, for a job the provider gave no result for."""
    return Result(
        provider=provider,
        event="test_results",
        status=status,
        raw_status=job.state,
        summary=summary,
        external_job_id=job.external_id,
        custom_data=job.custom_data,
    )


def _age(created_at: str) -> float:
    return (dt.datetime.now(dt.UTC) - clock.parse(created_at)).total_seconds()


def start_poller(
    providers: Iterable[Provider],
    database: Store,
    recorder: Recorder,
    on_recorded: RecordedHook | None = None,
) -> Poller | None:
    """For the app's lifespan: a running poller of the providers that do not call back, or None
    when there is none."""
    providers = polled(providers)
    if not providers:
        return None
    poller = Poller(database, providers, recorder, on_recorded=on_recorded)
    poller.start()
    return poller
