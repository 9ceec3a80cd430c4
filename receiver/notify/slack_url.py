"""``slackbot://#channel``: the target URL of the Slack Web API target (receiver.notify.slack).

Kept apart from the sender so that routing can check targets without importing a client. The
URL holds no secret (the token is ``SLACK_BOT_TOKEN``), so it is its own display.
"""

from __future__ import annotations

import re
from typing import Final

from receiver.config import ConfigError

SLACKBOT_SCHEME: Final = "slackbot://"
# A channel's name (#deploys, lower case, digits, - _ .) or its id (C0123ABCD, G…, D…).
CHANNEL: Final = re.compile(r"#[a-z0-9][a-z0-9_.-]{0,79}|[CGD][A-Z0-9]{6,20}")


def parse_slackbot(url: str, route_name: str) -> str:
    """The canonical URL of a slackbot target; raise ConfigError naming the route and the fix."""
    channel = channel_of(url)
    if not CHANNEL.fullmatch(channel):
        raise ConfigError(
            f"route {route_name!r}: {url!r} names no Slack channel; use slackbot://#channel "
            "(a channel name, lower case) or slackbot://C0123ABCD (a channel id)"
        )
    return f"{SLACKBOT_SCHEME}{channel}"


def channel_of(url: str) -> str:
    """The channel part of ``slackbot://#channel`` (a ``#`` may be written as ``%23``)."""
    rest = url[len(SLACKBOT_SCHEME) :] if url.startswith(SLACKBOT_SCHEME) else url
    return rest.replace("%23", "#").strip("/")
