"""DESIGN.md's public names are documented where users look (like sqlite-utils' test_docs)."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
EXAMPLE_CONFIG = (REPO / "config/receiver.toml").read_text()
DESIGN = REPO.parent / "shared" / "DESIGN.md"

ENV_VARS = [
    "RECEIVER_CONFIG",
    "RECEIVER_DB",
    "RECEIVER_PUBLIC_URL",
    "RECEIVER_API_TOKEN",
    "RECEIVER_SESSION_SECRET",
    "QUALITYMAX_API_KEY",
    "QUALITYMAX_WEBHOOK_SECRET",
    "QUALITYMAX_PARTNER_SLUG",
    "QUALITYMAX_BASE_URL",
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_API_URL",
    "RECEIVER_NOTIFY",
    "RECEIVER_LOG_FORMAT",
]
# Variables of ours that DESIGN.md does not list by name: documented all the same.
MORE_ENV_VARS = ["RECEIVER_NOTIFY_ALL", "LITESTREAM_REPLICA_URL", "LITESTREAM_REPLICA_ENDPOINT"]
CONFIG_KEYS = {
    "server": ["public_url", "max_body_bytes"],
    "qualitymax": ["base_url", "partner_slug", "api_key", "webhook_secret", "timeout_seconds"],
    "github": ["api_url", "token"],
    "delivery": ["max_attempts", "backoff", "timeout_seconds"],
    "routes": ["name", "when", "notify", "on_change", "group_by", "thread_by", "repeat_after"],
    "watch": ["after_failures", "notify"],
    "triage": ["base_branch", "window", "flaky_threshold", "flaky_is_green"],
    "store": ["url"],
}
# Keys of ours that DESIGN.md does not list (yet): documented all the same.
MORE_CONFIG_KEYS = {
    "server": ["header_timeout_seconds", "body_timeout_seconds", "max_connections"],
}


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1]
    block = re.search(r"```(?:bash|sh|shell)\n(.*?)```", section, re.S)
    assert block, "no fenced shell block under Quickstart"
    return [
        line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")
    ]


def test_quickstart_has_exactly_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert "receiver demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readmes_test_command() -> None:
    assert quickstart_commands()[1] in (REPO / ".ci/run").read_text()


@pytest.mark.parametrize("name", [*ENV_VARS, *MORE_ENV_VARS])
def test_every_environment_variable_is_documented(name: str) -> None:
    assert f"`{name}`" in README


@pytest.mark.parametrize(
    ("section", "key"),
    [(s, k) for table in (CONFIG_KEYS, MORE_CONFIG_KEYS) for s, ks in table.items() for k in ks],
)
def test_every_config_key_is_in_the_example_and_readme(section: str, key: str) -> None:
    assert re.search(rf"^#?\s*{key}\s*=", EXAMPLE_CONFIG, re.M), (
        f"{section}.{key} not in config/receiver.toml"
    )
    assert f"`{key}`" in README, f"{section}.{key} not in README"


@pytest.mark.skipif(not DESIGN.exists(), reason="../shared/DESIGN.md is not beside this checkout")
def test_names_here_are_the_designs() -> None:
    design = DESIGN.read_text()
    for name in ENV_VARS:
        assert f"`{name}`" in design, f"{name} is not a DESIGN.md name"
    for section, keys in CONFIG_KEYS.items():
        for key in keys:
            assert key in design, f"{section}.{key} is not a DESIGN.md key"


DASHBOARD_PATHS = ["/results/{id}", "/jobs/{id}", "/deliveries", "/history", "/tests/", "/login"]


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_the_dashboards_paths_are_documented(path: str) -> None:
    assert path in README.split("## Dashboard", 1)[1], path


@pytest.mark.parametrize("name", ["results", "tail", "demo"])
def test_the_dashboards_commands_have_help_and_are_documented(name: str) -> None:
    from click.testing import CliRunner

    from receiver.cli import main

    shown = CliRunner().invoke(main, [name, "--help"])
    assert shown.exit_code == 0 and "Example:" in shown.output
    assert f"`receiver {name}" in README


def test_the_readmes_screenshots_exist() -> None:
    shots = re.findall(r"\]\((docs/screenshots/[^)]+)\)", README)
    assert len(shots) >= 6
    for shot in shots:
        assert (REPO / shot).is_file(), shot
