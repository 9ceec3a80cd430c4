"""Any Apprise URL: Slack, mailto://, Discord, Teams, json:// ...

Apprise's ``notify`` is blocking and answers only success or failure per service; the reason
arrives as log lines, which Apprise 2.x keeps per service and attempt (the successor of reading
``LogCapture``: with several sends at once a shared capture would mix their lines). Most plugins
log the HTTP status as ``error=NNN``; we read it from there so that a 404 is a permanent refusal
and a 429 a retry. ``Retry-After`` never reaches us through Apprise, so a 429 from an Apprise
target waits the normal backoff, and a failure without a status (connection refused, a plugin
that logs none) counts as transient.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import apprise

from receiver.notify.message import Message, message
from receiver.notify.retry import Outcome
from receiver.views import ResultDetail

STATUS_IN_LOG: Final = re.compile(r"error=(\d{3})\b")
REASON_LEVELS: Final = ("WARNING", "ERROR", "CRITICAL")


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
        return await loop.run_in_executor(self.pool, self.send_blocking, target, message(result))

    def serial_key(self, target: str, result: ResultDetail) -> str | None:
        return None

    def send_blocking(self, target: str, note: Message) -> Outcome:
        sender = self.sender_for(target)
        if sender is None:  # checked at start-up; a config edited since is a permanent refusal
            return Outcome(ok=False, permanent=True, error="Apprise cannot parse this target URL")
        outcome = sender.notify(
            body=note.body,
            title=note.title,
            notify_type=note.kind,
            body_format=apprise.NotifyFormat.MARKDOWN,
        )
        if outcome:
            return Outcome(ok=True)
        return failure(reasons(outcome))

    def sender_for(self, target: str) -> apprise.Apprise | None:
        """This thread's Apprise object for ``target``, built on first use."""
        senders: dict[str, apprise.Apprise] = self.local.__dict__.setdefault("senders", {})
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
        senders[target] = sender
        return sender

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
