"""The [qualigate] and [qualgent] sections: keys from the environment, checked values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.config import ConfigError, effective_settings, load_config
from receiver.providers import configured, polled

REPO_CONFIG = Path(__file__).parent.parent / "config" / "receiver.toml"


def test_defaults_leave_polling_off(write_config: Callable[[str], Path]) -> None:
    config = load_config(write_config(""), {})
    assert (config.qualigate.base_url, config.qualigate.poll_seconds) == (
        "https://qualigate.app",
        10,
    )
    assert config.qualgent.base_url == "http://api.qualgent.ai"
    assert polled(configured(config).values()) == []


def test_keys_come_from_the_environment(write_config: Callable[[str], Path]) -> None:
    text = '[qualigate]\napi_key = "${QUALIGATE_API_KEY}"\npoll_seconds = 5\n'
    env = {"QUALIGATE_API_KEY": "qg_from_file_var", "QUALGENT_API_KEY": "qg_env_only_key"}
    config = load_config(write_config(text), env)
    assert config.qualigate.api_key == "qg_from_file_var"
    assert config.qualigate.poll_seconds == 5
    assert config.qualgent.api_key == "qg_env_only_key"
    assert [p.name for p in polled(configured(config).values())] == ["qualigate", "qualgent"]
    shown = effective_settings(config)
    assert shown["qualgent"]["api_key"] == "set (15 chars)"


def test_an_unset_key_variable_means_not_configured(write_config: Callable[[str], Path]) -> None:
    config = load_config(write_config('[qualgent]\napi_key = "${QUALGENT_API_KEY}"\n'), {})
    assert config.qualgent.api_key is None


@pytest.mark.parametrize("key", ["poll_seconds", "timeout_seconds"])
def test_non_positive_intervals_are_refused(write_config: Callable[[str], Path], key: str) -> None:
    with pytest.raises(ConfigError, match=r"\[qualgent\] poll_seconds and timeout_seconds must be"):
        load_config(write_config(f"[qualgent]\n{key} = 0\n"), {})


def test_the_shipped_config_documents_the_sections() -> None:
    text = REPO_CONFIG.read_text()
    for name in ("[qualigate]", "[qualgent]", "QUALIGATE_API_KEY", "QUALGENT_API_KEY",
                 "poll_seconds", "timeout_seconds"):  # fmt: skip
        assert name in text
    load_config(REPO_CONFIG, {})  # still loads, sections commented out


def test_the_readme_documents_the_names() -> None:
    readme = (REPO_CONFIG.parent.parent / "README.md").read_text()
    for name in ("QUALIGATE_API_KEY", "QUALGENT_API_KEY", "[qualigate]", "[qualgent]",
                 "poll_seconds", "timeout_seconds", "receiver simulate --provider"):  # fmt: skip
        assert f"`{name}" in readme, name
