"""Time from a callback being accepted to the notification reaching its target, on loopback.

Starts `receiver serve` as a real process with one route to a json:// sink (an HTTP server in
this process), posts N signed callbacks one after the other, and prints p50/p90/p99 of:

- accepted -> sink: from the moment the 200 answer to the callback was read by the client, to the
  moment the sink read the notification's request. It can be negative: the worker is woken at the
  commit, before the answer has travelled back to the client.
- posted -> sink: from just before the callback was sent (ingest included).

Usage (from the repository root):  .venv/bin/python bench/notify_latency.py [--results 1000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.demo import seed_callback
from receiver.process import ServiceProcess
from receiver.signatures import sign
from tests.sinks import HttpSink

SECRET = "bench-secret"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1000)
    args = parser.parse_args()
    sink = HttpSink()
    with tempfile.TemporaryDirectory(prefix="receiver-bench-") as tmp:
        folder = Path(tmp)
        config = folder / "receiver.toml"
        config.write_text(f'[[routes]]\nname = "bench"\nnotify = ["{sink.url("/hook")}"]\n')
        env = {"QUALITYMAX_WEBHOOK_SECRET": SECRET, "RECEIVER_DB": str(folder / "bench.db")}
        service = ServiceProcess(config, env, folder / "serve.log").start()
        try:
            posted, accepted = post_all(service.url, args.results)
            sink.wait_for(lambda: len(sink.delivered("/hook")) >= args.results, timeout=120)
        finally:
            service.stop()
    arrived = {}
    for request in sink.delivered("/hook"):
        match = re.search(r"result #(\d+)", request.json()["message"])
        assert match is not None
        arrived[int(match.group(1))] = request.at
    report("accepted -> sink", [arrived[r] - t for r, t in accepted.items()])
    report("posted   -> sink", [arrived[r] - t for r, t in posted.items()])
    sink.close()
    return 0


def post_all(url: str, count: int) -> tuple[dict[int, float], dict[int, float]]:
    template = seed_callback().decode()
    posted: dict[int, float] = {}
    accepted: dict[int, float] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(count):
            body = template.replace('"abc-123"', f'"bench-{i}"').encode()
            headers = {"X-QualityMax-Signature": sign(body, SECRET)}
            sent = time.time()
            response = client.post("/callbacks/qualitymax", content=body, headers=headers)
            done = time.time()
            response.raise_for_status()
            result_id = response.json()["result_id"]
            posted[result_id], accepted[result_id] = sent, done
    return posted, accepted


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{name}: n={len(ms)}  p50={percentile(ms, 50):.2f} ms  p90={percentile(ms, 90):.2f} ms  "
        f"p99={percentile(ms, 99):.2f} ms  max={max(ms):.2f} ms  mean={statistics.mean(ms):.2f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
