"""The command line as a user meets it: exit codes and the exact ``Error:`` lines."""

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.process import free_port


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_check_config_prints_settings_with_secrets_masked(
    runner: CliRunner, write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    path = write_config('[[routes]]\nname = "all"\nnotify = ["json://127.0.0.1:9/x"]\n')
    result = runner.invoke(main, ["check-config", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert f"config: {path}" in result.output
    assert "  webhook_secret = set (19 chars)" in result.output
    assert "  api_token = set (14 chars)" in result.output
    assert env["QUALITYMAX_WEBHOOK_SECRET"] not in result.output
    assert env["RECEIVER_API_TOKEN"] not in result.output
    assert "routes: 1" in result.output


def test_check_config_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["check-config", "--config", str(tmp_path / "x.toml")])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: No config at {tmp_path / 'x.toml'}: pass --config FILE or set RECEIVER_CONFIG "
        "(an example is config/receiver.toml in the repository)\n"
    )


def test_check_config_uses_receiver_config_env(
    runner: CliRunner, write_config: Callable[[str], Path]
) -> None:
    path = write_config("[server]\nmax_body_bytes = 2048\n")
    env = {"RECEIVER_CONFIG": str(path), "QUALITYMAX_WEBHOOK_SECRET": "s"}
    result = runner.invoke(main, ["check-config"], env=env)
    assert result.exit_code == 0, result.output
    assert "max_body_bytes = 2048" in result.output


def test_serve_refuses_to_start_without_a_secret(
    runner: CliRunner, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    path = write_config("")
    result = runner.invoke(
        main, ["serve", "--config", str(path)], env={"QUALITYMAX_WEBHOOK_SECRET": ""}
    )
    assert result.exit_code == 1
    assert result.output == (
        "Error: QUALITYMAX_WEBHOOK_SECRET is not set: callbacks cannot be verified. Set it in the "
        f"environment or as [qualitymax] webhook_secret in {path} (a service that only polls "
        "needs QUALIGATE_API_KEY or QUALGENT_API_KEY instead)\n"
    )


def test_serve_says_when_the_database_cannot_be_created(
    runner: CliRunner, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(
        main,
        ["serve", "--port", str(free_port()), "--config", str(write_config(""))],
        env={"QUALITYMAX_WEBHOOK_SECRET": "s", "RECEIVER_DB": str(blocker / "sub" / "db.sqlite")},
    )
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: Cannot create the folder of {blocker / 'sub' / 'db.sqlite'}"
    )


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help and "Example:" in command.help, f"{name} lacks an Example"
