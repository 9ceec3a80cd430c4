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
import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Final

import msgspec
from sqlite_utils import Database

from receiver import clock, store
from receiver.config import Config
from receiver.logs import get_logger
from receiver.providers.polling import (
    NotConfigured,
    PollingProvider,
    ProviderError,
    RequestRejected,
    UnknownTarget,
)
from receiver.results import CustomData, Result

log = get_logger("receiver.poller")

# Called inside the transaction that stored a polled result (routing writes the outbox).
ResultHook = Callable[[Database, int, Result], None]

MAX_ERROR_BACKOFF: Final = 300.0  # a provider down for long is asked every 5 minutes
MAX_TICK: Final = 1.0


class SubmittedJob(msgspec.Struct, kw_only=True):
    """What POST /api/jobs answers for a polling provider."""

    id: int
    provider: str
    state: str
    external_id: str
    external_kind: str


async def submit_polling_job(
    database: store.Store,
    provider: PollingProvider,
    request: msgspec.Struct | Mapping[str, Any],
    custom_data: CustomData,
) -> SubmittedJob:
    """Trigger a run at the provider, then record its job (state ``submitted``) for the poller.

    ``request`` is the provider's ``request_type`` or a mapping of its fields (POST /api/jobs'
    body without ``provider`` and ``custom_data``). Raises the provider's typed errors.
    """
    typed = _request(provider, request)
    triggered = await provider.trigger(typed, custom_data)
    job = store.NewJob(
        provider=provider.name,
        state=triggered.state,
        external_id=triggered.external_id,
        request=msgspec.json.encode(typed).decode(),
        custom_data=custom_data,
    )
    job_id = await database.write(
        lambda db: store.insert_polling_job(db, job, external_kind=triggered.external_kind)
    )
    log.info("poll.submitted", job_id=job_id, provider=provider.name, external=job.external_id)
    return SubmittedJob(
        id=job_id,
        provider=provider.name,
        state=triggered.state,
        external_id=triggered.external_id,
        external_kind=triggered.external_kind,
    )


def _request(provider: PollingProvider, request: msgspec.Struct | Mapping[str, Any]) -> Any:
    if isinstance(request, provider.request_type):
        return request
    try:
        return msgspec.convert(request, provider.request_type)
    except msgspec.ValidationError as exc:
        raise RequestRejected(provider.name, f"Not a {provider.name} run request: {exc}") from None


class Poller:
    """Polls every open job of its providers; ``start()`` and ``stop()`` live in the lifespan."""

    def __init__(
        self,
        database: store.Store,
        providers: Iterable[PollingProvider],
        *,
        on_result: ResultHook | None = None,
        concurrency: int = 32,
    ) -> None:
        self.store = database
        self.providers = {p.name: p for p in providers}
        self.on_result = on_result
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.Task[None] | None = None

    @property
    def tick(self) -> float:
        seconds = [p.settings.poll_seconds for p in self.providers.values()]
        return min([MAX_TICK, *seconds])

    async def submit(
        self, provider: str, request: msgspec.Struct | Mapping[str, Any], custom_data: CustomData
    ) -> SubmittedJob:
        """submit_polling_job with this poller's client (and its rate windows), then wake."""
        if provider not in self.providers:
            raise NotConfigured(
                provider,
                f"{provider} is not configured: set {provider.upper()}_API_KEY "
                f"(or [{provider}] api_key in the config)",
            )
        job = await submit_polling_job(self.store, self.providers[provider], request, custom_data)
        self.wake()
        return job

    def wake(self) -> None:
        self._wake.set()

    def _wake_in(self, seconds: float) -> None:
        """Wake when this job is due, so its cadence is poll_seconds, not poll_seconds + tick."""
        asyncio.get_running_loop().call_later(seconds, self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="receiver-poller")
        log.info("poll.started", providers=sorted(self.providers))

    async def stop(self, grace: float = 5.0) -> None:
        """Let polls in flight finish for ``grace`` seconds, then cancel; close the clients."""
        self._stopping = True
        self.wake()
        if self._loop is not None:
            await self._loop
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for provider in self.providers.values():
            await provider.api.aclose()
        log.info("poll.stopped")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                self._dispatch()
            except Exception:  # a store hiccup must not end polling for good
                log.exception("poll.dispatch_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick)

    def _dispatch(self) -> list[asyncio.Task[None]]:
        started = []
        for provider in self.providers.values():
            due = self.store.read(partial(store.due_poll_jobs, provider=provider.name))
            for job in due:
                if job.id in self._in_flight:
                    continue
                task = asyncio.create_task(self._guarded(provider, job))
                self._in_flight[job.id] = task
                task.add_done_callback(partial(self._done, job.id))
                started.append(task)
        return started

    def _done(self, job_id: int, _: asyncio.Task[None]) -> None:
        self._in_flight.pop(job_id, None)

    async def run_once(self) -> int:
        """Poll every due job once and wait for the answers (tests and tools; no loop needed)."""
        tasks = self._dispatch()
        await asyncio.gather(*tasks)
        return len(tasks)

    async def _guarded(self, provider: PollingProvider, job: store.PollJob) -> None:
        async with self._slots:
            try:
                await self.poll_job(provider, job)
            except Exception as exc:  # never let one job's surprise stop the others
                log.exception("poll.failed", job_id=job.id, provider=provider.name)
                await self._defer(provider, job, f"{type(exc).__name__}: {exc}")

    async def poll_job(self, provider: PollingProvider, job: store.PollJob) -> None:
        settings = provider.settings
        if _age(job.created_at) >= settings.timeout_seconds:
            await self.finish(job, timeout_result(provider.name, job, settings.timeout_seconds))
            return
        try:
            progress = await provider.poll(job.external_kind, job.external_id, job.custom_data)
        except UnknownTarget as exc:  # the run is gone: asking again cannot help
            await self.finish(job, error_result(provider.name, job, str(exc)))
            return
        except ProviderError as exc:  # wrong key, down, rate limited: keep asking, slower
            await self._defer(provider, job, str(exc))
            return
        if progress.result is not None:
            await self.finish(job, progress.result)
            return
        poll_after = store.utc_after(settings.poll_seconds)

        def advance(db: Database) -> bool:
            return store.record_poll(db, job.id, state=progress.state, poll_after=poll_after)

        await self.store.write(advance)
        self._wake_in(settings.poll_seconds)
        log.debug("poll.progress", job_id=job.id, state=progress.state, raw=progress.raw_status)

    async def _defer(self, provider: PollingProvider, job: store.PollJob, error: str) -> None:
        wait = min(MAX_ERROR_BACKOFF, max(provider.settings.poll_seconds, 2.0**job.poll_errors))
        poll_after = store.utc_after(wait)

        def defer(db: Database) -> None:
            store.record_poll_error(db, job.id, error=error, poll_after=poll_after)

        await self.store.write(defer)
        self._wake_in(wait)
        log.warning("poll.error", job_id=job.id, provider=provider.name, error=error, retry_in=wait)

    async def finish(self, job: store.PollJob, result: Result) -> int | None:
        """Store ``result`` for ``job`` and run the hook, in one transaction; None if it was
        stored before (the job is no longer open), so a result is never stored twice."""

        def keep(db: Database) -> int | None:
            if not store.job_is_open(db, job.id):
                return None  # finished already (another poll, or a crash after commit)
            result_id = store.insert_result(db, result, job_id=job.id)
            if self.on_result is not None:
                self.on_result(db, result_id, result)
            return result_id

        result_id = await self.store.write(keep)
        log.info(
            "poll.result", job_id=job.id, result_id=result_id, status=result.status,
            raw=result.raw_status,
        )  # fmt: skip
        return result_id


def timeout_result(provider: str, job: store.PollJob, limit: float) -> Result:
    summary = f"No terminal status from {provider} after {limit:g} s (last seen: {job.state})"
    return ended_result(provider, job, "timeout", summary)


def error_result(provider: str, job: store.PollJob, message: str) -> Result:
    return ended_result(provider, job, "error", message)


def ended_result(provider: str, job: store.PollJob, status: str, summary: str) -> Result:
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


def polling_providers(config: Config) -> list[PollingProvider]:
    """A client for each polling provider that has an API key; none configured, no poller."""
    from receiver.providers.qualgent import Qualgent
    from receiver.providers.qualigate import Qualigate

    providers: list[PollingProvider] = []
    if config.qualigate.api_key:
        providers.append(Qualigate(config.qualigate))
    if config.qualgent.api_key:
        providers.append(Qualgent(config.qualgent))
    return providers


def start_poller(
    config: Config, database: store.Store, on_result: ResultHook | None = None
) -> Poller | None:
    """For the app's lifespan: a running poller, or None when no polling provider is set."""
    providers = polling_providers(config)
    if not providers:
        return None
    poller = Poller(database, providers, on_result=on_result)
    poller.start()
    return poller
