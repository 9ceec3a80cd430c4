"""How many requests the poller makes per running job, and how many jobs fit in the limits.

Runs the real Poller against the simulators with the documented limits, time scaled by SCALE
(a 60 s window becomes 60/SCALE s, poll_seconds 10 becomes 10/SCALE), on jobs that never end, and
reports per documented minute. Usage: .venv/bin/python bench/polling.py [seconds-per-case]
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from pathlib import Path

import httpx

from receiver import store
from receiver.config import QualgentSettings, QualigateSettings
from receiver.logs import configure as configure_logs
from receiver.poller import Poller
from receiver.providers.qualgent import Qualgent
from receiver.providers.qualigate import Qualigate
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served

SCALE = 10.0
POLL_SECONDS = 10.0  # the default, the document's advice


def case(provider: str, jobs: int, seconds: float) -> tuple[float, int, int]:
    minute = 60 / SCALE
    if provider == "qualigate":
        sim = Served(gate_sim.create_app(limit=30, window=minute)).start()
        settings = QualigateSettings(
            base_url=sim.url,
            api_key=gate_sim.API_KEY,
            poll_seconds=POLL_SECONDS / SCALE,
            timeout_seconds=3600,
        )
        client: Qualigate | Qualgent = Qualigate(settings, rate_window=minute)
        request: dict[str, object] = {"test_case_id": gate_sim.ENDLESS_CASE}
    else:
        # 10 a second, scaled: 100 in the same 1 s window (a 0.1 s window is finer than a loop).
        sim = Served(gent_sim.create_app(limit=int(10 * SCALE), window=1.0)).start()
        settings2 = QualgentSettings(
            base_url=sim.url,
            api_key=gent_sim.API_KEY,
            poll_seconds=POLL_SECONDS / SCALE,
            timeout_seconds=3600,
        )
        client = Qualgent(settings2, rate_limit=int(10 * SCALE), rate_window=1.0)
        request = {
            "test_case_id": "tc_endless",
            "app_file_id": gent_sim.APP_ID,
            "device": gent_sim.DEVICE,
        }
    with tempfile.TemporaryDirectory() as tmp, store.Store(str(Path(tmp) / "b.db")) as db:
        poller = Poller(db, [client])

        async def go() -> None:
            for _ in range(jobs):
                await poller.submit(provider, request, {})
            before = client.api.requests
            poller.start()
            await asyncio.sleep(seconds)
            await poller.stop()
            client.api.requests -= before

        asyncio.run(go())
    score = httpx.get(f"{sim.url}/_sim/stats").json()
    sim.stop()
    polls = client.api.requests
    simulated_minutes = seconds / (60 / SCALE)
    return polls / jobs / simulated_minutes, score["limited"], max(score["max_in_window"].values())


def main() -> None:
    configure_logs(level=logging.WARNING)
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
    print(f"poll_seconds={POLL_SECONDS:g} (scaled x{SCALE:g}); per documented minute")
    print("provider   jobs  req/min/job  429s  max in one window")
    for provider, counts in (("qualigate", (1, 5, 10, 20)), ("qualgent", (1, 100, 200))):
        for jobs in counts:
            rate, limited, peak = case(provider, jobs, seconds)
            print(f"{provider:<10} {jobs:>4}  {rate:>11.2f}  {limited:>4}  {peak:>4}")


if __name__ == "__main__":
    main()
