"""Slow and idle clients against a real ``receiver serve`` on loopback (issue 18).

Opens connections that are slow in one of three ways, level by level:

- idle: connected, nothing sent;
- headers: half a request head sent, then nothing;
- body: a callback's head and ``{`` of a 100,000-byte body, then one more byte every second.

At each level it measures, while they are all open, ``GET /health`` (each on a new connection,
so it has to be accepted past the slow ones: latency, and how many answered within 1 s) and
signed callbacks (each on a new connection: how many were answered 200, and stored), the
service's memory, and how many slow connections the service closed. It prints one line a level,
then the largest level at which every /health answered within 1 s.

By default the deadlines are set long (300 s), so that the slow connections stay open and the
figures are about how many the service holds; ``--default-deadlines`` keeps 10 s and 15 s, and
every connection the service closes is opened again, as an attacker would (with ``--hold 20``,
each level lasts long enough for the deadlines to close them).

Usage (from the repository root):
    .venv/bin/python bench/slow_clients.py [--levels 1000,2000,5000] [--kind mix]
        [--max-connections N] [--default-deadlines] [--hold SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import selectors
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench import CALLBACK_PATH, SECRET, receiver, tree_rss_mb
from receiver.demo import seed_callback
from receiver.signatures import sign

KINDS = ("idle", "headers", "body")
FIRST_BYTES = {
    "idle": b"",
    "headers": b"POST /callbacks/qualitymax HTTP/1.1\r\nHost: bench\r\nContent-Le",
    # Long enough that a byte a second never ends it (under max_body_bytes, so not refused).
    "body": b"POST /callbacks/qualitymax HTTP/1.1\r\nHost: bench\r\n"
    b"Content-Length: 100000\r\n\r\n{",
}
HEALTH_PROBES = 20
CALLBACKS = 50
WITHIN = 1.0  # seconds: what "/health still answers" means here
GIVE_UP = 2.0  # seconds: a probe or callback not answered by then counts as not answered


class Crowd:
    """Slow connections to one port; a thread trickles the bodies and reopens what was closed."""

    def __init__(self, port: int, kinds: tuple[str, ...]) -> None:
        self.port = port
        self.kinds = kinds
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.closed_by_service = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._tend, daemon=True)
        self.thread.start()

    def __len__(self) -> int:
        return len(self.selector.get_map())

    def grow(self, count: int) -> None:
        for n in range(count):
            self._open(self.kinds[(len(self) + n) % len(self.kinds)])

    def _open(self, kind: str) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(FIRST_BYTES[kind])
        sock.setblocking(False)
        with self.lock:
            self.selector.register(sock, selectors.EVENT_READ, kind)

    def _tend(self) -> None:
        while not self.stopping.wait(1.0):
            with self.lock:
                keys = list(self.selector.get_map().values())
                ready = [key for key, _ in self.selector.select(0)]
            for key in keys:
                if key.data == "body":  # closed by the service: found readable below
                    with contextlib.suppress(OSError):
                        key.fileobj.send(b"a")  # type: ignore[union-attr]
            for key in ready:
                self._reopen(key)

    def _reopen(self, key: selectors.SelectorKey) -> None:
        """The service answered (408) or closed it: count it and open another of its kind."""
        with self.lock:
            self.selector.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
        self.closed_by_service += 1
        if not self.stopping.is_set():
            self._open(key.data)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


@dataclass
class Level:
    connections: int
    health_ms: list[float]  # inf for a probe that got no answer
    callbacks_taken: int
    rss_mb: float
    closed_by_service: int

    @property
    def health_within(self) -> int:
        return sum(ms <= WITHIN * 1000 for ms in self.health_ms)

    def line(self) -> str:
        answered = [ms for ms in self.health_ms if ms != float("inf")]
        p50 = f"{statistics.median(answered):7.1f}" if answered else "      -"
        worst = f"{max(answered):7.1f}" if answered else "      -"
        return (
            f"{self.connections:>6} open  /health within 1 s {self.health_within:>2}/"
            f"{len(self.health_ms)}  p50 {p50} ms  max {worst} ms  callbacks 200 "
            f"{self.callbacks_taken:>2}/{CALLBACKS}  rss {self.rss_mb:6.0f} MB  "
            f"closed by the service {self.closed_by_service}"
        )


def callback_bodies(count: int, prefix: str) -> list[bytes]:
    seed = json.loads(seed_callback())
    bodies = []
    for i in range(count):
        seed["job_id"] = seed["custom_data"]["deploy_id"] = f"{prefix}-{i}"
        bodies.append(json.dumps(seed, separators=(",", ":")).encode())
    return bodies


def probe_health(port: int) -> list[float]:
    """Milliseconds from connecting to the whole answer, each on a new connection (a plain
    socket: an HTTP client's own set-up would be most of the figure); inf: none by GIVE_UP."""
    timings = []
    for _ in range(HEALTH_PROBES):
        started = time.perf_counter()
        timings.append((time.perf_counter() - started) * 1000 if _health_ok(port) else float("inf"))
    return timings


def _health_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.1 200 ")


def send_callbacks(url: str, bodies: list[bytes]) -> list[bytes]:
    taken = []
    fresh = httpx.Limits(max_keepalive_connections=0)  # each callback on a new connection
    with httpx.Client(limits=fresh, timeout=GIVE_UP) as client:
        for body in bodies:
            headers = {"X-QualityMax-Signature": sign(body, SECRET)}
            try:
                if client.post(url, content=body, headers=headers).status_code == 200:
                    taken.append(body)
            except httpx.TransportError:
                pass
    return taken


def stored(db: Path, bodies: list[bytes]) -> int:
    digests = {hashlib.sha256(body).digest() for body in bodies}
    with sqlite3.connect(db) as conn:
        found = {bytes(row[0]) for row in conn.execute("SELECT digest FROM callback_digests")}
    return len(digests & found)


def raise_own_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        sys.exit(f"needs {wanted} open files; the hard limit is {hard} (ulimit -Hn)")


def config_text(args: argparse.Namespace) -> str:
    lines = ["[server]"]
    if not args.default_deadlines:
        lines += ["header_timeout_seconds = 300", "body_timeout_seconds = 300"]
    if args.max_connections:
        lines.append(f"max_connections = {args.max_connections}")
    return "\n".join(lines) + "\n"


@contextmanager
def crowd_of(port: int, kinds: tuple[str, ...]) -> Iterator[Crowd]:
    crowd = Crowd(port, kinds)
    try:
        yield crowd
    finally:
        crowd.close()


def run(args: argparse.Namespace, folder: Path) -> list[Level]:
    levels = sorted(int(n) for n in args.levels.split(","))
    raise_own_file_limit(levels[-1] + 256)
    kinds = KINDS if args.kind == "mix" else (args.kind,)
    results = []
    with receiver(folder / "served", "granian", config_text(args)) as target:
        base = target.url.removesuffix(CALLBACK_PATH)
        print((folder / "served" / "serve.log").read_text().splitlines()[0], flush=True)
        port = int(base.rsplit(":", 1)[1])
        with crowd_of(port, kinds) as crowd:
            for n, level in enumerate([0, *levels]):
                crowd.grow(level - len(crowd))
                time.sleep(args.hold)  # let the service take them all in
                bodies = callback_bodies(CALLBACKS, f"slow-{n}")
                health = probe_health(port)
                taken = send_callbacks(target.url, bodies)
                result = Level(
                    connections=len(crowd),
                    health_ms=health,
                    callbacks_taken=stored(folder / "served" / "receiver.db", taken),
                    rss_mb=tree_rss_mb(target.pid),
                    closed_by_service=crowd.closed_by_service,
                )
                print(result.line(), flush=True)
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> list[Level]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels", default="1000,2000,5000", help="open connections, ascending (0 comes first)"
    )
    parser.add_argument("--kind", choices=[*KINDS, "mix"], default="mix")
    parser.add_argument("--max-connections", type=int, default=0, help="[server] max_connections")
    parser.add_argument("--default-deadlines", action="store_true")
    parser.add_argument(
        "--hold", type=float, default=2.0, help="seconds at each level before measuring"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="receiver-slow-") as tmp:
        results = run(args, Path(tmp))
    held = [r.connections for r in results if r.health_within == len(r.health_ms)]
    print(f"largest level with every /health within 1 s: {max(held) if held else 'none'}")
    return results


if __name__ == "__main__":
    main()
