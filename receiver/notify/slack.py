"""``slackbot://#channel``: one living Slack message per group, through the Slack Web API.

The first result of a group (a pull request, else a commit, else a deploy: the route's
``thread_by``) posts a message (``chat.postMessage``); every later result of the group edits it
in place (``chat.update``) with a row per job, and adds a short threaded reply when the group's
status changes, so the channel keeps the story without new top-level messages. Where the
message is (channel id, ts) is kept per (target, group) in the store; a message deleted in Slack
(``message_not_found``) is posted anew. Sends of one group run one at a time (``serial_key``),
and each renders the group as it is in the store then, so a late retry never rolls it back.

Slack's answers decide the retry as documented: HTTP 429 ``ratelimited`` waits its
``Retry-After``; ``invalid_auth``, ``channel_not_found`` and the other refusals no retry can fix
go dead at once with the reason; anything else (``internal_error``, a 5xx, no answer) is retried.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from functools import partial
from typing import Any, Final

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from receiver import matrix
from receiver.matrix import Group
from receiver.notify import slack_render
from receiver.notify.retry import Outcome, parse_retry_after
from receiver.notify.slack_url import channel_of
from receiver.store import Store, messages
from receiver.store.messages import LivingMessage
from receiver.store.tx import Tx
from receiver.views import ResultDetail

DEFAULT_THREAD_BY: Final = ("pr_number", "sha", "deploy_id")
# Refusals no retry can fix, with what to do about each (Slack's documented error names).
PERMANENT: Final = {
    "invalid_auth": "SLACK_BOT_TOKEN is not valid (revoked, or no bot token): set an xoxb- token",
    "not_authed": "no token was sent: set SLACK_BOT_TOKEN",
    "account_inactive": "the bot's token belongs to a deleted user or app: set a new token",
    "token_revoked": "SLACK_BOT_TOKEN was revoked: set a new bot token",
    "token_expired": "SLACK_BOT_TOKEN expired: set a new bot token",
    "channel_not_found": "no such channel, or the bot cannot see it: fix the target or invite it",
    "not_in_channel": "the bot is not in the channel: /invite it there",
    "is_archived": "the channel is archived",
    "missing_scope": "the bot token lacks the chat:write scope",
    "restricted_action": "the workspace does not let the bot post there",
    "msg_too_long": "the message is over Slack's limit",
    "invalid_blocks": "Slack refused the message's blocks",
    "no_text": "the message was empty",
}


class SlackSender:
    """Posts and edits living messages; the store holds where each group's message is."""

    def __init__(
        self,
        *,
        store: Store,
        api_url: str,
        token: str | None,
        timeout: float,
        thread_by: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.store = store
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout
        self.thread_by = dict(thread_by or {})
        self.session: aiohttp.ClientSession | None = None
        self.calls = 0  # Slack API calls made, for the logs and tools

    def client(self) -> AsyncWebClient:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession()  # one pool for every call (made on the loop)
        return AsyncWebClient(
            token=self.token,
            base_url=self.api_url,
            timeout=max(1, math.ceil(self.timeout)),
            session=self.session,
            retry_handlers=[],  # the worker decides retries (receiver.notify.retry)
        )

    def group_key(self, target: str, result: ResultDetail) -> str:
        keys = self.thread_by.get(target, DEFAULT_THREAD_BY)
        return matrix.group_of(keys, result) or f"result:{result.id}"

    def serial_key(self, target: str, result: ResultDetail) -> str | None:
        return f"slackbot:{target}:{self.group_key(target, result)}"

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    # -- one send ------------------------------------------------------------------------------

    async def send(self, target: str, result: ResultDetail) -> Outcome:
        group_key = self.group_key(target, result)
        group, kept = await asyncio.to_thread(
            self.store.read, partial(_state, target, group_key, result)
        )
        if kept is not None and kept.result_id > group.newest_id:
            return Outcome(ok=True, answer="nothing to do: the message shows a newer result")
        text, blocks = slack_render.blocks(group)
        try:
            answer = await self.show(target, group_key, group, kept, text, blocks)
        except SlackApiError as exc:
            return refusal(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome(ok=False, error=f"Cannot reach Slack at {self.api_url}: {exc!r}")
        return Outcome(ok=True, answer=answer)

    async def show(
        self,
        target: str,
        group_key: str,
        group: Group,
        kept: LivingMessage | None,
        text: str,
        blocks: list[dict[str, Any]],
    ) -> str:
        """Edit the group's message, or post it; reply in its thread when the status changed."""
        client = self.client()
        if kept is not None:
            try:
                await self._call(
                    client.chat_update, channel=kept.channel, ts=kept.ts, text=text, blocks=blocks
                )
            except SlackApiError as exc:
                if _error(exc) != "message_not_found":
                    raise
                kept = None  # deleted in Slack: post it anew
            else:
                answer = "chat.update ok"
                if kept.status != group.status:
                    reply = slack_render.reply(kept.status, group)
                    await self._call(
                        client.chat_postMessage, channel=kept.channel, thread_ts=kept.ts, text=reply
                    )
                    answer += ", threaded reply ok"
                await self._keep(kept, group)
                return answer
        posted = await self._call(
            client.chat_postMessage,
            channel=channel_of(target),
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
        fresh = LivingMessage(
            target=target,
            group_key=group_key,
            channel=str(posted["channel"]),
            ts=str(posted["ts"]),
            status=group.status,
            result_id=group.newest_id,
        )
        await self.store.write(partial(messages.save, message=fresh))
        return "chat.postMessage ok"

    async def _keep(self, kept: LivingMessage, group: Group) -> None:
        shown = LivingMessage(
            target=kept.target,
            group_key=kept.group_key,
            channel=kept.channel,
            ts=kept.ts,
            status=group.status,
            result_id=max(kept.result_id, group.newest_id),
        )
        await self.store.write(partial(messages.save, message=shown))

    async def _call(self, method: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await method(**kwargs)

    async def post_text(self, target: str, text: str) -> Outcome:
        """A plain message (the [watch] alerts): posted, never edited."""
        try:
            await self._call(self.client().chat_postMessage, channel=channel_of(target), text=text)
        except SlackApiError as exc:
            return refusal(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome(ok=False, error=f"Cannot reach Slack at {self.api_url}: {exc!r}")
        return Outcome(ok=True, answer="chat.postMessage ok")


def _state(
    target: str, group_key: str, result: ResultDetail, tx: Tx
) -> tuple[Group, LivingMessage | None]:
    return matrix.read_group(tx, group_key, result), messages.get(tx, target, group_key)


def _error(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else None
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def refusal(exc: SlackApiError) -> Outcome:
    """Slack's answer as an outcome: wait on 429, dead on a refusal no retry can fix."""
    response = exc.response
    status = response.status_code if response is not None else None
    error = _error(exc) or f"HTTP {status}"
    method = str(response.api_url).rsplit("/", 1)[-1] if response is not None else "the API"
    answer = f"slack: {error} (HTTP {status})"
    if status == 429 or error == "ratelimited":
        wait = parse_retry_after(_header(response.headers if response else {}, "retry-after"))
        return Outcome(
            ok=False,
            status_code=429,
            retry_after=wait,
            answer=answer,
            error=f"Slack answered ratelimited to {method}: waiting {wait or 0:g}s (Retry-After)",
        )
    if error in PERMANENT:
        return Outcome(
            ok=False,
            permanent=True,
            answer=answer,
            error=f"Slack answered {error} to {method}: {PERMANENT[error]}",
        )
    error_text = f"Slack answered {error} to {method}"
    return Outcome(ok=False, status_code=status, answer=answer, error=error_text)


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None
