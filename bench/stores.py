"""Ingest at -c16 of one SQLite receiver, one PostgreSQL receiver, two PostgreSQL receivers.

The two PostgreSQL receivers sit behind HAProxy, as fly.io's proxy spreads requests over two
machines.

    bench/run stores [--rounds 3] [--seconds 8] [--connections 16] [--postgres URL]

Each run starts on a fresh database (a new SQLite file; a new PostgreSQL database, created on the
server at ``--postgres`` and dropped after the run), starts the receivers (``receiver serve``,
granian) and, for two, HAProxy in front of them (``balance roundrobin``: every request goes to
the next receiver; one thread). It warms them up, waits for a quiet machine, then drives them
with wrk (``bench/callbacks.lua``, distinct signed callbacks shaped like the partner's, -t1).
After the run the receivers are stopped (they finish what is in flight) and the database is
checked: every callback answered 200 is stored exactly once (no digest twice, no answered
callback missing, and no more stored than answered plus the requests wrk left in flight).

Rounds alternate the order of the setups, as bench/ab.py does. Each run prints the served
processes' CPU per callback (the receivers'; PostgreSQL's: the backends of the run's database
and the server's WAL writer, checkpointer and background writer; HAProxy's) and how many cores
the rest of the machine kept busy meanwhile (other users', which this 2-core machine shares).
Needs wrk, HAProxy and a PostgreSQL server (``bench/run stores`` installs the first two).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ab import TICKS, children_ticks, machine_ticks, settle, ticks
from bench.bench import (
    COUNT_DIGESTS,
    Target,
    generate_bodies,
    receiver,
    run_wrk,
    stop_process,
    stored,
    tree_pids,
    wait_until_up,
    warm_up,
)
from receiver.process import free_port

ADMIN_URL = os.environ.get(
    "RECEIVER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RATE = 10_000  # callbacks a second that no setup reaches here: bodies made per second of run
# PostgreSQL's own processes that work for whoever writes, counted as the run's.
PG_HELPERS = ("walwriter", "checkpointer", "background writer")


@dataclass(frozen=True)
class Setup:
    store: str  # "sqlite" or "postgresql"
    instances: int

    @property
    def name(self) -> str:
        return f"{self.store} x{self.instances}"


SETUPS = (Setup("sqlite", 1), Setup("postgresql", 1), Setup("postgresql", 2))


@dataclass
class Run:
    setup: Setup
    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int  # wrk's socket errors: connect, read, write, timeout
    receiver_us: float  # CPU of the receivers (every process and thread), per callback
    postgres_us: float  # CPU of the database's backends and PostgreSQL's writers, per callback
    balancer_us: float  # HAProxy's CPU per callback
    others: float  # cores the rest of the machine kept busy during the run
    waited_s: float  # how long the run waited for a quiet machine
    stored: int  # callbacks the run stored (after the warm-up)
    once: bool  # every answered callback stored, none twice
    check: str
    database: str = ""  # the PostgreSQL database's name (dropped after the run), or the file

    def line(self) -> str:
        return (
            f"{self.setup.name:>13}  {self.rps:6.0f} req/s  p50 {self.p50_ms:6.2f} ms  "
            f"p99 {self.p99_ms:6.2f} ms  non-2xx {self.non2xx}  cpu/callback: receivers "
            f"{self.receiver_us:4.0f} us, postgres {self.postgres_us:4.0f} us, haproxy "
            f"{self.balancer_us:3.0f} us  others {self.others:4.2f} cores (waited "
            f"{self.waited_s:2.0f} s)  {self.check}"
        )


# ---------------------------------------------------------------------------------------------
# Stores


def pg_connect(url: str) -> Any:
    import psycopg  # only where PostgreSQL is measured

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def database_url(admin: str, name: str) -> str:
    return admin.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def fresh_store(setup: Setup, folder: Path, admin: str) -> Iterator[str]:
    """A new, empty database for one run: its URL (a path for SQLite)."""
    if setup.store == "sqlite":
        yield str(folder / "receiver.db")
        return
    name = f"receiver_bench_{uuid.uuid4().hex[:10]}"
    with pg_connect(admin) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield database_url(admin, name)
    finally:
        with pg_connect(admin) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def count_stored(url: str) -> tuple[int, int]:
    """(callbacks stored, distinct digests among them)."""
    if not url.startswith("postgresql://"):
        return stored(Path(url))
    with pg_connect(url) as conn:
        rows, digests = conn.execute(COUNT_DIGESTS).fetchone()
    return int(rows), int(digests)


def count_settled(url: str) -> int:
    """Callbacks stored, once the count stops moving: wrk stops the warm-up with a few requests
    still in flight, which are stored after it exits (they are not the run's)."""
    count, _ = count_stored(url)
    while True:
        time.sleep(0.2)
        again, _ = count_stored(url)
        if again == count:
            return count
        count = again


def postgres_pids(admin: str, url: str | None) -> list[int]:
    """The backends of ``url``'s database and PostgreSQL's writers (a local server's pids)."""
    if url is None or not url.startswith("postgresql://"):
        return []
    name = url.rsplit("/", 1)[1]
    query = "SELECT pid FROM pg_stat_activity WHERE datname = %s OR backend_type = ANY(%s)"
    with pg_connect(admin) as conn:
        return [pid for (pid,) in conn.execute(query, [name, list(PG_HELPERS)]).fetchall()]


# ---------------------------------------------------------------------------------------------
# Serving


def haproxy_path() -> str | None:
    """Debian installs it in /usr/sbin, which a user's PATH may lack."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


HAPROXY_CONFIG = """\
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend callbacks
    bind 127.0.0.1:{port}
    default_backend receivers
backend receivers
    balance roundrobin
{servers}
"""


@contextlib.contextmanager
def balancer(folder: Path, ports: list[int]) -> Iterator[tuple[str, int]]:
    """HAProxy on a free port in front of ``ports``: (its URL, its pid)."""
    command = haproxy_path()
    if command is None:
        sys.exit("haproxy is not installed; run bench/run stores, which installs it")
    port = free_port()
    servers = "\n".join(f"    server r{n} 127.0.0.1:{p}" for n, p in enumerate(ports))
    config = folder / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
    log = folder / "haproxy.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [command, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", proc, log)
        yield url, proc.pid
    finally:
        stop_process(proc)


@dataclass
class Served:
    target: Target  # where wrk sends: the one receiver, or the balancer
    receivers: list[int]  # their pids
    balancer: int | None


@contextlib.contextmanager
def serve(setup: Setup, folder: Path, url: str) -> Iterator[Served]:
    """The setup's receivers on ``url`` (and HAProxy in front of two); stopped at the end."""
    with contextlib.ExitStack() as stack:
        targets = [
            stack.enter_context(receiver(folder / f"r{n}", "granian", store_url=url))
            for n in range(setup.instances)
        ]
        pids = [target.pid for target in targets]
        if setup.instances == 1:
            yield Served(targets[0], pids, None)
            return
        ports = [int(target.url.split(":")[2].split("/")[0]) for target in targets]
        front, pid = stack.enter_context(balancer(folder, ports))
        path = "/" + targets[0].url.split("/", 3)[3]
        target = Target(f"haproxy x{setup.instances}", f"{front}{path}", pid, lambda: None)
        yield Served(target, pids, pid)


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Sample:
    receivers: int
    postgres: dict[int, int]
    balancer: int
    machine: tuple[int, int]
    wrk: float

    @classmethod
    def take(cls, served: Served, admin: str, url: str) -> Sample:
        return cls(
            receivers=sum(_ticks(p) for r in served.receivers for p in tree_pids(r)),
            postgres={pid: _ticks(pid) for pid in postgres_pids(admin, url)},
            balancer=_ticks(served.balancer) if served.balancer else 0,
            machine=machine_ticks(),
            wrk=children_ticks(),
        )


def _ticks(pid: int) -> int:
    try:
        return ticks(f"/proc/{pid}/stat")
    except OSError:  # gone meanwhile
        return 0


def postgres_delta(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks the PostgreSQL processes spent between the samples (one that started meanwhile,
    a pool's new connection, from its start)."""
    return sum(spent - before.get(pid, 0) for pid, spent in after.items())


def measure(setup: Setup, folder: Path, bodies: Path, args: argparse.Namespace, admin: str) -> Run:
    with fresh_store(setup, folder, admin) as url:
        with serve(setup, folder, url) as served:
            warm_up(served.target, folder)
            waited = settle(args.quiet_wait)
            stored_before = count_settled(url)
            before = Sample.take(served, admin, url)
            figures = run_wrk(
                served.target.url, bodies, connections=args.connections, seconds=args.seconds
            )
            after = Sample.take(served, admin, url)
        # The receivers stopped: what was in flight when wrk stopped is committed or not.
        rows, digests = count_stored(url)
    count = max(1, figures["requests"])
    per_callback = 1e6 / TICKS / count
    pg = postgres_delta(before.postgres, after.postgres)
    ours: float = after.receivers - before.receivers + pg + after.balancer - before.balancer
    ours += after.wrk - before.wrk
    busy = after.machine[0] - before.machine[0]
    elapsed = (after.machine[1] - before.machine[1]) / (os.cpu_count() or 1)
    answered = figures["requests"] - figures["non2xx"]
    in_flight = args.connections + sum(figures[k] for k in ("read", "write", "timeout"))
    once, check = stored_once(rows - stored_before, rows - digests, answered, in_flight)
    return Run(
        setup=setup,
        rps=figures["requests"] / (figures["duration_us"] / 1e6),
        requests=figures["requests"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        non2xx=figures["non2xx"],
        errors=sum(figures[k] for k in ("connect", "read", "write", "timeout")),
        receiver_us=(after.receivers - before.receivers) * per_callback,
        postgres_us=pg * per_callback,
        balancer_us=(after.balancer - before.balancer) * per_callback,
        others=max(0.0, busy - ours) / max(1, elapsed),
        waited_s=waited,
        stored=rows - stored_before,
        once=once,
        check=check,
        database=url.rsplit("/", 1)[1],
    )


def stored_once(new: int, twice: int, answered: int, in_flight: int) -> tuple[bool, str]:
    """Every answered callback is stored once: none twice, none missing, and no more stored
    than answered plus what wrk left unanswered when it stopped."""
    if twice:
        return False, f"{twice} stored twice!"
    if new < answered:
        return False, f"{answered - new} answered 200 but not stored!"
    if new > answered + in_flight:
        return False, f"{new - answered} stored but never answered (at most {in_flight})!"
    return True, f"{answered} answered, {new} stored, each once"


# ---------------------------------------------------------------------------------------------
# The run


def table(rows: list[tuple[str, Run]], label: str) -> str:
    """One line per (tag, run): the tag is the round's number, or empty."""
    head = f"{label:>6}  {'store':<11} {'instances':>9} {'req/s':>7} {'p50 ms':>7} "
    head += f"{'p99 ms':>7} {'non-2xx':>7}  stored once"
    lines = [head, "-" * (len(head) + 20)]
    for tag, run in rows:
        line = f"{tag:>6}  {run.setup.store:<11} {run.setup.instances:>9} {run.rps:>7.0f} "
        line += f"{run.p50_ms:>7.2f} {run.p99_ms:>7.2f} {run.non2xx:>7}  "
        lines.append(line + ("yes" if run.once else f"NO: {run.check}"))
    return "\n".join(lines)


def medians(rounds: list[list[Run]]) -> list[Run]:
    """Per setup: the medians of the rounds' rate, p50 and p99; non-2xx summed; once if every
    round's was."""
    combined = []
    for column in zip(*rounds, strict=True):
        first = column[0]
        combined.append(
            Run(
                setup=first.setup,
                rps=statistics.median(r.rps for r in column),
                requests=sum(r.requests for r in column),
                p50_ms=statistics.median(r.p50_ms for r in column),
                p99_ms=statistics.median(r.p99_ms for r in column),
                non2xx=sum(r.non2xx for r in column),
                errors=sum(r.errors for r in column),
                receiver_us=statistics.median(r.receiver_us for r in column),
                postgres_us=statistics.median(r.postgres_us for r in column),
                balancer_us=statistics.median(r.balancer_us for r in column),
                others=statistics.median(r.others for r in column),
                waited_s=max(r.waited_s for r in column),
                stored=sum(r.stored for r in column),
                once=all(r.once for r in column),
                check="; ".join(r.check for r in column if not r.once),
            )
        )
    return combined


def main(argv: list[str] | None = None) -> list[list[Run]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setup (alternating)")
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument(
        "--postgres",
        default=ADMIN_URL,
        help="a PostgreSQL server's URL, whose user may create databases (each run makes its "
        "own and drops it); default RECEIVER_BENCH_POSTGRES or the local server",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="at most this many seconds to wait for a quiet machine before each run",
    )
    args = parser.parse_args(argv)
    refuse_without_tools(args.postgres)
    rounds: list[list[Run]] = []
    with tempfile.TemporaryDirectory(prefix="receiver-stores-") as tmp:
        folder = Path(tmp)
        bodies = folder / "bodies.txt"
        generate_bodies(bodies, args.seconds * RATE, "stores")
        print(
            f"wrk -t1 -c{args.connections}, {args.rounds} alternating rounds of {args.seconds} s "
            f"per setup, each on a fresh database; {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.2f} before the run",
            flush=True,
        )
        for n in range(args.rounds):
            order = list(SETUPS) if n % 2 == 0 else list(reversed(SETUPS))
            runs: dict[Setup, Run] = {}
            for position, setup in enumerate(order):
                served = folder / f"round{n}-{position}"
                runs[setup] = measure(setup, served, bodies, args, args.postgres)
                shutil.rmtree(served, ignore_errors=True)
                print(f"round {n + 1}: {runs[setup].line()}", flush=True)
            rounds.append([runs[setup] for setup in SETUPS])
    summary(rounds)
    return rounds


def summary(rounds: list[list[Run]]) -> None:
    print()
    every = [(str(n + 1), run) for n, runs in enumerate(rounds) for run in runs]
    print(table(every, "round"))
    print()
    print(table([("", run) for run in medians(rounds)], "median"))
    print()
    for index, setup in enumerate(SETUPS[1:], start=1):
        ratios = [runs[index].rps / runs[0].rps for runs in rounds]
        listed = " ".join(f"{ratio:.2f}" for ratio in ratios)
        print(f"{setup.name} / {SETUPS[0].name} by round: {listed}")
    ratios = [runs[2].rps / runs[1].rps for runs in rounds]
    print(f"{SETUPS[2].name} / {SETUPS[1].name} by round: {' '.join(f'{r:.2f}' for r in ratios)}")
    others = [run.others for runs in rounds for run in runs]
    print(
        f"the rest of the machine during the runs: {min(others):.2f}-{max(others):.2f} cores "
        f"(median {statistics.median(others):.2f})"
    )


def refuse_without_tools(admin: str) -> None:
    """Stop with what to do when wrk, HAProxy or the PostgreSQL server is missing."""
    for tool, found in (("wrk", shutil.which("wrk")), ("haproxy", haproxy_path())):
        if found is None:
            sys.exit(f"{tool} is not installed; run bench/run stores, which installs it")
    try:
        pg_connect(admin).close()
    except Exception as exc:  # psycopg.OperationalError, without importing it here
        sys.exit(f"no PostgreSQL server answers at {admin} ({exc}); pass --postgres URL")


if __name__ == "__main__":
    main()
