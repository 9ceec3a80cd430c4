"""Artifacts of failed tests, fetched with the provider's key on the server side.

When a failed QualityMax result is recorded, the execution ids of its failing tests (at most
``MAX_TESTS``) are queued in the same transaction (receiver.store.test_logs). This fetcher asks
``GET /artifacts/{execution_id}/logs`` for each, after the result is stored and answered, so
ingest never waits for it; a failed fetch is retried with backoff, ``MAX_ATTEMPTS`` times in
all. Logs are kept bounded (``MAX_LOG_CHARS``); once a result has them, its sticky pull-request
comment is rewritten to show them, folded. Screenshots and videos are not fetched: the API's
``/api/artifacts/{execution_id}/{kind}`` redirects to them with the key kept here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Final

from receiver.background import BackgroundLoop
from receiver.clock import utc_after, utcnow
from receiver.logs import get_logger
from receiver.providers.errors import ProviderError, UnknownTarget
from receiver.providers.qualitymax import ExecutionLogs, QualityMax
from receiver.results import Result
from receiver.store import Store, deliveries
from receiver.store import test_logs as stored
from receiver.store.tx import Tx

log = get_logger("receiver.artifacts")

MAX_TESTS: Final = 10  # failing tests whose logs a result gets
MAX_LOG_CHARS: Final = 4000  # per test, what is kept and shown
MAX_CONSOLE_LINES: Final = 20
MAX_ATTEMPTS: Final = 5
BACKOFF: Final = (5.0, 30.0, 120.0, 600.0)
LEASE_SECONDS: Final = 120.0  # a fetch that crashed is tried again after this
MAX_TICK: Final = 2.0
PR_COMMENT: Final = "github://pr-comment"


def wanted(result: Result) -> list[str]:
    """The execution ids whose logs a result should get: its failing QualityMax tests'."""
    if result.provider != "qualitymax" or result.status not in ("failed", "error"):
        return []
    failing = [t.execution_id for t in result.tests if t.status != "passed" and t.execution_id]
    return [e for e in failing if e][:MAX_TESTS]


def queue_for(tx: Tx, result_id: int, result: Result) -> None:
    """In the result's transaction: queue its failing tests' logs (nothing for the others)."""
    if ids := wanted(result):
        stored.enqueue(tx, result_id, ids)


def render(logs: ExecutionLogs) -> str:
    """The logs as plain text, bounded: the error, the test output, the console's last lines."""
    parts = []
    if logs.error_message:
        parts.append(f"error: {logs.error_message}")
    if logs.test_output:
        parts.append(logs.test_output.strip())
    console = [f"[{c.type or 'log'}] {c.message}" for c in logs.console_logs]
    if console:
        parts.append("\n".join(console[-MAX_CONSOLE_LINES:]))
    text = "\n".join(parts) or "(no logs)"
    return text if len(text) <= MAX_LOG_CHARS else text[: MAX_LOG_CHARS - 1] + "…"


class LogFetcher(BackgroundLoop):
    """Fetches queued logs; ``start()``/``stop()`` in the lifespan, ``run_once()`` for tests."""

    def __init__(
        self,
        store: Store,
        qualitymax: QualityMax,
        *,
        on_refreshed: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.qualitymax = qualitymax
        self.on_refreshed = on_refreshed  # wakes the delivery worker: a comment to rewrite
        super().__init__(name="receiver-log-fetcher", every=MAX_TICK, log=log, failed="logs.failed")

    async def step(self) -> None:
        await self.run_once()

    async def run_once(self) -> int:
        """Fetch every due log once; how many were tried."""
        due_at = self.store.read(stored.next_due)  # a read: the writer is not woken for nothing
        if due_at is None or due_at > utcnow():
            return 0
        claim = partial(stored.claim_due, lease_until=utc_after(LEASE_SECONDS))
        due = await self.store.write(claim)
        refreshed = 0
        for row in due:
            refreshed += await self._fetch(row)
        if refreshed and self.on_refreshed is not None:
            self.on_refreshed()
        return len(due)

    async def _fetch(self, row: stored.DueLog) -> int:
        try:
            logs = await self.qualitymax.logs(row.execution_id)
        except ProviderError as exc:
            last = row.attempts + 1 >= MAX_ATTEMPTS or isinstance(exc, UnknownTarget)
            retry_at = None if last else utc_after(BACKOFF[min(row.attempts, len(BACKOFF) - 1)])
            error = str(exc)
            await self.store.write(
                lambda tx: stored.failed(tx, row, error=error, retry_at=retry_at)
            )
            log.warning("logs.fetch_failed", execution_id=row.execution_id, error=error)
            return 0
        text = render(logs)

        def keep(tx: Tx) -> int:
            stored.fetched(tx, row, text)
            return deliveries.refresh_sent(tx, row.result_id, PR_COMMENT)

        refreshed = await self.store.write(keep)
        log.info("logs.fetched", execution_id=row.execution_id, result_id=row.result_id)
        return refreshed
