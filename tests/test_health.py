"""/health and start-up against a store that cannot write: a real read-only file system and a
real full disk (a tmpfs of a few hundred KiB mounted for the test), through `receiver serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from receiver.process import ServiceProcess, StartError
from tests.conftest import callback_body, signed


def _mount(where: Path, options: str) -> bool:
    command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)]
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``tmpfs("512k")`` mounts a file system of that size under tmp_path (root only)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        if not _mount(where, f"size={size}"):
            pytest.skip("mounting a small tmpfs needs root (CI and the dev machines have it)")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def serve_command(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "receiver", "serve", "--port", "1", "--config", str(config)]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)


def test_serve_refuses_a_database_on_a_read_only_file_system(
    tmpfs: Callable[[str], Path], write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    disk = tmpfs("4m")
    db = disk / "receiver.db"
    env = {**env, "RECEIVER_DB": str(db)}
    first = ServiceProcess(write_config(""), env, disk.parent / "serve.log").start()
    first.stop()
    remount_read_only(disk)
    refused = serve_command(write_config(""), env)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(db) in line and "writable" in line


def test_health_says_503_with_the_reason_while_the_disk_is_full_and_recovers(
    tmpfs: Callable[[str], Path], write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    disk = tmpfs("1m")
    env = {**env, "RECEIVER_DB": str(disk / "receiver.db")}
    config = write_config("[server]\nmax_body_bytes = 1048576\n")
    service = ServiceProcess(config, env, disk.parent / "serve.log").start()
    try:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.get("/health").json() == {"status": "ok"}
            answers = []
            for n in range(40):  # ~100 KB each until the file system is full
                body = callback_body(workflow_summary=f"{n} " + "x" * 100_000)
                answer = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
                answers.append(answer.status_code)
                if answer.status_code != 200:
                    break
            assert answers[-1] == 503, answers
            assert "full" in answer.json()["detail"]
            sick = client.get("/health")
            assert sick.status_code == 503 and "full" in sick.json()["detail"]
            # Room again: the next callback is stored, and /health says so.
            subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
            body = callback_body(workflow_summary="after")
            assert (
                client.post("/callbacks/qualitymax", content=body, headers=signed(body)).status_code
                == 200
            )
            assert client.get("/health").json() == {"status": "ok"}
    finally:
        service.kill()


def test_start_up_failure_says_why(
    tmp_path: Path, write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    """A database path under a file (not a folder) stops start-up with one line."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**env, "RECEIVER_DB": str(blocker / "receiver.db")}
    with pytest.raises(StartError, match="not a folder"):
        ServiceProcess(write_config(""), env, tmp_path / "serve.log").start(timeout=20)
