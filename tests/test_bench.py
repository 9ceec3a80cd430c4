"""The benchmark's inputs: every generated callback is distinct, correctly signed and a result."""

from __future__ import annotations

from pathlib import Path

from bench.bench import SECRET, generate_bodies, notify_latency
from receiver.callbacks import decode
from receiver.signatures import verify


def test_generated_callbacks_are_distinct_signed_results(tmp_path: Path) -> None:
    path = tmp_path / "bodies.txt"
    generate_bodies(path, 200, "t")
    lines = path.read_text().splitlines()
    pairs = [line.split(" ", 1) for line in lines]
    bodies = [body.encode() for _, body in pairs]
    assert len(set(bodies)) == 200
    assert all(verify(body.encode(), sig, (SECRET,)) for sig, body in pairs)
    assert all(decode(body).result is not None for body in bodies)
    assert all(b"\n" not in body for body in bodies)  # one line each, as the wrk script reads


def test_notify_latency_times_every_callback_through_a_real_service(tmp_path: Path) -> None:
    latency = notify_latency(tmp_path / "latency", 20)
    assert len(latency.accepted_ms) == len(latency.posted_ms) == 20
    # Same callbacks in the same order: posting came before the answer was read.
    assert all(p > a for p, a in zip(latency.posted_ms, latency.accepted_ms, strict=True))
    assert all(0 < p < 10_000 for p in latency.posted_ms)
