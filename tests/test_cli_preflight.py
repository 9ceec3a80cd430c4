"""check-config and serve agree: the same refusals, the same line; secrets never shown;
read-only commands never create a database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.config import ENV_SETTINGS
from receiver.simulator.process import SimulatorProcess

# Secrets whose first characters appear nowhere else, so any prefix shown would be found.
SECRETS = {
    "QUALITYMAX_WEBHOOK_SECRET": "Wz7Kx-webhook-secret-value",
    "RECEIVER_API_TOKEN": "Tq4Vb-api-token-value",
    "QUALITYMAX_API_KEY": "qm_Jx8Pn-partner-key",
    "GITHUB_TOKEN": "ghp_Rf5Lm-github-token",
    "QUALIGATE_API_KEY": "qg_Yc3Hd-qualigate-key",
    "QUALGENT_API_KEY": "Nv6Ts-qualgent-key",
}
NO_DATABASE = (
    "No database at {path}: pass --config or set RECEIVER_DB to the service's database "
    "(it is created by receiver serve)"
)


def environment(tmp_path: Path, **given: str) -> dict[str, str | None]:
    """Every setting receiver reads from the environment unset (whatever the shell running the
    tests has), then ``given``; the database under tmp_path unless given."""
    env: dict[str, str | None] = {s.name: None for s in ENV_SETTINGS}
    env["RECEIVER_DB"] = str(tmp_path / "receiver.db")
    env.update(given)
    return env


def invoke(args: list[str], env: dict[str, str | None]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.output


# -- secrets ---------------------------------------------------------------------------------


def test_check_config_shows_each_secret_only_as_its_length(
    write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    path = write_config('[[routes]]\nname = "prs"\nnotify = ["github://pr-comment"]\n')
    code, output = invoke(["check-config", "--config", str(path)], environment(tmp_path, **SECRETS))
    assert code == 0, output
    for secret in SECRETS.values():
        assert secret[:3] not in output
    lines = output.splitlines()
    assert "  webhook_secret = set (26 chars)" in lines
    assert "  api_token = set (21 chars)" in lines
    assert "  token = set (22 chars)" in lines  # [github]
    assert lines.count("  api_key = set (20 chars)") == 1  # [qualitymax]
    assert "  partner_slug = (not set)" in lines


def test_check_config_masks_passwords_in_urls(
    write_config: Callable[[str], Path], tmp_path: Path, postgres_url: str
) -> None:
    """The local server trusts any password: the database answers, and its URL is shown."""
    with_password = postgres_url.replace("postgres@", "postgres:Pg8Dw-db-password@")
    env = environment(
        tmp_path,
        QUALITYMAX_WEBHOOK_SECRET="s",
        RECEIVER_DB=with_password,
        QUALITYMAX_BASE_URL="https://partner:Bx2Qm-base-password@qm.example.com/",
    )
    code, output = invoke(["check-config", "--config", str(write_config(""))], env)
    assert code == 0, output
    lines = output.splitlines()
    assert f"  db_path = {postgres_url.replace('postgres@', 'postgres:****@')}" in lines
    assert "  base_url = https://partner:****@qm.example.com/" in lines
    assert "Pg8" not in output and "Bx2" not in output


def test_check_config_refuses_a_database_server_that_does_not_answer(
    write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    unreachable = "postgresql://receiver:Pg8Dw-db-password@127.0.0.1:9/receiver"
    env = environment(tmp_path, QUALITYMAX_WEBHOOK_SECRET="s", RECEIVER_DB=unreachable)
    code, output = invoke(["check-config", "--config", str(write_config(""))], env)
    assert code == 1
    assert output.startswith(
        "Error: Cannot open the database postgresql://receiver:****@127.0.0.1:9/receiver: "
    )
    assert "Pg8" not in output


def test_the_simulator_banner_shows_given_secrets_only_as_their_length(tmp_path: Path) -> None:
    env = {
        "QUALITYMAX_API_KEY": SECRETS["QUALITYMAX_API_KEY"],
        "QUALITYMAX_WEBHOOK_SECRET": SECRETS["QUALITYMAX_WEBHOOK_SECRET"],
    }
    simulator = SimulatorProcess(env, tmp_path / "simulate.log").start()
    try:
        banner = simulator.tail()
    finally:
        simulator.kill()
    assert "API key set (20 chars), webhook secret set (26 chars)" in banner
    assert "qm_" not in banner and "Wz7" not in banner


# -- check-config fails exactly where serve refuses, with serve's line ------------------------

ROUTE = '[[routes]]\nname = "prs"\nnotify = ["{target}"]\n'


def refusals(tmp_path: Path) -> list[tuple[str, str, dict[str, str], str]]:
    """(case, config text, environment, the line serve refuses with)."""
    secret = {"QUALITYMAX_WEBHOOK_SECRET": "s"}
    blocker = tmp_path / "a-file"
    folder = tmp_path / "a-folder"
    not_sqlite = tmp_path / "notes.txt"
    config = tmp_path / "receiver.toml"
    return [
        (
            "nothing configured",
            "",
            {},
            "QUALITYMAX_WEBHOOK_SECRET is not set: callbacks cannot be verified. Set it in the "
            f"environment or as [qualitymax] webhook_secret in {config} (a service that only "
            "polls needs QUALIGATE_API_KEY or QUALGENT_API_KEY instead)",
        ),
        (
            "QualityMax half configured",
            "",
            {"QUALITYMAX_API_KEY": "qm-k", "QUALIGATE_API_KEY": "qg_k"},
            "QUALITYMAX_WEBHOOK_SECRET is not set: callbacks cannot be verified. Set it in the "
            f"environment or as [qualitymax] webhook_secret in {config}",
        ),
        (
            "unknown target",
            ROUTE.format(target="github://issues"),
            secret,
            "route 'prs': unknown GitHub target 'github://issues'; use github://pr-comment or "
            "github://commit-status",
        ),
        (
            "github target without a token",
            ROUTE.format(target="github://commit-status"),
            secret,
            "A route notifies github://... but GITHUB_TOKEN is not set: set it in the environment "
            f"or as [github] token in {config}",
        ),
        (
            "database folder is a file",
            "",
            {**secret, "RECEIVER_DB": str(blocker / "data" / "receiver.db")},
            f"Cannot create the folder of {blocker / 'data' / 'receiver.db'}: {blocker} is not "
            "a folder",
        ),
        (
            "database is a folder",
            "",
            {**secret, "RECEIVER_DB": str(folder)},
            f"Cannot open the database {folder}: it is not a file",
        ),
        (
            "database is not SQLite",
            "",
            {**secret, "RECEIVER_DB": str(not_sqlite)},
            f"Cannot open the database {not_sqlite}: it is not an SQLite database",
        ),
    ]


CASES = [
    "nothing configured",
    "QualityMax half configured",
    "unknown target",
    "github target without a token",
    "database folder is a file",
    "database is a folder",
    "database is not SQLite",
]


@pytest.mark.parametrize("case", CASES)
def test_check_config_refuses_with_the_line_serve_refuses_with(
    case: str, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n")
    _, text, given, line = next(r for r in refusals(tmp_path) if r[0] == case)
    path = str(write_config(text))
    env = environment(tmp_path, **given)
    before = sorted(tmp_path.rglob("*"))

    # An address nothing can bind: were a refusal missed, serve would fail, not hang.
    serve_args = ["serve", "--config", path, "--host", "256.0.0.1"]
    serve_code, serve_output = invoke(serve_args, env)
    check_code, check_output = invoke(["check-config", "--config", path], env)

    assert (serve_code, serve_output) == (1, f"Error: {line}\n")
    assert (check_code, check_output) == (1, f"Error: {line}\n")
    assert sorted(tmp_path.rglob("*")) == before  # neither created anything


def test_every_refusal_case_is_tested(tmp_path: Path) -> None:
    assert [case for case, *_ in refusals(tmp_path)] == CASES


def test_a_polling_only_config_passes_with_a_note(
    write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    env = environment(tmp_path, QUALGENT_API_KEY="Nv6Ts-qualgent-key")
    code, output = invoke(["check-config", "--config", str(write_config(""))], env)
    assert code == 0, output
    assert (
        "note: QUALITYMAX_WEBHOOK_SECRET is not set; the service only polls, and "
        "/callbacks/qualitymax answers 503"
    ) in output.splitlines()
    assert not (tmp_path / "receiver.db").exists()  # checked, not created


def test_an_empty_database_file_and_a_new_folder_pass(
    write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    for db in (tmp_path / "empty.db", tmp_path / "new" / "deeper" / "receiver.db"):
        env = environment(tmp_path, QUALITYMAX_WEBHOOK_SECRET="s", RECEIVER_DB=str(db))
        code, output = invoke(["check-config", "--config", str(write_config(""))], env)
        assert code == 0, output
    assert not (tmp_path / "new").exists()


# -- read-only commands never create a database -------------------------------------------------


@pytest.mark.parametrize("args", [["deliveries"], ["deliveries", "--json"], ["redeliver", "1"]])
@pytest.mark.parametrize("where", ["missing-folder/receiver.db", "receiver.db"])
def test_a_missing_database_is_refused_and_not_created(
    args: list[str], where: str, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    db = tmp_path / where
    env = environment(tmp_path, QUALITYMAX_WEBHOOK_SECRET="s", RECEIVER_DB=str(db))
    config = str(write_config(""))
    before = sorted(tmp_path.rglob("*"))
    code, output = invoke([*args, "--config", config], env)
    assert (code, output) == (1, f"Error: {NO_DATABASE.format(path=db)}\n")
    assert sorted(tmp_path.rglob("*")) == before


def test_the_default_database_path_is_named(
    write_config: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(write_config(""))
    monkeypatch.chdir(tmp_path)
    env = environment(tmp_path, QUALITYMAX_WEBHOOK_SECRET="s")
    env["RECEIVER_DB"] = None  # unset: the default, relative to the working directory
    code, output = invoke(["deliveries", "--config", config], env)
    assert (code, output) == (1, f"Error: {NO_DATABASE.format(path='data/receiver.db')}\n")
    assert not (tmp_path / "data").exists()
