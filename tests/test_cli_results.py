"""`receiver results` and `receiver tail`: the dashboard's companions for a terminal, reading the
service's database (a real SQLite file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from receiver.cli import main
from receiver.results import Result, TestCase
from receiver.store import results
from tests.store_helpers import opened


def result(status: str, branch: str, failed: int = 0) -> Result:
    tests = [
        TestCase(name=f"test {n}", status="failed" if n < failed else "passed") for n in range(3)
    ]
    return Result(
        provider="qualitymax",
        event="test_results",
        status=status,
        total=3,
        passed=3 - failed,
        failed=failed,
        custom_data={"branch": branch},
        tests=tests,
    )


def store(path: Path, *values: Result) -> None:
    with opened(path) as database:
        for value in values:
            database.write_sync(
                lambda tx, v=value: results.insert(tx, v, callback_id=None, job_id=None)  # type: ignore[misc]
            )


def invoke(db: Path, *args: str) -> tuple[int, str]:
    config = db.parent / "receiver.toml"
    config.write_text("")
    done = CliRunner().invoke(main, [*args, "--config", str(config)], env={"RECEIVER_DB": str(db)})
    return done.exit_code, done.output


def test_results_lists_newest_first_with_filters(tmp_path: Path) -> None:
    db = tmp_path / "receiver.db"
    store(db, result("passed", "main"), result("failed", "feat/a", 2), result("failed", "main", 1))
    code, shown = invoke(db, "results")
    assert code == 0
    lines = shown.splitlines()
    assert lines[0].split() == ["id", "status", "result", "branch", "provider", "stored"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"]
    assert "1 of 3 tests failed  main" in lines[1] and "3 of 3 tests passed" in lines[3]
    code, shown = invoke(db, "results", "--status", "failed", "--branch", "main")
    assert [line.split()[0] for line in shown.splitlines()[1:]] == ["3"]
    code, shown = invoke(db, "results", "--limit", "1", "--json")
    items = json.loads(shown)
    assert [(i["id"], i["status"], i["branch"]) for i in items] == [(3, "failed", "main")]
    code, shown = invoke(db, "results", "--branch", "nowhere")
    assert (code, shown) == (0, "no results\n")


def test_results_never_makes_a_database(tmp_path: Path) -> None:
    code, shown = invoke(tmp_path / "missing.db", "results")
    assert code == 1 and shown.startswith("Error: No database at ")
    assert not (tmp_path / "missing.db").exists()


def test_tail_prints_each_new_result_until_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "receiver.db"
    store(db, result("passed", "old"))  # stored before: not printed
    env = {**os.environ, "RECEIVER_DB": str(db), "RECEIVER_CONFIG": str(tmp_path / "r.toml")}
    (tmp_path / "r.toml").write_text("")
    tail = subprocess.Popen(
        [sys.executable, "-m", "receiver", "tail", "--interval", "0.05"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None and "following new results" in tail.stderr.readline()
        store(db, result("failed", "feat/live", 1))
        store(db, result("passed", "main"))
        assert tail.stdout is not None
        first, second = tail.stdout.readline(), tail.stdout.readline()
        assert first.split()[:2] == ["2", "failed"] and "feat/live" in first
        assert second.split()[:2] == ["3", "passed"]
        time.sleep(0.1)
        tail.send_signal(signal.SIGINT)
        assert tail.wait(10) == 0
    finally:
        if tail.poll() is None:
            tail.kill()
