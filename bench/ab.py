"""Two or more checkouts of receiver served in alternating rounds: is a change faster, served?

    .venv/bin/python -m bench.ab DIR_A DIR_B [DIR_C ...] [--rounds 4] [--seconds 8]
        [--connections 16] [--prefill N | --database FILE]

Each checkout's ``receiver serve`` starts from its own directory, with that directory first on
PYTHONPATH, on a fresh database. ``python -m`` puts the working directory ahead of PYTHONPATH:
started from elsewhere, the served code is whatever checkout the command ran in, which is how
earlier paired runs compared main with itself (README, Performance). All checkouts run on this
interpreter and its packages, so only their code differs.

``--prefill N``: each checkout's fresh database holds N distinct callbacks before its run. They
are posted once per checkout with wrk to that checkout's own service (so the database has its
own schema and everything its intake writes), into a template that each run then starts on a
copy of. ``--database FILE`` starts every run on a copy of FILE instead (checkouts that differ
in nothing the schema sees, such as a cache size). Without either a run starts on an empty
database.

Each round measures every checkout, the order reversed every other round, after the machine has
gone quiet; then it prints, per run: req/s, p99, the served processes' CPU per callback (all
threads) and their event loop thread's, the bytes they read per callback (``rchar``: SQLite's
page reads that missed its own cache, whether or not the kernel had the page, and the requests'
bytes), their RSS after the run, and how much CPU the rest of the machine took during it
(other users'; wrk and the served processes excluded). Then each checkout against the first,
round by round. Needs wrk (``bench/run`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench import (
    QUIET_BUSY,
    Target,
    cpu_busy,
    generate_bodies,
    receiver,
    run_wrk,
    send_count,
    stored,
    tree_pids,
    tree_rss_mb,
    warm_up,
)

TICKS = os.sysconf("SC_CLK_TCK")
SPARE = 1000  # prefill bodies beyond the count, for callbacks that wrk left unanswered
RATE = 10_000  # callbacks a second that no checkout reaches here: bodies made per second of run


@dataclass
class Run:
    checkout: str
    rps: float
    requests: int
    p99_ms: float
    cpu_us: float  # all threads of the served processes, per callback
    loop_us: float  # the event loop thread of granian's worker, per callback
    read_kb: float  # bytes the served processes read per callback (rchar), in KiB
    rss_mb: float  # the served processes' resident memory after the run
    others: float  # cores the rest of the machine kept busy during the run
    waited_s: float  # how long the run waited for a quiet machine (60 s: it never was)

    def line(self) -> str:
        return (
            f"{self.checkout:>12}  {self.rps:7.0f} req/s  p99 {self.p99_ms:6.2f} ms  "
            f"cpu {self.cpu_us:4.0f} us/callback  event loop {self.loop_us:4.0f} us/callback  "
            f"read {self.read_kb:5.1f} KiB/callback  RSS {self.rss_mb:5.1f} MB  "
            f"others {self.others:4.2f} cores (waited {self.waited_s:2.0f} s)"
        )


def ticks(stat: str) -> int:
    """User plus system CPU ticks from a /proc stat file: a process's or one thread's."""
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def read_bytes(pids: list[int]) -> int:
    """Bytes the processes read through read(2), pread(2) and the like (``rchar``)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                total += int(line.split()[1])
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine, every core (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def children_ticks() -> float:
    """CPU ticks of this process's finished children (the wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * TICKS


@dataclass
class Sample:
    served: int
    loop: int
    read: int
    machine: tuple[int, int]
    wrk: float

    @classmethod
    def take(cls, pids: list[int], loop_thread: str) -> Sample:
        return cls(
            served=sum(ticks(f"/proc/{p}/stat") for p in pids),
            loop=ticks(loop_thread),
            read=read_bytes(pids),
            machine=machine_ticks(),
            wrk=children_ticks(),
        )


def settle(limit: float = 60.0) -> float:
    """Wait until the machine is nearly idle (at most ``limit`` seconds); how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if cpu_busy(0.5) < QUIET_BUSY:
            break
    return time.monotonic() - started


def measure(
    checkout: str, target: Target, bodies: Path, connections: int, seconds: int, waited: float
) -> Run:
    pids = tree_pids(target.pid)
    worker = pids[-1]  # granian serves from the child process; its main thread runs the loop
    loop_thread = f"/proc/{worker}/task/{worker}/stat"
    before = Sample.take(pids, loop_thread)
    figures = run_wrk(target.url, bodies, connections=connections, seconds=seconds)
    after = Sample.take(pids, loop_thread)
    count = max(1, figures["requests"])
    per_callback = 1e6 / TICKS / count
    busy = after.machine[0] - before.machine[0]
    ours = (after.served - before.served) + (after.wrk - before.wrk)
    elapsed = (after.machine[1] - before.machine[1]) / (os.cpu_count() or 1)
    return Run(
        checkout=checkout,
        rps=figures["requests"] / (figures["duration_us"] / 1e6),
        requests=figures["requests"],
        p99_ms=figures["p99_us"] / 1000,
        cpu_us=(after.served - before.served) * per_callback,
        loop_us=(after.loop - before.loop) * per_callback,
        read_kb=(after.read - before.read) / count / 1024,
        rss_mb=tree_rss_mb(target.pid),
        others=max(0.0, busy - ours) / max(1, elapsed),
        waited_s=waited,
    )


def main(argv: list[str] | None = None) -> list[list[Run]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "checkouts",
        type=Path,
        nargs="+",
        help="the checkouts: the first is the base the others are compared against",
    )
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
    parser.add_argument(
        "--prefill", type=int, default=0, help="callbacks in each database before a run"
    )
    parser.add_argument(
        "--database",
        type=Path,
        help="start every run on a copy of this closed database instead (checkouts that share "
        "its schema: a --prefill template kept, for a second run)",
    )
    args = parser.parse_args(argv)
    checkouts = [checkout.resolve() for checkout in args.checkouts]
    if len(checkouts) < 2:
        parser.error("name at least two checkouts")
    for checkout in checkouts:
        if not (checkout / "receiver" / "__init__.py").is_file():
            parser.error(f"{checkout} is not a receiver checkout (no receiver/__init__.py)")
    with tempfile.TemporaryDirectory(prefix="receiver-ab-") as tmp:
        folder = Path(tmp)
        templates: list[Path | None] = [None] * len(checkouts)
        if args.database is not None:
            templates = [args.database.resolve()] * len(checkouts)
        elif args.prefill:
            templates = [*prefill(checkouts, folder, args.prefill)]
        return alternate(checkouts, folder, templates, args)


def labels(checkouts: list[Path]) -> list[str]:
    """The checkouts' folder names, numbered when two are alike."""
    names = [checkout.name for checkout in checkouts]
    if len(set(names)) < len(names):
        return [f"{name}#{index + 1}" for index, name in enumerate(names)]
    return names


def prefill(checkouts: list[Path], folder: Path, count: int) -> list[Path]:
    """Per checkout, a closed database holding ``count`` distinct callbacks (the same bodies
    for every checkout, none of them among the measured runs' bodies)."""
    bodies = folder / "prefill.txt"
    generate_bodies(bodies, count + SPARE, "prefill")
    templates = []
    for index, checkout in enumerate(checkouts):
        served = folder / f"prefill-{index}"
        database = served / "receiver.db"
        started = time.monotonic()
        with receiver(served, "granian", checkout=checkout) as target:
            sent = rows = 0
            # wrk may stop with a callback unanswered: topped up until the count is stored.
            while rows < count and sent < count + SPARE:
                sent += send_count(target, bodies, count - rows, 5000, offset=sent)
                rows, _ = stored(database)
        size = sum(f.stat().st_size for f in served.glob("receiver.db*")) / 2**20
        print(
            f"prefill {checkout.name} ({index + 1}): {rows} callbacks stored in "
            f"{time.monotonic() - started:.0f} s; the database {size:.0f} MiB",
            flush=True,
        )
        if rows < count:
            sys.exit(f"prefill {checkout}: only {rows} of {count} callbacks were stored")
        templates.append(database)
    bodies.unlink()
    return templates


def alternate(
    checkouts: list[Path], folder: Path, templates: list[Path | None], args: argparse.Namespace
) -> list[list[Run]]:
    """The rounds, in ``folder``. Every run starts on a fresh database (or a fresh copy of its
    checkout's template), so every run sends the same bodies; each run's database is removed
    once measured (a run at -c16 for 8 s stores ~50,000 callbacks, about 400 MB with its WAL)."""
    bodies = folder / "bodies.txt"
    made = args.seconds * RATE
    generate_bodies(bodies, made, "ab", args.custom_data)
    names = labels(checkouts)
    rounds: list[list[Run]] = []
    for n in range(args.rounds):
        order = list(range(len(checkouts)))
        if n % 2:
            order.reverse()
        runs: dict[int, Run] = {}
        for position, index in enumerate(order):
            # Each checkout's own code, served from it (see the module's docstring).
            served = folder / f"round{n}-{position}"
            checkout, database = checkouts[index], templates[index]
            with receiver(served, "granian", checkout=checkout, database=database) as target:
                warm_up(target, folder)
                waited = settle()
                run = measure(names[index], target, bodies, args.connections, args.seconds, waited)
            shutil.rmtree(served)
            runs[index] = run
            print(run.line(), flush=True)
            if run.requests > made:
                print(f"  {run.requests - made} bodies sent twice: raise RATE", flush=True)
        rounds.append([runs[index] for index in range(len(checkouts))])
        base, *others = rounds[-1]
        shown = ", ".join(
            f"{run.checkout}/{base.checkout} {run.rps / base.rps:.2f}" for run in others
        )
        print(f"round {n + 1}: {shown}", flush=True)
    summary(rounds)
    return rounds


def summary(rounds: list[list[Run]]) -> None:
    """Per checkout, the medians over the rounds; each against the first, round by round."""
    print()
    for column in zip(*rounds, strict=True):
        print(
            f"{column[0].checkout:>12}  median {statistics.median(r.rps for r in column):7.0f} "
            f"req/s  p99 {statistics.median(r.p99_ms for r in column):6.2f} ms  "
            f"read {statistics.median(r.read_kb for r in column):5.1f} KiB/callback  "
            f"RSS {max(r.rss_mb for r in column):5.1f} MB"
        )
    others = [run.others for runs in rounds for run in runs]
    print(
        f"the rest of the machine during the runs: {min(others):.2f}-{max(others):.2f} cores "
        f"(median {statistics.median(others):.2f})"
    )
    for index in range(1, len(rounds[0])):
        ratios = [runs[index].rps / runs[0].rps for runs in rounds]
        listed = " ".join(f"{ratio:.2f}" for ratio in ratios)
        name = f"{rounds[0][index].checkout}/{rounds[0][0].checkout}"
        print(f"{name} by round: {listed}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
