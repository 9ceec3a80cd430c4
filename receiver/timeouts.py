"""Silence is not success: a job submitted through receiver that has no result within its
provider's ``timeout_seconds`` becomes a ``timeout`` result, routed like any other.

A small watcher in the service's lifespan asks the jobs table, every few seconds, for jobs
waiting for a callback past their provider's limit (``[qualitymax] timeout_seconds``, default
900; a polled job is the poller's to end), and
records a ``timeout`` result for each through the Recorder, only while the job is still open in
that same transaction (a callback, or the poller, may have ended it meanwhile). It reads only
the jobs table and the config, nothing of the providers' own modules. A real result arriving
later replaces the timeout result (receiver.record).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import Final

from receiver.background import BackgroundLoop
from receiver.clock import utc_after
from receiver.config import Config
from receiver.logs import get_logger
from receiver.record import Recorded, RecordedHook, Recorder
from receiver.results import Result
from receiver.store import Store, jobs
from receiver.store.jobs import OpenJob
from receiver.store.tx import Tx

log = get_logger("receiver.timeouts")

MAX_CHECK_SECONDS: Final = 15.0
BATCH: Final = 100


def limits(config: Config) -> dict[str, float]:
    """Seconds to wait for a result, per provider whose results are pushed to us. (Qualigate and
    QualGent are polled; their poller ends their jobs itself.)"""
    return {"qualitymax": config.qualitymax.timeout_seconds}


def timeout_result(provider: str, job: OpenJob, limit: float) -> Result:
    """``no result for deploy abc-123 within 15 min``."""
    deploy = job.custom_data.get("deploy_id")
    what = f"deploy {deploy}" if isinstance(deploy, str | int) and deploy != "" else f"job {job.id}"
    return Result(
        provider=provider,
        event="test_results",
        status="timeout",
        raw_status=job.state,
        summary=f"No result for {what} within {_span(limit)} (timeout_seconds)",
        external_job_id=job.external_id,
        custom_data=job.custom_data,
    )


def _span(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class TimeoutWatcher(BackgroundLoop):
    """Ends overdue jobs with a ``timeout`` result; ``start``/``stop`` live in the lifespan."""

    def __init__(
        self,
        database: Store,
        recorder: Recorder,
        limits: Mapping[str, float],
        *,
        on_recorded: RecordedHook | None = None,
    ) -> None:
        self.store = database
        self.recorder = recorder
        self.limits = dict(limits)
        self.on_recorded = on_recorded
        every = min([MAX_CHECK_SECONDS, *(s / 4 for s in self.limits.values())])
        super().__init__(
            name="receiver-timeouts", every=every, log=log, failed="timeouts.check_failed"
        )

    async def step(self) -> None:
        await self.check()

    async def check(self) -> list[int]:
        """End every overdue job now; the ids of the timeout results recorded."""
        made = []
        for provider, limit in self.limits.items():
            before = utc_after(-limit)
            due = await asyncio.to_thread(
                self.store.read,
                lambda tx, p=provider, b=before: jobs.overdue(tx, p, created_before=b, limit=BATCH),
            )
            for job in due:
                recorded = await self.store.write(partial(self._end, job, provider, limit))
                if recorded is None:
                    continue
                if self.on_recorded is not None:
                    self.on_recorded(recorded)
                made.append(recorded.result_id)
                result_id = recorded.result_id
                log.info("job.timeout", job_id=job.id, provider=provider, result_id=result_id)
        return made

    def _end(self, job: OpenJob, provider: str, limit: float, tx: Tx) -> Recorded | None:
        if not jobs.is_open(tx, job.id):
            return None  # its result came meanwhile
        return self.recorder.record(tx, timeout_result(provider, job, limit), job_id=job.id)


def start_watcher(
    config: Config, database: Store, recorder: Recorder, on_recorded: RecordedHook | None
) -> TimeoutWatcher:
    watcher = TimeoutWatcher(database, recorder, limits(config), on_recorded=on_recorded)
    watcher.start()
    return watcher
