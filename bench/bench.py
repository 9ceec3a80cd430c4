"""receiver against adnanh/webhook on this machine, same signed bodies, one run. See README.

Loopback only, bounded in time: every server is started here on 127.0.0.1 and stopped at the end.
Run through ``bench/run``, which installs wrk, webhook and the Python packages first.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median

import httpx

from receiver.demo import seed_callback
from receiver.process import ServiceProcess, free_port
from receiver.signatures import sign

HERE = Path(__file__).resolve().parent
LUA = HERE / "callbacks.lua"
SECRET = "bench-webhook-secret"
HOOK_ID = "qualitymax"
CALLBACK_PATH = "/callbacks/qualitymax"
WEBHOOK = "adnanh/webhook"
MAX_RATE = 20_000  # callbacks a second no target here reaches: bodies loaded per wrk second


# ---------------------------------------------------------------------------------------------
# Bodies


def generate_bodies(
    path: Path, count: int, prefix: str, custom_data: dict[str, object] | None = None
) -> None:
    """``count`` distinct seed callbacks, one "<signature> <body>" a line; ``custom_data`` is
    added to each one's.

    Shaped like the partner's documented callback: no top-level ``job_id`` (real callbacks
    carry none); each is told apart only by its ``custom_data.deploy_id``.
    """
    seed = json.loads(seed_callback())
    seed.pop("job_id", None)
    seed["custom_data"].update(custom_data or {})
    with path.open("w") as out:
        for i in range(count):
            seed["custom_data"]["deploy_id"] = f"{prefix}-{i}"
            body = json.dumps(seed, separators=(",", ":")).encode()
            out.write(f"{sign(body, SECRET)} {body.decode()}\n")


# ---------------------------------------------------------------------------------------------
# Servers


@dataclass
class Target:
    name: str
    url: str
    pid: int
    stop: Callable[[], None]
    db: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    sys.exit(f"{url} did not come up:\n{log.read_text()[-2000:]}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def webhook(folder: Path) -> Iterator[Target]:
    """adnanh/webhook checking the same HMAC on the same header, running /bin/true."""
    hooks = [
        {
            "id": HOOK_ID,
            "execute-command": "/bin/true",
            "http-methods": ["POST"],
            "trigger-rule-mismatch-http-response-code": 401,
            "trigger-rule": {
                "match": {
                    "type": "payload-hmac-sha256",
                    "secret": SECRET,
                    "parameter": {"source": "header", "name": "X-QualityMax-Signature"},
                }
            },
        }
    ]
    (folder / "hooks.json").write_text(json.dumps(hooks))
    port = free_port()
    log = folder / "webhook.log"
    command = ["webhook", "-hooks", str(folder / "hooks.json"), "-ip", "127.0.0.1"]
    command += ["-port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, proc, log)
    try:
        yield Target(WEBHOOK, f"{url}/hooks/{HOOK_ID}", proc.pid, lambda: None)
    finally:
        stop_process(proc)


def receiver_env(folder: Path, store_url: str | None = None) -> dict[str, str]:
    return {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": "bench-token",
        "RECEIVER_DB": store_url or str(folder / "receiver.db"),
    }


@contextmanager
def receiver(
    folder: Path,
    server: str,
    config_text: str = "",
    checkout: Path | None = None,
    database: Path | None = None,
    store_url: str | None = None,
) -> Iterator[Target]:
    """``receiver serve`` (granian), or the same app under uvicorn for comparison.

    ``checkout``: serve that checkout's code, started from it (``python -m`` puts the working
    directory ahead of PYTHONPATH; bench/ab.py compares two checkouts so). ``database``: start
    on a copy of that (closed) database instead of a new one. ``store_url``: serve that store
    (``postgresql://…``; bench/stores.py) instead of a SQLite file in ``folder``.
    """
    folder.mkdir(parents=True)
    if database is not None:
        copy_database(database, folder / "receiver.db")
    config = folder / "receiver.toml"
    config.write_text(config_text)
    env = receiver_env(folder, store_url)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    if server == "granian":
        service = ServiceProcess(config, env, folder / "serve.log", cwd=checkout).start()
        assert service.proc is not None
        try:
            url = f"{service.url}{CALLBACK_PATH}"
            yield Target(f"receiver ({server})", url, service.proc.pid, service.kill)
        finally:
            service.stop()
        return
    port = free_port()
    log = folder / "serve.log"
    command = [sys.executable, "-m", "uvicorn", "--factory", "receiver.app:app_from_environment"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    command += ["--log-level", "warning"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command,
            env={**os.environ, **env, "RECEIVER_CONFIG": str(config)},
            cwd=checkout,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/health", proc, log)
    try:
        yield Target(f"receiver ({server})", f"{url}{CALLBACK_PATH}", proc.pid, lambda: None)
    finally:
        stop_process(proc)


def copy_database(source: Path, target: Path) -> None:
    """A copy of a closed SQLite database (its WAL too, if one was left), flushed to disk: the
    write-back of a few hundred MB must not land in the run measured next."""
    for suffix in ("", "-wal"):
        origin = source.with_name(source.name + suffix)
        if not origin.exists():
            continue
        copy = target.with_name(target.name + suffix)
        shutil.copyfile(origin, copy)
        with copy.open("rb+") as out:
            os.fsync(out.fileno())


# ---------------------------------------------------------------------------------------------
# Measuring


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (granian serves from a child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants."""
    total = 0
    for each in tree_pids(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def run_wrk(
    url: str, bodies: Path, *, connections: int, seconds: int, limit: int = 0, offset: int = 0
) -> dict[str, int]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(LUA), url]
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_LIMIT": str(limit)}
    env["BENCH_OFFSET"] = str(offset)
    env["BENCH_MAX"] = str(limit or seconds * MAX_RATE)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            figures: dict[str, int] = json.loads(line[len("BENCH ") :])
            return figures
    sys.exit(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")


def warm_up(target: Target, folder: Path) -> None:
    """A few hundred distinct callbacks first: imports, caches and connections settle."""
    bodies = folder / "warmup.txt"
    generate_bodies(bodies, 300, f"warmup-{target.pid}")
    run_wrk(target.url, bodies, connections=4, seconds=1, limit=300)


# Since the store's redesign each callback's digest is a row of its own, under the callback's
# id; before it, a column of ``callbacks`` (bench/ab.py measures both).
COUNT_DIGESTS = (
    "SELECT count(*), count(DISTINCT d.digest) FROM callbacks c "
    "LEFT JOIN callback_digests d ON d.id = c.id"
)
COUNT_DIGEST_COLUMN = "SELECT count(*), count(DISTINCT digest) FROM callbacks"


def stored(db: Path | None) -> tuple[int, int]:
    """(callbacks stored, distinct digests) in the receiver's database."""
    if db is None or not db.exists():
        return (0, 0)
    conn = sqlite3.connect(db)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        query = COUNT_DIGESTS if "callback_digests" in tables else COUNT_DIGEST_COLUMN
        rows, digests = conn.execute(query).fetchone()
    finally:
        conn.close()
    return int(rows), int(digests)


def check_stored(row: Row, db: Path) -> Row:
    """Every answered callback is in the database once (wrk may stop with a few unanswered)."""
    rows, digests = stored(db)
    answered = row.requests - row.non2xx
    if rows != digests:
        row.note = f"{rows - digests} stored twice!"
    elif rows < answered:
        row.note = f"{answered - rows} answered but not stored!"
    else:
        row.note = f"{rows} stored, each once"
    return row


@dataclass
class Row:
    target: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    rss_mb: float | None
    requests: int = 0
    note: str = ""


def measure(target: Target, bodies: Path, connections: int, seconds: int, offset: int = 0) -> Row:
    figures = run_wrk(target.url, bodies, connections=connections, seconds=seconds, offset=offset)
    rps = figures["requests"] / (figures["duration_us"] / 1e6)
    errors = sum(figures[k] for k in ("connect", "read", "write", "timeout"))
    note = ""
    if figures["requests"] > figures["bodies"]:  # the lines loaded after the offset
        note = f"bodies reused: raise --bodies above {figures['requests']}"
    is_receiver = target.name.startswith("receiver")
    return Row(
        target=target.name,
        connections=connections,
        rps=rps,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        non2xx=figures["non2xx"],
        errors=errors,
        rss_mb=tree_rss_mb(target.pid) if is_receiver else None,
        requests=figures["requests"],
        note=note,
    )


# ---------------------------------------------------------------------------------------------
# Ingestion while a delivery backlog drains (the worker must not starve the endpoint)

BACKLOG = 10_000
SINK_DELAY = 0.1  # seconds the slow sink takes to answer each notification


class SlowSink:
    """A local HTTP endpoint for ``json://`` notifications that answers 200 after a delay.

    With ``record``, it keeps when each notification's body had been read, and the body.
    """

    def __init__(self, delay: float, record: bool = False) -> None:
        self.count = 0
        self.arrivals: list[tuple[float, bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if record:
                    sink.arrivals.append((time.time(), body))
                time.sleep(delay)
                sink.count += 1
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def deliveries(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall()
    finally:
        conn.close()
    return {state: count for state, count in rows}


def delivery_figures(folder: Path, bodies: Path, rounds: int, seconds: int) -> list[str]:
    """Ingestion at -c16 while 10,000 deliveries drain to a slow sink, against the same
    receiver with nothing pending, and against one with no route.

    The target's figure compares like with like: both have the same route to the same sink, so
    each new callback writes its delivery in both, and only the backlog differs. The one with
    nothing pending is a fresh receiver each round (a round's callbacks would leave it a backlog
    of its own). The one with no route shows what the route's outbox row costs. Each is measured
    while the others are paused (SIGSTOP) or stopped, in alternating order round by round.
    Callback -> sink latency is measured by bench/notify_latency.py (see README).
    """
    if importlib.util.find_spec("receiver.notify") is None:
        return ["skipped: the delivery worker (receiver.notify) is not in this build"]
    sink = SlowSink(SINK_DELAY)
    routes = f'[[routes]]\nname = "bench"\nnotify = ["{sink.url}"]\n'
    try:
        with (
            receiver(folder / "bare", "granian") as bare,
            receiver(folder / "backlog", "granian", routes) as busy,
        ):
            warm_up(bare, folder)
            send_count(busy, bodies, BACKLOG + 1000, 3000)
            backlog = BacklogRounds(folder, bodies, seconds, routes, bare=bare, busy=busy)
            for n in range(rounds):
                if n % 2:
                    backlog.draining()
                backlog.references(n)
                if not n % 2:
                    backlog.draining()
            return backlog.figures()
    finally:
        sink.close()


class BacklogRounds:
    """The runs of ``delivery_figures``: the draining receiver and its two references."""

    def __init__(
        self, folder: Path, bodies: Path, seconds: int, routes: str, *, bare: Target, busy: Target
    ) -> None:
        self.folder, self.bodies, self.seconds, self.routes = folder, bodies, seconds, routes
        self.bare, self.busy = bare, busy
        self.db = folder / "backlog" / "receiver.db"
        self.before = deliveries(self.db)
        self.runs: dict[str, list[Row]] = {"busy": [], "idle": [], "bare": []}
        self.sent = {"busy": BACKLOG + 1100, "bare": 0}
        self.under_load = 0  # deliveries sent during the measured runs

    def references(self, n: int) -> None:
        """The receiver with no route, then a fresh one with the route; the draining one paused."""
        with paused(self.busy.pid):
            wait_until_quiet()
            self.runs["bare"].append(self._measure("bare", self.bare))
            self.runs["idle"].append(self._nothing_pending(self.folder / f"idle-{n}"))

    def draining(self) -> None:
        # No wait for a quiet machine here: its worker would drain at full pace meanwhile.
        # Intake flowing before the measured run: a worker woken from the pause would start 32
        # sends in the lull while wrk starts.
        flowing = run_wrk(
            self.busy.url,
            self.bodies,
            connections=16,
            seconds=1,
            limit=500,
            offset=self.sent["busy"],
        )
        self.sent["busy"] += flowing["requests"]
        sent_before = deliveries(self.db).get("sent", 0)
        self.runs["busy"].append(self._measure("busy", self.busy))
        self.under_load += deliveries(self.db).get("sent", 0) - sent_before

    def _nothing_pending(self, folder: Path) -> Row:
        """One run on a fresh receiver with the route, once its warm-up was delivered; its
        database is removed once measured (~400 MB, and nothing reads it again)."""
        with receiver(folder, "granian", self.routes) as idle:
            warm_up(idle, folder)
            wait_drained(folder / "receiver.db")
            wait_until_quiet()
            row = measure(idle, self.bodies, 16, self.seconds)
        shutil.rmtree(folder)
        return row

    def _measure(self, name: str, target: Target) -> Row:
        row = measure(target, self.bodies, 16, self.seconds, offset=self.sent[name])
        self.sent[name] += row.requests
        return row

    def figures(self) -> list[str]:
        rounds, busy = len(self.runs["busy"]), self.runs["busy"]
        drained = deliveries(self.db).get("sent", 0) - self.before.get("sent", 0)
        against_idle, against_bare = self._against("idle"), self._against("bare")
        per_second = self.under_load / (rounds * self.seconds)
        return [
            f"backlog: {self.before.get('pending', 0)} deliveries pending to a sink answering in "
            f"{SINK_DELAY * 1000:.0f} ms; {drained} delivered over the {rounds} rounds, "
            f"{self.under_load} of them during the measured runs ({per_second:.1f}/s)",
            f"ingestion while it drains: {median([r.rps for r in busy]):.0f} req/s (median of "
            f"{rounds} rounds), p99 up to {max(r.p99_ms for r in busy):.2f} ms, "
            f"non-2xx {sum(r.non2xx for r in busy)}",
            f"the same route with nothing pending: "
            f"{median([r.rps for r in self.runs['idle']]):.0f} req/s; "
            f"no route: {median([r.rps for r in self.runs['bare']]):.0f} req/s",
            f"against the same receiver with nothing pending, round by round: "
            f"{_percents(against_idle)}; median {median(against_idle) * 100:.0f} % "
            "(target >= 90 %)",
            f"against a receiver with no route (the route's own cost included): "
            f"{_percents(against_bare)}; median {median(against_bare) * 100:.0f} %",
        ]

    def _against(self, reference: str) -> list[float]:
        """The draining receiver's rate over ``reference``'s, round by round."""
        pairs = zip(self.runs["busy"], self.runs[reference], strict=True)
        return [busy.rps / other.rps for busy, other in pairs]


def wait_drained(db: Path, limit: float = 60.0) -> None:
    """Until no delivery is pending (at most ``limit`` seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if not deliveries(db).get("pending", 0):
            return
        time.sleep(0.2)
    sys.exit(f"deliveries still pending after {limit:.0f} s in {db}")


# ---------------------------------------------------------------------------------------------
# Callback accepted -> notification at a json:// sink


@dataclass
class Latency:
    accepted_ms: list[float]  # from the client reading the 200 to the sink reading the notification
    posted_ms: list[float]  # from just before the callback was sent: ingest included


def notify_latency(folder: Path, count: int) -> Latency:
    """``count`` callbacks one after the other to a receiver with one route to a local sink.

    "Accepted -> sink" can be negative: the worker is woken at the commit, before the answer
    has travelled back to the client.
    """
    sink = SlowSink(0.0, record=True)
    routes = f'[[routes]]\nname = "latency"\nnotify = ["{sink.url}"]\n'
    try:
        with receiver(folder, "granian", routes) as target:
            posted, accepted = _post_one_by_one(target.url, count)
            deadline = time.monotonic() + 120
            while len(sink.arrivals) < count and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        sink.close()
    arrived: dict[int, float] = {}
    for at, body in sink.arrivals:
        match = re.search(r"result #(\d+)", json.loads(body)["message"])
        if match is not None:
            arrived[int(match.group(1))] = at
    if len(arrived) < count:
        sys.exit(f"only {len(arrived)} of {count} notifications reached the sink in 120 s")
    return Latency(
        accepted_ms=[(arrived[r] - t) * 1000 for r, t in accepted.items()],
        posted_ms=[(arrived[r] - t) * 1000 for r, t in posted.items()],
    )


def _post_one_by_one(url: str, count: int) -> tuple[dict[int, float], dict[int, float]]:
    """(result id -> time posted, result id -> time the 200 was read), for ``count`` callbacks."""
    template = seed_callback().decode()
    posted: dict[int, float] = {}
    accepted: dict[int, float] = {}
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            body = template.replace('"abc-123"', f'"latency-{i}"').encode()
            headers = {"X-QualityMax-Signature": sign(body, SECRET)}
            sent = time.time()
            response = client.post(url, content=body, headers=headers)
            done = time.time()
            response.raise_for_status()
            result_id = response.json()["result_id"]
            posted[result_id], accepted[result_id] = sent, done
    return posted, accepted


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency_line(name: str, ms: list[float]) -> str:
    return (
        f"{name}: p50 {percentile(ms, 50):.2f} ms, p90 {percentile(ms, 90):.2f} ms, "
        f"p99 {percentile(ms, 99):.2f} ms, max {max(ms):.2f} ms"
    )


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` and its descendants for the block, SIGCONT after."""
    pids = tree_pids(pid)
    for each in pids:
        os.kill(each, signal.SIGSTOP)
    try:
        yield
    finally:
        for each in pids:
            os.kill(each, signal.SIGCONT)


def _percents(ratios: list[float]) -> str:
    return ", ".join(f"{r * 100:.0f} %" for r in ratios)


# ---------------------------------------------------------------------------------------------
# The run


def table(rows: list[Row]) -> str:
    head = f"{'target':<22} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    head += f"{'non-2xx':>8} {'sock err':>8} {'RSS MB':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        rss = f"{r.rss_mb:7.1f}" if r.rss_mb is not None else f"{'-':>7}"
        line = f"{r.target:<22} {r.connections:>5} {r.rps:>9.0f} {r.p50_ms:>8.2f} "
        line += f"{r.p99_ms:>8.2f} {r.non2xx:>8} {r.errors:>8} {rss}"
        if r.note:
            line += f"  ({r.note})"
        lines.append(line)
    return "\n".join(lines)


def send_count(target: Target, bodies: Path, count: int, rate: float, offset: int = 0) -> int:
    """``count`` callbacks at -c16, in rounds sized by ``rate`` (wrk waits out -d even stopped);
    how many were sent."""
    sent = 0
    while sent < count:
        seconds = min(60, max(2, math.ceil((count - sent) / max(rate, 500) * 1.2)))
        figures = run_wrk(
            target.url,
            bodies,
            connections=16,
            seconds=seconds,
            limit=count - sent,
            offset=offset + sent,
        )
        sent += figures["requests"]
    return sent


def rss_after(folder: Path, bodies: Path, count: int, rate: float) -> tuple[int, float]:
    """Send ``count`` callbacks, then read the receiver's RSS."""
    with receiver(folder / "rss", "granian") as target:
        send_count(target, bodies, count, rate)
        time.sleep(0.5)
        rss = tree_rss_mb(target.pid)
    rows, _ = stored(folder / "rss" / "receiver.db")
    return rows, rss


@dataclass
class Comparison:
    """Every target's rows at one concurrency, one row per round, in the order measured."""

    connections: int
    runs: dict[str, list[Row]]
    dbs: dict[str, Path]

    def combined(self) -> list[Row]:
        """Per target: the medians of the rounds' rate, p50 and p99; the sums."""
        rows = []
        for name, runs in self.runs.items():
            row = Row(
                target=name,
                connections=self.connections,
                rps=median([r.rps for r in runs]),
                p50_ms=median([r.p50_ms for r in runs]),
                p99_ms=median([r.p99_ms for r in runs]),
                non2xx=sum(r.non2xx for r in runs),
                errors=sum(r.errors for r in runs),
                rss_mb=runs[-1].rss_mb,
                requests=sum(r.requests for r in runs),
                note="; ".join(sorted({r.note for r in runs if r.note})),
            )
            db = self.dbs.get(name)
            rows.append(check_stored(row, db) if db is not None else row)
        return rows

    def ratios(self, name: str) -> list[float]:
        """``name`` against adnanh/webhook, round by round."""
        base = self.runs[WEBHOOK]
        return [r.rps / b.rps for r, b in zip(self.runs[name], base, strict=True)]


def compare(
    folder: Path, bodies: Path, connections: int, rounds: int, seconds: int, servers: list[str]
) -> Comparison:
    """adnanh/webhook and receiver started side by side and measured in alternation.

    The machine is shared: measuring one after the other let a neighbour's burst land on one
    side only. Rounds alternate the order, and the ratio is taken round by round.
    """
    with contextlib.ExitStack() as stack:
        targets = [stack.enter_context(webhook(folder))]
        dbs: dict[str, Path] = {}
        for server in servers:
            run_folder = folder / f"{server}-c{connections}"
            targets.append(stack.enter_context(receiver(run_folder, server)))
            dbs[targets[-1].name] = run_folder / "receiver.db"
        for target in targets:
            warm_up(target, folder)
        runs: dict[str, list[Row]] = {t.name: [] for t in targets}
        sent = dict.fromkeys(runs, 0)
        for n in range(rounds):
            for target in targets if n % 2 == 0 else targets[::-1]:
                wait_until_quiet()
                row = measure(target, bodies, connections, seconds, offset=sent[target.name])
                sent[target.name] += row.requests
                runs[target.name].append(row)
        wait_until_quiet()
    return Comparison(connections, runs, dbs)


QUIET_BUSY = 0.15  # the machine counts as quiet below this share of busy CPU


def wait_until_quiet(limit: float = 60.0) -> None:
    """Wait until the machine is nearly idle (at most ``limit`` seconds).

    adnanh/webhook answers before it runs its command (include-command-output-in-response is
    off), so after a run it goes on running the commands it queued, for seconds: measured
    right after it, receiver ran on what CPU those left.
    """
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if cpu_busy(0.5) < QUIET_BUSY:
            return


def cpu_busy(seconds: float) -> float:
    """The machine's share of busy CPU over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating runs per target (median reported)"
    )
    parser.add_argument("--bodies", type=int, default=250_000, help="distinct callbacks made")
    parser.add_argument("--connections", default="16,1", help="wrk -c values, comma-separated")
    parser.add_argument("--uvicorn", action="store_true", help="also the app under uvicorn")
    parser.add_argument("--rss-count", type=int, default=100_000, help="0 skips the RSS run")
    parser.add_argument(
        "--no-backlog", dest="backlog", action="store_false", help="skip the delivery backlog run"
    )
    parser.add_argument("--only-backlog", action="store_true", help="only the delivery backlog run")
    parser.add_argument(
        "--notify-results",
        type=int,
        default=1000,
        help="callbacks timed from accepted to their json:// notification (0 skips)",
    )
    args = parser.parse_args()
    for tool in ("wrk", "webhook"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; run bench/run, which installs it")

    with tempfile.TemporaryDirectory(prefix="receiver-bench-") as tmp:
        folder = Path(tmp)
        bodies = folder / "bodies.txt"
        started = time.monotonic()
        generate_bodies(bodies, max(args.bodies, args.rss_count + 1000), "bench")
        print(
            f"{args.bodies} signed callbacks like the seed ({len(seed_callback())} B) made in "
            f"{time.monotonic() - started:.1f}s; wrk -t1, {args.rounds} alternating rounds of "
            f"{args.seconds}s per target; {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.2f} before the run",
            flush=True,
        )
        if not args.only_backlog:
            servers = ["granian", "uvicorn"] if args.uvicorn else ["granian"]
            throughput(folder, bodies, args, servers)
        if args.rss_count and not args.only_backlog:
            count, rss = rss_after(folder, bodies, args.rss_count, 3000)
            print(f"receiver RSS after {count} callbacks stored: {rss:.1f} MB")
        if args.backlog:
            for line in delivery_figures(folder / "deliveries", bodies, args.rounds, args.seconds):
                print(f"deliveries: {line}", flush=True)
        if args.notify_results and not args.only_backlog:
            latency = notify_latency(folder / "latency", args.notify_results)
            print(
                f"notify: {args.notify_results} callbacks one after the other, each to a json:// "
                "sink; target p50 <= 50 ms from accepted"
            )
            print(f"notify: {latency_line('accepted -> sink', latency.accepted_ms)}")
            print(f"notify: {latency_line('posted -> sink', latency.posted_ms)}")


def throughput(folder: Path, bodies: Path, args: argparse.Namespace, servers: list[str]) -> None:
    comparisons = [
        compare(folder, bodies, int(c), args.rounds, args.seconds, servers)
        for c in args.connections.split(",")
    ]
    print()
    print(table([row for c in comparisons for row in c.combined()]))
    print()
    for comparison in comparisons:
        for name in comparison.runs:
            if name == WEBHOOK:
                continue
            ratios = comparison.ratios(name)
            rounds = zip(ratios, comparison.runs[name], comparison.runs[WEBHOOK], strict=True)
            detail = ", ".join(f"{r:.2f} = {a.rps:.0f}/{b.rps:.0f}" for r, a, b in rounds)
            worst = max(r.p99_ms for r in comparison.runs[name])
            print(
                f"ratio {name} / {WEBHOOK} at -c{comparison.connections}: "
                f"{median(ratios):.2f} (rounds: {detail}); worst round's p99 {worst:.2f} ms"
            )


if __name__ == "__main__":
    main()
