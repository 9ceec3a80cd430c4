"""The sender: jobs over their provider's rate limit wait in state ``queued`` and go, oldest
first, as soon as the provider's documented limit allows.

The jobs table is the queue (like the poller's): nothing lives only in memory but the secrets
a queued request carried, so a restarted service resumes every queued job; one whose secret was
lost with the restart ends in an error that says to re-run it with the secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Final

import msgspec

from receiver import clock
from receiver import providers as registry
from receiver.background import BackgroundLoop
from receiver.jobs import Submission
from receiver.logs import get_logger
from receiver.providers.base import JobBody, Provider
from receiver.store import jobs
from receiver.store.tx import SQLITE

log = get_logger("receiver.sender")

MAX_TICK: Final = 1.0  # looks again at least this often (a queued job of another service)
BATCH: Final = 20
# How long a sender holds a queued job it sends: far longer than a send takes.
LEASE_SECONDS: Final = 120.0
# A queued job whose secret another instance holds (PostgreSQL) is left to it this long.
OTHERS_SECONDS: Final = 300.0


class Sender(BackgroundLoop):
    """Sends queued jobs; ``start()`` and ``stop()`` live in the app's lifespan."""

    def __init__(self, submission: Submission, providers: Iterable[Provider]) -> None:
        super().__init__(name="receiver-sender", every=MAX_TICK, log=log, failed="sender.failed")
        self.submission = submission
        self.providers = list(providers)

    async def step(self) -> float:
        return await self.send_due()

    async def send_due(self) -> float:
        """Send every queued job its provider's limit allows now; the seconds until the next
        one may go."""
        wait = MAX_TICK
        for provider in self.providers:
            store = self.submission.store
            for job in store.read(partial(jobs.queued, provider=provider.name, limit=BATCH)):
                body = _body_or_none(job.body)
                if body is not None and self._held_elsewhere(job, body):
                    continue
                delay = provider.send_delay(body or provider.request_type())
                if delay > 0:
                    wait = min(wait, delay)
                    break  # oldest first: the rest wait behind it
                claim = partial(jobs.claim_queued, job_id=job.id, lease_seconds=LEASE_SECONDS)
                if await store.write(claim):
                    await self.submission.send_queued(job)
        return wait

    def _held_elsewhere(self, job: jobs.QueuedJob, body: JobBody) -> bool:
        """The job's secret is in another instance's memory (one on the same PostgreSQL
        database queued it, recently): that one sends it. Alone on SQLite there is no other."""
        if self.submission.store.dialect == SQLITE or self.submission.holds(job.id):
            return False
        if not body.missing_secrets():
            return False
        return job.created_at > clock.utc_after(-OTHERS_SECONDS)


def _body_or_none(body: str | None) -> JobBody | None:
    try:
        decoded: JobBody = msgspec.json.decode(body or "null", type=registry.job_body_type())
    except msgspec.DecodeError:
        return None  # send_queued records why it cannot be sent
    return decoded
