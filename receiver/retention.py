"""Retention: what is older than ``[retention] keep_days`` goes, a little at a time.

Results, their tests and deliveries, jobs, and callbacks older than ``keep_days`` are deleted (a
result never while one of its deliveries is pending); a callback's digest stays until
``keep_digest_days`` so that an old body replayed after the purge is still a duplicate and
notifies nobody. Each batch is its own short transaction through the store's
writer, with a pause between batches, so ingestion never waits long behind a purge. Freed pages
go back to the file system afterwards, a few at a time.

The service purges an hour after start and then every hour; ``receiver purge`` does it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import msgspec

from receiver.clock import utc_after
from receiver.config import RetentionSettings
from receiver.logs import get_logger
from receiver.store import Store
from receiver.store import retention as sql
from receiver.store.retention import Cutoffs, Purged
from receiver.store.tx import Tx

log = get_logger("receiver.retention")

DAY: Final = 86_400.0
BATCH: Final = 500  # rows a transaction looks at: a few milliseconds of the writer's time
PAUSE: Final = 0.05  # seconds between batches, for the callbacks queued behind one
RECLAIM_PAGES: Final = 256  # free pages handed back per transaction (1 MiB of 4 KiB pages)
EVERY: Final = 3600.0


def cutoffs(settings: RetentionSettings, *, older_than_days: float | None = None) -> Cutoffs:
    keep = settings.keep_days if older_than_days is None else older_than_days
    return Cutoffs(
        before=utc_after(-keep * DAY),
        digests_before=utc_after(-max(keep, settings.keep_digest_days) * DAY),
    )


async def purge(
    store: Store, limits: Cutoffs, *, batch: int = BATCH, pause: float = PAUSE
) -> Purged:
    """Every step, window after window, each window its own write; then reclaim the pages."""
    purged = Purged()
    for name, step in sql.STEPS.items():
        after = 0
        while True:
            window = await store.write(lambda tx: step(tx, limits, after, batch))  # noqa: B023
            purged.add(name, window.changed)
            if not window.more:
                break
            after = window.last_id
            await asyncio.sleep(pause)
    while await store.write(lambda tx: sql.reclaim(tx, RECLAIM_PAGES)):
        await asyncio.sleep(pause)
    return purged


class DryRun(Exception):
    """Raised inside the purge's transaction to roll it back, carrying what it would delete."""

    def __init__(self, purged: Purged) -> None:
        super().__init__("dry run")
        self.purged = purged


def purge_now(store: Store, limits: Cutoffs, *, dry_run: bool = False) -> Purged:
    """For ``receiver purge``: every step in one blocking transaction (rolled back on a dry
    run, so the counts are exactly what a real purge would delete); then reclaim the pages."""

    def everything(tx: Tx) -> Purged:
        purged = Purged()
        for name, step in sql.STEPS.items():
            after, more = 0, True
            while more:
                window = step(tx, limits, after, BATCH)
                purged.add(name, window.changed)
                after, more = window.last_id, window.more
        if dry_run:
            raise DryRun(purged)
        return purged

    try:
        purged = store.write_sync(everything)
    except DryRun as rolled_back:
        return rolled_back.purged
    while store.write_sync(lambda tx: sql.reclaim(tx, RECLAIM_PAGES)):
        pass
    return purged


class Retention:
    """The service's purge, in its lifespan: ``start()``, then ``stop()``."""

    def __init__(self, store: Store, settings: RetentionSettings, *, every: float = EVERY) -> None:
        self.store = store
        self.settings = settings
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="receiver-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                purged = await purge(self.store, cutoffs(self.settings))
            except Exception:  # a store hiccup must not end retention for good
                log.exception("retention.failed")
                continue
            if purged.total:
                log.info("retention.purged", **msgspec.structs.asdict(purged))
