"""``receiver qualitymax|qualgent|qualigate ...`` against the simulators: each command prints the
provider's answer (``--json`` as it came), and says in one line what to set or fix."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator import qualitymax as qm_sim
from receiver.simulator.common import Served
from tests.sims import qualgent_sim, qualigate_sim

__all__ = ["qualgent_sim", "qualigate_sim"]

KEY = "qm-cli-key"
Run = Callable[..., tuple[int, str]]


@pytest.fixture
def partner() -> Iterator[Served]:
    with Served(qm_sim.create_simulator(qm_sim.SimulatorSettings(api_key=KEY))) as served:
        yield served


@pytest.fixture
def invoke(
    tmp_path: Path, partner: Served, qualgent_sim: Served, qualigate_sim: Served
) -> Iterator[Run]:
    config = tmp_path / "receiver.toml"
    config.write_text(
        f'[qualitymax]\nbase_url = "{partner.url}"\n'
        f'[qualgent]\nbase_url = "{qualgent_sim.url}"\n'
        f'[qualigate]\nbase_url = "{qualigate_sim.url}"\n'
    )
    env = {
        "QUALITYMAX_API_KEY": KEY,
        "QUALGENT_API_KEY": gent_sim.API_KEY,
        "QUALIGATE_API_KEY": gate_sim.API_KEY,
        "RECEIVER_DB": str(tmp_path / "receiver.db"),
    }
    runner = CliRunner()

    def run(*args: str, keys: bool = True) -> tuple[int, str]:
        given = env if keys else {k: "" for k in env}
        result = runner.invoke(main, [*args, "--config", str(config)], env=given)
        return result.exit_code, result.output

    yield run


def test_qualitymax_commands_print_the_partners_answers(invoke: Run, tmp_path: Path) -> None:
    run = invoke
    code, out = run("qualitymax", "import-repo", "https://github.com/acme/shop")
    assert code == 0, out
    assert "repository_id: 100" in out and "already_exists: False" in out
    code, out = run("qualitymax", "import-repo", "https://github.com/acme/shop", "--json")
    assert json.loads(out)["already_exists"] is True
    spec = tmp_path / "openapi.json"
    spec.write_text('{"openapi": "3.1.0"}')
    code, out = run("qualitymax", "generate-api-tests", "--openapi-file", str(spec), "--json")
    assert (code, json.loads(out)["tests_generated"]) == (0, 4)
    code, out = run(
        "qualitymax", "create-test-case", "--project-id", "15", "--title", "Login", "--tag", "auth"
    )
    assert code == 0 and "title: Login" in out
    code, out = run(
        "qualitymax", "generate-test-cases", "--project-id", "15", "--description", "Login",
        "--count", "2", "--json",
    )  # fmt: skip
    assert len(json.loads(out)["test_cases"]) == 2


def test_qualitymax_refusals_are_one_line(invoke: Run) -> None:
    run = invoke
    code, out = run("qualitymax", "import-repo", "https://example.com/acme/shop")
    assert (code, out) == (1, "Error: url: give a GitHub or GitLab HTTPS URL\n")
    code, out = run("qualitymax", "report", "pwj_unknown")
    assert code == 1 and out.startswith("Error: QualityMax answered 404: Job pwj_unknown")
    code, out = run("qualitymax", "generate-api-tests", keys=False)
    assert out == "Error: QUALITYMAX_API_KEY ([qualitymax] api_key) is not set: set it\n"


def test_qualgent_upload_then_list(invoke: Run, tmp_path: Path) -> None:
    run = invoke
    apk = tmp_path / "app.apk"
    apk.write_bytes(b"apk bytes")
    code, out = run("qualgent", "upload-app", str(apk), "--app-name", "Shop", "--version", "2.0.0")
    assert code == 0, out
    assert out.startswith("uploaded app.apk as ") and "(Shop 2.0.0, android, 9 bytes)" in out
    code, out = run("qualgent", "app", "latest")
    assert "Shop v2.0.0 2.0.0 (android)" in out
    code, out = run("qualgent", "apps", "--json")
    assert [a["version"] for a in json.loads(out)] == ["1.0.0", "2.0.0"]
    code, out = run("qualgent", "test-cases", "--category", "cat_smoke")
    assert out.splitlines() == [
        "tc_pass  Login Flow Test (active)",
        "tc_fail  Payment Flow Test (active)",
    ]
    code, out = run("qualgent", "jobs", "--json")
    assert (code, json.loads(out)) == (0, {"test_runs": []})
    empty = tmp_path / "empty.apk"
    empty.write_bytes(b"")
    code, out = run("qualgent", "upload-app", str(empty), "--app-name", "Shop", "--version", "2")
    assert (code, out) == (1, f"Error: file: {empty} is empty\n")
    code, out = run("qualgent", "upload-app", str(apk), "--app-name", " ", "--version", "2")
    assert (code, out) == (1, "Error: app_name: is required\n")


def test_qualigate_ci_config(invoke: Run) -> None:
    run = invoke
    code, out = run("qualigate", "ci-config", gate_sim.PROJECT)
    assert code == 0, out
    assert out.splitlines() == [
        f"E-commerce Site ({gate_sim.PROJECT})",
        "  provider github-actions, on push, pull_request",
        f"  branches main, develop, suite {gate_sim.MIXED_SUITE}",
    ]
    code, out = run("qualigate", "ci-config", "nope")
    assert code == 1 and out.startswith("Error: Qualigate answered 404: Not Found")
