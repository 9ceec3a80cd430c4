"""Two checkouts of receiver served in alternating rounds: is a change faster, served?

    .venv/bin/python -m bench.ab DIR_A DIR_B [--rounds 4] [--seconds 8] [--connections 16]

Each checkout's ``receiver serve`` starts from its own directory, with that directory first on
PYTHONPATH, on a fresh database. ``python -m`` puts the working directory ahead of PYTHONPATH:
started from elsewhere, the served code is whatever checkout the command ran in, which is how
earlier paired runs compared main with itself (README, Performance). Each round measures both,
in alternating order, after the machine has gone quiet; then it prints, per run, req/s, p99, the
served process's CPU per callback (all threads) and its event loop thread's CPU per callback, and
B/A round by round. Needs wrk (``bench/run`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench import (
    Target,
    generate_bodies,
    receiver,
    run_wrk,
    tree_pids,
    wait_until_quiet,
    warm_up,
)

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    checkout: str
    rps: float
    requests: int
    p99_ms: float
    cpu_us: float  # all threads of the served processes, per callback
    loop_us: float  # the event loop thread of granian's worker, per callback

    def line(self) -> str:
        return (
            f"{self.checkout:>12}  {self.rps:7.0f} req/s  p99 {self.p99_ms:6.2f} ms  "
            f"cpu {self.cpu_us:4.0f} us/callback  event loop {self.loop_us:4.0f} us/callback"
        )


def ticks(stat: str) -> int:
    """User plus system CPU ticks from a /proc stat file: a process's or one thread's."""
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure(
    checkout: str, target: Target, bodies: Path, connections: int, seconds: int, offset: int
) -> Run:
    pids = tree_pids(target.pid)
    worker = pids[-1]  # granian serves from the child process; its main thread runs the loop
    loop_thread = f"/proc/{worker}/task/{worker}/stat"
    before = [ticks(f"/proc/{p}/stat") for p in pids], ticks(loop_thread)
    figures = run_wrk(target.url, bodies, connections=connections, seconds=seconds, offset=offset)
    after = [ticks(f"/proc/{p}/stat") for p in pids], ticks(loop_thread)
    count = max(1, figures["requests"])
    per_callback = 1e6 / TICKS / count
    return Run(
        checkout=checkout,
        rps=figures["requests"] / (figures["duration_us"] / 1e6),
        requests=figures["requests"],
        p99_ms=figures["p99_us"] / 1000,
        cpu_us=(sum(after[0]) - sum(before[0])) * per_callback,
        loop_us=(after[1] - before[1]) * per_callback,
    )


def main(argv: list[str] | None = None) -> list[list[Run]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="the checkout to compare against (the base)")
    parser.add_argument("b", type=Path, help="the checkout with the change")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--custom-data",
        type=json.loads,
        default={},
        metavar="JSON",
        help='added to every callback\'s custom_data, e.g. \'{"repository": "acme/shop"}\'',
    )
    args = parser.parse_args(argv)
    checkouts = [args.a.resolve(), args.b.resolve()]
    for checkout in checkouts:
        if not (checkout / "receiver" / "__init__.py").is_file():
            parser.error(f"{checkout} is not a receiver checkout (no receiver/__init__.py)")
    with tempfile.TemporaryDirectory(prefix="receiver-ab-") as tmp:
        return alternate(checkouts, Path(tmp), args)


def alternate(checkouts: list[Path], folder: Path, args: argparse.Namespace) -> list[list[Run]]:
    """The rounds, in ``folder``; each run's database is removed once measured (a run at
    -c16 for 8 s stores ~50,000 callbacks, about 400 MB with its WAL)."""
    bodies = folder / "bodies.txt"
    # Enough for both checkouts' runs at 10,000 callbacks a second (receiver reaches ~6,500
    # here), so that no callback is a repeat.
    generate_bodies(bodies, 2 * args.rounds * args.seconds * 10_000, "ab", args.custom_data)
    rounds: list[list[Run]] = []
    sent = 0
    for n in range(args.rounds):
        order = checkouts if n % 2 == 0 else checkouts[::-1]
        runs = {}
        for index, checkout in enumerate(order):
            # Each checkout's own code, served from it (see the module's docstring).
            served = folder / f"round{n}-{index}"
            with receiver(served, "granian", checkout=checkout) as target:
                warm_up(target, folder)
                wait_until_quiet()
                run = measure(checkout.name, target, bodies, args.connections, args.seconds, sent)
            shutil.rmtree(served)
            sent += run.requests
            runs[checkout] = run
            print(run.line(), flush=True)
        rounds.append([runs[checkouts[0]], runs[checkouts[1]]])
        a, b = rounds[-1]
        print(f"round {n + 1}: B/A {b.rps / a.rps:.2f}", flush=True)
    ratios = [b.rps / a.rps for a, b in rounds]
    listed = " ".join(f"{ratio:.2f}" for ratio in ratios)
    print(f"B/A by round: {listed}; median {statistics.median(ratios):.2f}")
    return rounds


if __name__ == "__main__":
    main()
