"""Slack living messages: API calls per result, and the time from a callback to the edited
message, through a real ``receiver serve`` and the Slack Web API stand-in, on loopback.

Starts the Slack stand-in (receiver/simulator/slack.py) in this process and ``receiver serve`` as
a real process with one route to ``slackbot://#previews``, then posts N signed callbacks one
after the other for one pull request, cycling through a matrix of three browsers, every fifth
one failing (so the group's status changes and a threaded reply is due now and then). For each
callback it waits for the ``chat.postMessage``/``chat.update`` whose message shows that result
(its footer names the group's newest result), and reports:

- calls per result: every Slack API call the service made, divided by the results;
- posted -> edited: from just before the callback was posted (ingest included) to the stand-in
  reading the call that shows it; accepted -> edited: from the callback's 200 being read.

Usage (from the repository root):  .venv/bin/python bench/slack_latency.py [--results 300]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.bench import latency_line
from receiver.process import ServiceProcess
from receiver.signatures import sign
from receiver.simulator.slack import SlackApi
from receiver.simulator.standin import StandIn

SECRET = "bench-secret"
BROWSERS = ("chromium", "firefox", "webkit")
SHOWN = re.compile(r"result #(\d+)")


def body(n: int) -> bytes:
    status = "failed" if n % 5 == 4 else "passed"
    document = {
        "event": "test_results",
        "job_id": f"slack-bench-{n}",
        "custom_data": {
            "repository": "acme/shop",
            "pr_number": 42,
            "sha": "4b1e7c0a52",
            "branch": "feat/login",
            "browser": BROWSERS[n % len(BROWSERS)],
        },
        "results": {
            "status": status,
            "total_tests": 3,
            "passed": 3 if status == "passed" else 2,
            "failed": 0 if status == "passed" else 1,
            "duration_ms": 1000 + n,
            "report_app_url": "https://app.qualitymax.io/#/projects/137",
            "tests": [
                {"test": "Login", "status": "passed", "duration_ms": 400},
                {"test": "Search", "status": "passed", "duration_ms": 300},
                {
                    "test": "Checkout",
                    "status": status,
                    "duration_ms": 300,
                    **({"error": "Timeout waiting for #pay"} if status == "failed" else {}),
                },
            ],
        },
    }
    return json.dumps(document).encode()


def newest_shown(args: dict[str, object]) -> int:
    """The newest result a postMessage/update shows (its context block's footer); 0 if none."""
    found = [int(m) for m in SHOWN.findall(json.dumps(args.get("blocks", [])))]
    return max(found, default=0)


def run(folder: Path, count: int) -> None:
    token = f"xoxb-bench-{secrets.token_hex(6)}"
    slack = SlackApi(token)
    server = StandIn(slack.answer, nodelay=True)
    config = folder / "receiver.toml"
    config.write_text(
        '[[routes]]\nname = "previews"\nnotify = ["slackbot://#previews"]\n'
        "[delivery]\nbackoff = [0.2]\n"
    )
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": "bench-token",
        "RECEIVER_DB": str(folder / "receiver.db"),
        "SLACK_BOT_TOKEN": token,
        "SLACK_API_URL": f"{server.base_url}/api",
        "RECEIVER_LOG_FORMAT": "json",
    }
    service = ServiceProcess(config, env, folder / "serve.log").start()
    posted: dict[int, float] = {}
    accepted: dict[int, float] = {}
    edited: dict[int, float] = {}
    try:
        with httpx.Client(timeout=30) as client:
            for n in range(count):
                payload = body(n)
                headers = {"X-QualityMax-Signature": sign(payload, SECRET)}
                sent = time.time()
                answer = client.post(
                    f"{service.url}/callbacks/qualitymax", content=payload, headers=headers
                )
                done = time.time()
                answer.raise_for_status()
                result_id = int(answer.json()["result_id"])
                posted[result_id], accepted[result_id] = sent, done
                if not server.wait_for(lambda r=result_id: _shown(slack, r), timeout=30):
                    sys.exit(f"result {result_id} never reached Slack: see {folder}/serve.log")
                edited[result_id] = next(
                    c.at for c in slack.calls if c.ok and newest_shown(c.args) >= result_id
                )
            time.sleep(0.5)  # a threaded reply still on its way is counted too
    finally:
        service.stop()
        server.close()
    methods = Counter(
        f"{c.method}{' (thread)' if c.args.get('thread_ts') else ''}" for c in slack.calls
    )
    total = sum(methods.values())
    print(f"{count} results, {total} Slack API calls: {total / count:.2f} per result")
    for method, calls in sorted(methods.items()):
        print(f"  {method}: {calls}")
    print(f"top-level messages: {len(slack.top_level())}")
    print(latency_line("posted   -> edited", [(edited[r] - t) * 1000 for r, t in posted.items()]))
    print(latency_line("accepted -> edited", [(edited[r] - t) * 1000 for r, t in accepted.items()]))


def _shown(slack: SlackApi, result_id: int) -> bool:
    with slack.lock:
        return any(c.ok and newest_shown(c.args) >= result_id for c in slack.calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="receiver-bench-") as tmp:
        run(Path(tmp), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
