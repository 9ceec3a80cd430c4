"""The database's growth per 1,000 callbacks, and its size after 100,000 before and after a purge.

In process, on a real SQLite file: callbacks shaped like the partner's document (the seed
callback, each with its own deploy id and no top-level job_id, as real callbacks come), taken by
the real intake with one route, so each also writes its outbox row. Then everything is backdated
past ``keep_days`` and purged as the service would, and the file is measured again (its
checkpointed size: the WAL folded in). Run: ``.venv/bin/python -m bench.retention [--count N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from receiver.callbacks import CallbackIntake
from receiver.config import RetentionSettings, Route
from receiver.demo import seed_callback
from receiver.record import Recorder
from receiver.retention import cutoffs, purge
from receiver.routing import CompiledRoute, Router, parse_target
from receiver.signatures import sign
from receiver.store import open_store

SECRET = "bench-secret"
OLD = "2026-06-01T00:00:00.000000Z"  # past keep_days (90), within keep_digest_days (400)


def bodies(count: int) -> list[bytes]:
    seed = json.loads(seed_callback())
    seed.pop("job_id", None)
    found = []
    for n in range(count):
        seed["custom_data"]["deploy_id"] = f"deploy-{n}"
        found.append(json.dumps(seed, separators=(",", ":")).encode())
    return found


def checkpointed_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return os.path.getsize(path)


async def take(intake: CallbackIntake, batch: list[bytes]) -> None:
    await asyncio.gather(
        *(
            intake.take(
                job_key=None,
                headers={"x-qualitymax-signature": sign(body, SECRET)},
                body=body,
                received_at="now",
            )
            for body in batch
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "retention.db"
        database = open_store(str(path))
        route = Route(name="chat", notify=["json://127.0.0.1:9/hook"])
        router = Router(
            [CompiledRoute(route=route, targets=(parse_target(route.notify[0], "chat"),))]
        )
        intake = CallbackIntake(database, (SECRET,), Recorder(router))
        all_bodies = bodies(args.count)
        started = time.perf_counter()

        async def fill() -> None:
            for start in range(0, len(all_bodies), 256):
                await take(intake, all_bodies[start : start + 256])

        asyncio.run(fill())
        filled = time.perf_counter() - started
        full = checkpointed_size(path)
        body_bytes = sum(len(b) for b in all_bodies) / len(all_bodies)
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("UPDATE results SET created_at = ?", [OLD])
            conn.execute("UPDATE jobs SET created_at = ?", [OLD])
            conn.execute("UPDATE callbacks SET received_at = ?", [OLD])
            conn.execute("UPDATE callback_digests SET received_at = ?", [OLD])
            conn.execute("UPDATE deliveries SET state = 'sent'")
        conn.close()
        settings = RetentionSettings(keep_days=90, keep_digest_days=400)
        started = time.perf_counter()
        purged = asyncio.run(purge(database, cutoffs(settings), pause=0))
        took = time.perf_counter() - started
        after = checkpointed_size(path)
        database.close()
    mib = 1024 * 1024
    print(f"callbacks: {args.count:,} (body {body_bytes:.0f} bytes, one route) in {filled:.1f} s")
    print(f"database: {full / mib:.1f} MiB, {full / args.count * 1000 / mib:.2f} MiB per 1,000")
    print(
        f"purged {purged.results:,} results, {purged.callbacks:,} callbacks in {took:.1f} s; "
        f"digests kept: {after / mib:.1f} MiB ({after / args.count:.0f} bytes a callback)"
    )


if __name__ == "__main__":
    main()
