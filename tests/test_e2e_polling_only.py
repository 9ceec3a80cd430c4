"""A service that only polls (Qualigate's key, no QualityMax at all) starts without the webhook
secret; its callback route answers 503 naming the setting, counted in /metrics."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.config import ENV_SETTINGS
from receiver.process import ServiceProcess
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from tests.conftest import TOKEN, callback_body
from tests.sims import qualigate_sim

__all__ = ["qualigate_sim"]  # the fixture, used by name

DETAIL = (
    "QualityMax callbacks are not configured on this service: set QUALITYMAX_WEBHOOK_SECRET "
    "(or [qualitymax] webhook_secret) and restart"
)


@pytest.fixture
def polling_only(
    tmp_path: Path, write_config: Callable[[str], Path], qualigate_sim: Served
) -> Iterator[tuple[ServiceProcess, Path, dict[str, str]]]:
    config = write_config(f'[qualigate]\nbase_url = "{qualigate_sim.url}"\n')
    # Every QualityMax setting empty, whatever the shell running the tests exports.
    env = {s.name: "" for s in ENV_SETTINGS}
    env.update(
        QUALIGATE_API_KEY=gate_sim.API_KEY,
        RECEIVER_API_TOKEN=TOKEN,
        RECEIVER_DB=str(tmp_path / "receiver.db"),
    )
    process = ServiceProcess(config, env, tmp_path / "serve.log").start()
    yield process, config, env
    process.kill()


def test_the_callback_route_answers_503_naming_the_setting(
    polling_only: tuple[ServiceProcess, Path, dict[str, str]],
) -> None:
    service, _, _ = polling_only
    body = callback_body()
    with httpx.Client(base_url=service.url, timeout=5) as http:
        for path in ("/callbacks/qualitymax", "/callbacks/qualitymax/some-job-key"):
            answer = http.post(path, content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 503
            assert answer.json() == {"detail": DETAIL}
        assert http.get("/health").json() == {"status": "ok"}  # the rest of the service runs
        metrics = http.get("/metrics").text
    counted = re.search(
        r'^receiver_callbacks_total\{outcome="not_configured"\} (\S+)$', metrics, re.M
    )
    assert counted is not None and float(counted.group(1)) == 2.0


def test_check_config_passes_the_config_serve_started_with(
    polling_only: tuple[ServiceProcess, Path, dict[str, str]],
) -> None:
    _, config, env = polling_only
    result = CliRunner().invoke(main, ["check-config", "--config", str(config)], env=env)
    assert result.exit_code == 0, result.output
    assert gate_sim.API_KEY[:3] not in result.output
