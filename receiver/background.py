"""A background loop for the service's lifespan: it runs one step, then waits until it is woken
or ``every`` seconds have passed, and again, until it is stopped.

The sender, the poller, the log fetcher and the timeout watcher each are such a loop, each with
its own ``step`` (like procrastinate's worker: wake on new work, on the interval, or on stop,
whichever comes first). A step that raises is logged and the loop goes on: a store hiccup must
not end the work for good.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from typing import Any


class BackgroundLoop(abc.ABC):
    """``start()`` and ``stop()`` in the lifespan; ``wake()`` when there is new work."""

    def __init__(self, *, name: str, every: float, log: Any, failed: str) -> None:
        self.task_name = name
        self.every = every
        self.log = log
        self.failed = failed  # the log event of a step that raised
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def wake_in(self, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self._wake.set)

    @abc.abstractmethod
    async def step(self) -> float | None:
        """One turn of the work; how soon it wants the next (None: in ``every`` seconds)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """The step under way finishes; no other starts."""
        self._stopping = True
        self.wake()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the step: a wake during it means one more turn
            try:
                sooner = await self.step()
            except Exception:
                self.log.exception(self.failed)
                sooner = None
            wait = self.every if sooner is None else min(sooner, self.every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
