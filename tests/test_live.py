"""receiver.live: results stored on any thread reach every subscriber of the loop, a slow
subscriber loses the oldest ids instead of holding memory, and a stop ends every stream."""

from __future__ import annotations

import asyncio
import threading

from receiver.live import CLOSED, QUEUE_SIZE, LiveResults, both
from receiver.record import Recorded


def stored(result_id: int) -> Recorded:
    return Recorded(result_id=result_id, deliveries=0)


def test_every_subscriber_hears_of_each_result_from_the_loop_or_a_thread() -> None:
    async def run() -> tuple[list[int], list[int]]:
        live = LiveResults()
        live.publish(stored(1))  # nobody listens yet: dropped, no error
        async with live.subscribe() as first, live.subscribe() as second:
            live.publish(stored(2))
            thread = threading.Thread(target=live.publish, args=(stored(3),))
            thread.start()
            thread.join()
            got = [await asyncio.wait_for(first.get(), 1) for _ in range(2)]
            got_too = [await asyncio.wait_for(second.get(), 1) for _ in range(2)]
        assert not live.subscribers
        return got, got_too

    assert asyncio.run(run()) == ([2, 3], [2, 3])


def test_a_slow_subscriber_loses_the_oldest_and_a_stop_ends_every_stream() -> None:
    async def run() -> tuple[int, int, int]:
        live = LiveResults()
        async with live.subscribe() as queue:
            for n in range(QUEUE_SIZE + 10):
                live.publish(stored(n))
            oldest = queue.get_nowait()
            live.close()
            while (last := queue.get_nowait()) != CLOSED:
                pass
            size = queue.qsize()
        async with live.subscribe() as late:  # subscribing after the stop: ends at once
            return oldest, size + last, late.get_nowait()

    assert asyncio.run(run()) == (10, CLOSED, CLOSED)  # ids 0-9 went


def test_both_calls_the_worker_hook_then_the_live_one() -> None:
    calls: list[str] = []
    hook = both(lambda r: calls.append(f"worker {r.result_id}"), lambda r: calls.append("live"))
    hook(stored(7))
    assert calls == ["worker 7", "live"]
