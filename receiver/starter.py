"""``receiver init``: a commented starter config, for those who prefer a file to RECEIVER_NOTIFY.

Secrets stay out of the file: a Slack webhook URL (its path is the secret) is written as
``${SLACK_URL}``, and the user is told to give the service that variable, as every other secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from receiver.config import ConfigError
from receiver.notify.slack_url import SLACKBOT_SCHEME
from receiver.routing import parse_target

SLACK_VAR: Final = "SLACK_URL"


class ConfigExists(ConfigError):
    """The file ``receiver init`` would write is there already."""


class Starter(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    routes: list[str]  # the names of the routes it holds
    variables: list[str]  # what the service's environment must set for it


HEAD: Final = """\
# receiver's configuration, written by `receiver init`. Check it: receiver check-config
#
# Every value may use ${VAR} (or ${VAR:-default}) to read the environment; secrets belong there,
# never in this file. The README's environment variables (QUALITYMAX_WEBHOOK_SECRET,
# RECEIVER_PUBLIC_URL, RECEIVER_NOTIFY, ...) apply on their own and win over values written here.

[server]
# The URL at which providers reach this service; callback_url is built from it.
public_url = "${RECEIVER_PUBLIC_URL}"

[qualitymax]
# HMAC secret of X-QualityMax-Signature; a comma-separated list during a rotation.
webhook_secret = "${QUALITYMAX_WEBHOOK_SECRET}"
partner_slug = "${QUALITYMAX_PARTNER_SLUG}"
api_key = "${QUALITYMAX_API_KEY}"

[delivery]
max_attempts = 8                          # then dead; `receiver redeliver ID` revives it
backoff = [10, 30, 120, 600, 1800, 3600]  # seconds before attempt 2, 3, ...; the last repeats
timeout_seconds = 10                      # per attempt

# Routes: which results go to which targets. `when` keys (all must match; empty matches all):
#   provider, event, status (string or list), branch (glob or list of globs),
#   has (custom_data keys that must be present), custom_data.KEY = value.
# notify: Apprise URLs (slack://, mailto://, json:// ...), github://pr-comment,
# github://commit-status, slackbot://#channel. Try a target: receiver notify-test URL
"""

SLACK_ROUTE: Final = """
[[routes]]
name = "failures to slack"
when = {{ status = ["failed", "error", "timeout"] }}
notify = ["{target}"]
# on_change = true   # only when the status differs from the group's previous result
"""

GITHUB_ROUTE: Final = """
[github]
token = "${GITHUB_TOKEN}"
api_url = "${GITHUB_API_URL:-https://api.github.com}"

[[routes]]
name = "pull requests"
when = { has = ["pr_number"] }   # custom_data carries repository, pr_number and sha
notify = ["github://pr-comment", "github://commit-status"]
"""

EXAMPLE_ROUTE: Final = """
# [[routes]]
# name = "failures to slack"
# when = { status = ["failed", "error", "timeout"], branch = "main" }
# notify = ["${SLACK_URL}"]
"""


def starter(*, slack: str | None, github: bool) -> Starter:
    """The file's text for these choices; a Slack URL Apprise cannot use is refused here."""
    parts = [HEAD]
    routes: list[str] = []
    variables = ["QUALITYMAX_WEBHOOK_SECRET"]
    if slack is not None:
        parse_target(slack, "failures to slack")  # refuses what no send could use
        if slack.startswith(SLACKBOT_SCHEME):
            parts.append(SLACK_ROUTE.format(target=slack))  # a channel name is no secret
            parts.append('\n[slack]\nbot_token = "${SLACK_BOT_TOKEN}"\n')
            variables.append("SLACK_BOT_TOKEN")
        else:
            parts.append(SLACK_ROUTE.format(target="${" + SLACK_VAR + "}"))
            variables.append(SLACK_VAR)
        routes.append("failures to slack")
    if github:
        parts.append(GITHUB_ROUTE)
        routes.append("pull requests")
        variables.append("GITHUB_TOKEN")
    if not routes:
        parts.append(EXAMPLE_ROUTE)
    return Starter(text="".join(parts), routes=routes, variables=variables)


def write(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` at ``path`` (its folder made), refusing to replace a file unless ``force``."""
    if path.exists() and not force:
        raise ConfigExists(
            f"{path} already exists: pass --force to overwrite it, or --config FILE to write "
            "another file"
        )
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path} is not a file: pass --config FILE to write elsewhere")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc.strerror}") from None
