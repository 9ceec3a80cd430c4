"""New results as they are stored, for whoever follows them live in this process: the
dashboard's server-sent events.

``publish`` is a ``RecordedHook`` (receiver.record): the app calls it after each commit that
stored a result, from the event loop or from another thread. Each subscriber has a small queue
of result ids; a subscriber too slow to keep up loses the oldest ids (a live page that far
behind reloads, it does not hold the service's memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import FrameType
from typing import Final

from receiver.record import Recorded, RecordedHook

QUEUE_SIZE: Final = 256
CLOSED: Final = -1  # sent to every subscriber when the service stops
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


class LiveResults:
    """A fan-out of stored result ids to the subscribers of one event loop."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.subscribers: set[asyncio.Queue[int]] = set()
        self.closed = False

    def publish(self, recorded: Recorded) -> None:
        """Hand ``recorded``'s result to every subscriber; safe from any thread."""
        loop = self.loop
        if loop is None or loop.is_closed() or not self.subscribers:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(recorded.result_id)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._fan_out, recorded.result_id)

    def publish_id(self, payload: str) -> None:
        """A result another instance (or this one) committed, named by the store's notice."""
        if payload.isdigit():
            self.publish(Recorded(result_id=int(payload), deliveries=0))

    def _fan_out(self, result_id: int) -> None:
        for queue in self.subscribers:
            if queue.full():
                queue.get_nowait()  # the oldest goes
            queue.put_nowait(result_id)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[int]]:
        """A queue of the ids of results stored from now on; ``CLOSED`` when the service stops."""
        self.loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int] = asyncio.Queue(QUEUE_SIZE)
        if self.closed:
            queue.put_nowait(CLOSED)
        self.subscribers.add(queue)
        try:
            yield queue
        finally:
            self.subscribers.discard(queue)

    def close(self) -> None:
        """Tell every subscriber the service stops (their streams end)."""
        self.closed = True
        for queue in self.subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(CLOSED)


def both(first: RecordedHook, second: Callable[[Recorded], None]) -> RecordedHook:
    """One hook that calls ``first``, then ``second``."""

    def hook(recorded: Recorded) -> None:
        first(recorded)
        second(recorded)

    return hook


@contextlib.contextmanager
def closed_on_stop(live: LiveResults) -> Iterator[None]:
    """Close ``live`` as soon as SIGTERM or SIGINT arrives, then let the handler already there
    run: the server (granian) waits for open connections before the app's shutdown, and an
    event stream open in a browser would otherwise hold the stop until the kill timeout.

    Only in the main thread (where servers run the app; the TestClient runs it elsewhere).
    The server's own handling is untouched: asyncio and uvloop dispatch their handlers through
    the wakeup file descriptor, which a Python-level handler set here does not replace.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def on_stop(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(live.close)
        before = previous.get(signal.Signals(signum))
        if callable(before):
            before(signum, frame)

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
