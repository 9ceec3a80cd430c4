"""Real servers on loopback that notifications go to: an HTTP sink with scripted answers, receiver's
GitHub stand-in, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from receiver.process import free_port
from receiver.simulator.github import Comment, GithubApi
from receiver.simulator.slack import SlackApi
from receiver.simulator.standin import Received, Reply, StandIn

GITHUB_TOKEN = "ghp-test-token"
SLACK_TOKEN = "xoxb-test-token"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    hang: bool = False  # hold the request until the sink is closed

    def reply(self) -> Reply | None:
        return (
            None if self.hang else Reply(status=self.status, headers=self.headers, body=self.body)
        )


# A plan picks the answer for the n-th request (0-based) to a path.
Plan = Callable[[int, Received], Answer]


def always(status: int = 200, **headers: str) -> Plan:
    return lambda n, r: Answer(status, dict(headers))


def fail_then_ok(failures: int, status: int = 500, **headers: str) -> Plan:
    return lambda n, r: Answer(status, dict(headers)) if n < failures else Answer(200)


class HttpSink(StandIn):
    """receiver's stand-in server, answering each path by a plan (200 unless told)."""

    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}
        self.default: Plan = always(200)
        super().__init__(self._planned)

    def url(self, path: str = "/hook", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _planned(self, request: Received) -> Reply | None:
        path = request.path.split("?")[0]
        same = self.to(path)  # this request is in it already: its place is its number
        n = next(i for i, r in enumerate(same) if r is request)
        return self.plans.get(path, self.default)(n, request).reply()

    def on(self, path: str, plan: Plan) -> None:
        self.plans[path] = plan

    def wait_for(self, test: Callable[[], bool], timeout: float = 20) -> bool:
        if not super().wait_for(test, timeout):
            raise AssertionError(f"sink: condition not met in {timeout}s: {self.received}")
        return True


class FakeGithub(GithubApi):
    """receiver's GitHub stand-in on a recording sink, with answers that can be forced."""

    def __init__(self, token: str, prefix: str = "") -> None:
        super().__init__(token, prefix)
        self.refuse: dict[str, Answer] = {}  # "METHOD /path" -> a forced answer
        self.sink = HttpSink()
        self.sink.default = self._forced_or_real
        self.base_url = self.sink.base_url

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.prefix}"

    def _forced_or_real(self, n: int, request: Received) -> Answer:
        path = request.path.split("?")[0].removeprefix(self.prefix)
        forced = self.refuse.get(f"{request.method} {path}")
        if forced is not None:
            return forced
        reply = self.answer(request)
        return Answer(reply.status, reply.headers, reply.body)

    def seed_comments(self, repo: str, issue: int, count: int) -> None:
        for _ in range(count):
            self.add_comment(repo, issue, "someone else's comment")

    def markers(self, repo: str, issue: int) -> list[Comment]:
        return [
            c
            for c in self.comments.get(repo, [])
            if c.issue == issue and "<!-- receiver:pr-comment -->" in c.body
        ]

    def close(self) -> None:
        self.sink.close()


class Inbox:
    """An aiosmtpd handler keeping each message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        self.arrived.set()
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def mailto(port: int) -> str:
    return (
        f"mailto://localhost?smtp=127.0.0.1&port={port}&mode=insecure"
        "&from=ci@example.com&to=team@example.com"
    )


class FakeSlack(SlackApi):
    """receiver's Slack Web API stand-in, served on loopback; ``url`` is SLACK_API_URL."""

    def __init__(self, token: str = SLACK_TOKEN) -> None:
        super().__init__(token)
        self.server = StandIn(self.answer, nodelay=True)

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/api"

    def close(self) -> None:
        self.server.close()
