"""The config file plus the environment: expansion, overrides, and errors that say what to fix."""

from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.config import ConfigError, config_path, effective_settings, load_config

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_example_loads_with_only_the_secret_set() -> None:
    config = load_config(REPO / "config/receiver.toml", {"QUALITYMAX_WEBHOOK_SECRET": "s"})
    assert config.qualitymax.webhook_secrets == ("s",)
    assert config.qualitymax.base_url == "https://app.qualitymax.io"
    assert config.github.api_url == "https://api.github.com"
    assert config.server.max_body_bytes == 1_048_576
    assert config.server.header_timeout_seconds == 10
    assert config.server.body_timeout_seconds == 15
    assert config.server.max_connections == 10_000
    assert config.delivery.backoff == [10, 30, 120, 600, 1800, 3600]
    assert config.db_path == "data/receiver.db"
    assert config.api_token is None


def test_variables_expand_in_every_value(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        '[server]\npublic_url = "https://${HOST}/x"\n'
        '[qualitymax]\nbase_url = "${QM_URL:-http://fallback}"\n'
        '[[routes]]\nname = "r"\nnotify = ["json://${SINK}/hook"]\n'
    )
    config = load_config(path, {"HOST": "rx.example", "SINK": "127.0.0.1:9"})
    assert config.server.public_url == "https://rx.example/x"
    assert config.qualitymax.base_url == "http://fallback"
    assert config.routes[0].notify == ["json://127.0.0.1:9/hook"]


def test_environment_wins_over_literal_values(write_config: Callable[[str], Path]) -> None:
    path = write_config('[qualitymax]\nbase_url = "https://file"\nwebhook_secret = "from-file"\n')
    env = {
        "QUALITYMAX_BASE_URL": "http://127.0.0.1:1",
        "QUALITYMAX_WEBHOOK_SECRET": "a, b ,",
        "RECEIVER_DB": "/tmp/x.db",
        "RECEIVER_API_TOKEN": "tok",
        "GITHUB_API_URL": "http://gh",
        "GITHUB_TOKEN": "ght",
        "RECEIVER_PUBLIC_URL": "https://pub",
        "QUALITYMAX_PARTNER_SLUG": "slug",
        "QUALITYMAX_API_KEY": "qm-key",
    }
    config = load_config(path, env)
    assert config.qualitymax.base_url == "http://127.0.0.1:1"
    assert config.qualitymax.webhook_secrets == ("a", "b")
    assert (config.db_path, config.api_token) == ("/tmp/x.db", "tok")
    assert (config.github.api_url, config.github.token) == ("http://gh", "ght")
    assert config.server.public_url == "https://pub"
    assert (config.qualitymax.partner_slug, config.qualitymax.api_key) == ("slug", "qm-key")


def test_unset_variable_means_unset(write_config: Callable[[str], Path]) -> None:
    config = load_config(write_config('[github]\ntoken = "${NOPE}"\n'), {})
    assert config.github.token is None


def test_config_path_order() -> None:
    assert config_path("a.toml", {"RECEIVER_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"RECEIVER_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) == Path("config/receiver.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server\n", "is not valid TOML"),
        (
            "[server]\nmax_body_byte = 3\n",
            "[server]: Object contains unknown field `max_body_byte`",
        ),
        (
            '[server]\nmax_body_bytes = "big"\n',
            "[server] max_body_bytes: Expected `int`, got `str`",
        ),
        ("[server]\nmax_body_bytes = 10\n", "[server] max_body_bytes must be at least 1024"),
        (
            "[server]\nheader_timeout_seconds = 0\n",
            "[server] header_timeout_seconds must be greater than 0",
        ),
        (
            "[server]\nbody_timeout_seconds = -1\n",
            "[server] body_timeout_seconds must be greater than 0",
        ),
        ("[server]\nmax_connections = 0\n", "[server] max_connections must be greater than 0"),
        ("[delivery]\nmax_attempts = 0\n", "[delivery] max_attempts must be at least 1"),
        ("[delivery]\nbackoff = []\n", "[delivery] backoff must be a non-empty list"),
        (
            '[[routes]]\nname = "x"\nnotify = ["${SLACK_URL}"]\n',
            "route 'x' (routes[0]) has an empty notify target",
        ),
        ("[[routes]]\nnotify = []\n", "Object missing required field `name`"),
        ("bogus = 1\n", "unknown field `bogus`"),
    ],
)
def test_wrong_settings_name_the_key(
    write_config: Callable[[str], Path], text: str, message: str
) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"No config at .*: pass --config FILE or set RECEIVER_CONFIG"
    ):
        load_config(tmp_path / "none.toml", {})


def test_effective_settings_mask_secrets(write_config: Callable[[str], Path]) -> None:
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": "whsec-very-long-secret",
        "QUALITYMAX_API_KEY": "qm-abcdefghijklmnop",
        "GITHUB_TOKEN": "ghp_0123456789abcdef",
        "RECEIVER_API_TOKEN": "short",
    }
    shown = str(effective_settings(load_config(write_config(""), env)))
    for secret in env.values():
        assert secret not in shown
    assert "'api_key': 'set (19 chars)'" in shown and "'api_token': 'set (5 chars)'" in shown
    assert "qm-" not in shown and "ghp" not in shown
