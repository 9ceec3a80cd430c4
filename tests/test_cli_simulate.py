"""`receiver simulate --provider ...`: the simulators as a user starts them."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from click.testing import CliRunner

from receiver.cli import main
from receiver.process import free_port
from receiver.simulator import qualgent, qualigate


def test_help_names_the_providers() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    assert "qualitymax|qualigate|qualgent" in result.output
    assert "Example:" in result.output


def test_an_unknown_provider_is_refused() -> None:
    result = CliRunner().invoke(main, ["simulate", "--provider", "nope"])
    assert result.exit_code == 2 and "'nope' is not one of" in result.output


def serve_and_ask(provider: str, path: str, headers: dict[str, str]) -> httpx.Response:
    port = free_port()
    command = [sys.executable, "-m", "receiver", "simulate", "--provider", provider]
    proc = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers)
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the simulator did not answer")
    finally:
        proc.terminate()
        proc.wait(10)


def test_qualigate_simulator_serves() -> None:
    answer = serve_and_ask(
        "qualigate",
        f"/api/v1/ci-config?project_id={qualigate.PROJECT}",
        {"Authorization": f"Bearer {qualigate.API_KEY}"},
    )
    assert answer.json()["project_name"] == "E-commerce Site"


def test_qualgent_simulator_serves() -> None:
    answer = serve_and_ask("qualgent", "/v1/jobs/list", {"X-Api-Key": qualgent.API_KEY})
    assert answer.json() == {"test_runs": []}
    assert answer.headers["X-RateLimit-Limit"] == "10"
