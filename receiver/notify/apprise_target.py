"""Any Apprise URL: Slack, mailto://, Discord, Teams, json:// ...

Apprise's ``notify`` is blocking and answers only success or failure per service; the reason
arrives as log lines, which Apprise 2.x keeps per service and attempt (the successor of reading
``LogCapture``: with several sends at once a shared capture would mix their lines). Most plugins
log the HTTP status as ``error=NNN``; we read it from there so that a 404 is a permanent refusal
and a 429 a retry. ``Retry-After`` never reaches us through Apprise, so a 429 from an Apprise
target waits the normal backoff, and a failure without a status (connection refused, a plugin
that logs none) counts as transient.

Each target gets the message in the markup its service renders, written and escaped by us
(receiver.notify.message, receiver.notify.escape), and Apprise is told that format, so it converts
nothing. One Markdown message for all, converted by Apprise, cannot be made safe: for email Apprise
turns it into HTML with Python-Markdown, which lets raw HTML through (a test named ``<script>``
stays a tag); its Slack conversion leaves a bare ``<!channel>`` live; and no one escaping suits
every service (Slack shows Markdown's backslash escapes, and entities reach it as ``&amp;lt;``,
its plugin escaping ``&`` itself). The format is the one Apprise itself resolves for the service
(``resolve_format``): its default, or what its URL picks with ``?format=``. So ``mailto://`` gets
HTML, ``slack://`` Markdown written for Apprise's mrkdwn conversion, ``json://`` and
``discord://`` plain text unless ``?format=markdown``. The title is plain text: services show it
apart from the body and escape it as text (Slack's plugin entity-escapes it); a service without
titles writes it into the body, so it is escaped like the body then.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import apprise
from apprise.plugins.slack import NotifySlack

from receiver.notify import escape
from receiver.notify.message import HTML, MARKDOWN, PLAIN, SLACK, Markup, Message, message
from receiver.notify.retry import Outcome
from receiver.views import ResultDetail

STATUS_IN_LOG: Final = re.compile(r"error=(\d{3})\b")
REASON_LEVELS: Final = ("WARNING", "ERROR", "CRITICAL")
MARKUPS: Final = {
    apprise.NotifyFormat.HTML: HTML,
    apprise.NotifyFormat.MARKDOWN: MARKDOWN,
    apprise.NotifyFormat.TEXT: PLAIN,
}


class Prepared:
    """One target in one thread: its Apprise object, the format its service renders, the
    markup we write that in, and how its title is escaped."""

    def __init__(self, sender: apprise.Apprise, service: apprise.NotifyBase) -> None:
        self.sender = sender
        self.format = apprise.NotifyFormat(service.resolve_format(None))
        self.markup = markup_for(service, self.format)
        # A service without a title of its own writes the title into the body.
        self.title_text = self.markup.escape if service.title_maxlen <= 0 else escape.plain

    def note(self, result: ResultDetail) -> Message:
        return message(result, self.markup, self.title_text)


def markup_for(service: apprise.NotifyBase, body_format: apprise.NotifyFormat) -> Markup:
    if body_format == apprise.NotifyFormat.MARKDOWN and isinstance(service, NotifySlack):
        return SLACK  # Markdown that Apprise's Slack plugin turns into mrkdwn
    return MARKUPS.get(body_format, PLAIN)


class AppriseSender:
    """Sends through Apprise on a thread pool of its own, so a hanging target holds one thread."""

    def __init__(self, *, timeout: float, threads: int = 16) -> None:
        self.timeout = timeout
        # Send in our own thread: by default Apprise hands every send to its shared pool of
        # cpu_count + 4 threads (6 here), which capped deliveries at ~60/s to a 100 ms target
        # however many sends the worker ran at once. Our worker times each send out itself, and
        # the socket timeouts below end the thread's wait.
        self.asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
        # Parsing the URL and building the Apprise object cost about a fifth of a send's CPU;
        # each pool thread keeps its own per target (a plugin object is not shared by threads).
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="receiver-apprise")

    async def send(self, target: str, result: ResultDetail) -> Outcome:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.send_blocking, target, result)

    def serial_key(self, target: str, result: ResultDetail) -> str | None:
        return None

    def send_blocking(self, target: str, result: ResultDetail) -> Outcome:
        prepared = self.prepared(target)
        if prepared is None:  # checked at start-up; a config edited since is a permanent refusal
            return Outcome(ok=False, permanent=True, error="Apprise cannot parse this target URL")
        note = prepared.note(result)
        outcome = prepared.sender.notify(
            body=note.body, title=note.title, notify_type=note.kind, body_format=prepared.format
        )
        if outcome:
            return Outcome(ok=True)
        return failure(reasons(outcome))

    async def send_text(self, target: str, title: str, body: str) -> Outcome:
        """Words of our own that may quote a target's error ([watch] alerts), escaped for the
        target's markup."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._text_blocking, target, title, body)

    def _text_blocking(self, target: str, title: str, body: str) -> Outcome:
        prepared = self.prepared(target)
        if prepared is None:
            return Outcome(ok=False, permanent=True, error="Apprise cannot parse this target URL")
        outcome = prepared.sender.notify(
            body=prepared.markup.paragraph(prepared.markup.escape(body)),
            title=prepared.title_text(title),
            notify_type="warning",
            body_format=prepared.format,
        )
        return Outcome(ok=True) if outcome else failure(reasons(outcome))

    def prepared(self, target: str) -> Prepared | None:
        """This thread's Apprise object for ``target`` and its markup, built on first use."""
        senders: dict[str, Prepared] = self.local.__dict__.setdefault("senders", {})
        if target in senders:
            return senders[target]
        service = apprise.Apprise.instantiate(target, asset=self.asset)
        if service is None:
            return None
        # Apprise's own socket timeouts, so its thread gives up when the worker stops waiting.
        service.socket_connect_timeout = min(service.socket_connect_timeout, self.timeout)
        service.socket_read_timeout = min(service.socket_read_timeout, self.timeout)
        sender = apprise.Apprise(asset=self.asset)
        sender.add(service)
        senders[target] = Prepared(sender, service)
        return senders[target]

    async def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def reasons(outcome: apprise.AppriseResult) -> list[str]:
    """The warning and error lines Apprise logged for this send."""
    return [
        entry.message
        for service in outcome
        for entry in service.logs()
        if entry.level in REASON_LEVELS
    ]


def failure(lines: list[str]) -> Outcome:
    error = " | ".join(lines[-3:]) or "Apprise reported a failure without a reason"
    codes = [int(m.group(1)) for line in lines if (m := STATUS_IN_LOG.search(line))]
    return Outcome(ok=False, error=error, status_code=codes[-1] if codes else None)
