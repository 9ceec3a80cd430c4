"""README's Operations page holds: a release never downgrades a database, shell completion
works as written, the commands are documented, and fly stops the machine with SIGTERM."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.store import StoreError, open_store

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
RECEIVER = Path(sys.executable).parent / "receiver"


def operations() -> str:
    return README.split("## Operations", 1)[1].split("\n## ", 1)[0]


def test_a_database_migrated_by_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "receiver.db"
    open_store(str(path)).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO _migrations VALUES ('0999_from_the_future', 'then')")
    conn.close()
    with pytest.raises(StoreError) as raised:
        open_store(str(path))
    assert str(raised.value) == (
        "This database was migrated by a newer release of receiver (0999_from_the_future): "
        "receiver never downgrades. Run that release (or a later one), or restore the backup "
        "taken before the upgrade"
    )
    result = CliRunner().invoke(
        main,
        ["serve", "--port", "1", "--config", "/dev/null"],
        env={"QUALITYMAX_WEBHOOK_SECRET": "s", "RECEIVER_DB": str(path)},
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: This database was migrated by a newer release")
    assert "Error: This database was migrated by a newer release of receiver" in operations()


def completion_commands() -> list[str]:
    block = operations().split("**Shell completion**", 1)[1]
    return re.findall(r"^(_RECEIVER_COMPLETE=\w+ receiver) >", block, re.M)


def test_the_readmes_completion_scripts_are_made_by_receiver(tmp_path: Path) -> None:
    commands = completion_commands()
    assert [c.split("=")[1].split()[0] for c in commands] == [
        "bash_source",
        "zsh_source",
        "fish_source",
    ]
    for command in commands:
        variable, _ = command.split(" ", 1)
        name, value = variable.split("=")
        done = subprocess.run(
            [str(RECEIVER)], env={**os.environ, name: value}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "receiver" in done.stdout and "_RECEIVER_COMPLETE" in done.stdout


def test_bash_completion_offers_the_new_commands() -> None:
    env = {
        **os.environ,
        "_RECEIVER_COMPLETE": "bash_complete",
        "COMP_WORDS": "receiver n",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([str(RECEIVER)], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,notify-test" in done.stdout.splitlines()


@pytest.mark.parametrize("command", ["notify-test", "init"])
def test_the_new_commands_are_documented_with_an_example(command: str) -> None:
    assert f"| `receiver {command}" in README
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_fly_stops_the_machine_with_sigterm_and_time_to_finish() -> None:
    fly = tomllib.loads((REPO / "fly.toml").read_text())
    assert fly["kill_signal"] == "SIGTERM"
    assert fly["kill_timeout"] >= 30
