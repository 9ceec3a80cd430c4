"""Time from a callback being accepted to the notification reaching its target, on loopback.

The same measurement ``bench/run`` prints last, on its own: starts `receiver serve` as a real
process with one route to a json:// sink (an HTTP server in this process), posts N signed
callbacks one after the other, and prints p50/p90/p99 of

- accepted -> sink: from the moment the 200 answer to the callback was read by the client, to the
  moment the sink read the notification's request. It can be negative: the worker is woken at the
  commit, before the answer has travelled back to the client.
- posted -> sink: from just before the callback was sent (ingest included).

Usage (from the repository root):  .venv/bin/python bench/notify_latency.py [--results 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench import latency_line, notify_latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="receiver-bench-") as tmp:
        latency = notify_latency(Path(tmp) / "latency", args.results)
    print(latency_line("accepted -> sink", latency.accepted_ms))
    print(latency_line("posted   -> sink", latency.posted_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
