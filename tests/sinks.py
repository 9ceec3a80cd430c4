"""Real servers on loopback that notifications go to: an HTTP sink with scripted answers, a small
GitHub REST API, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from receiver.process import free_port

GITHUB_TOKEN = "ghp-test-token"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request arrived
    answered: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    hang: bool = False  # hold the request until the sink is closed


# A plan picks the answer for the n-th request (0-based) to a path.
Plan = Callable[[int, Received], Answer]


def always(status: int = 200, **headers: str) -> Plan:
    return lambda n, r: Answer(status, dict(headers))


def fail_then_ok(failures: int, status: int = 500, **headers: str) -> Plan:
    return lambda n, r: Answer(status, dict(headers)) if n < failures else Answer(200)


class HttpSink:
    """A threaded HTTP server recording every request; answers follow a plan per path."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.plans: dict[str, Plan] = {}
        self.default: Plan = always(200)
        self.lock = threading.RLock()
        self.released = threading.Event()
        self.changed = threading.Condition(self.lock)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                sink.handle(self)

            do_PUT = do_PATCH = do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hook", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        request = Received(
            method=handler.command,
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length),
            at=time.time(),
        )
        with self.lock:
            n = sum(1 for r in self.received if r.path == request.path)
            self.received.append(request)
            plan = self.plans.get(request.path.split("?")[0], self.default)
            self.changed.notify_all()
        answer = plan(n, request)
        if answer.hang:
            self.released.wait(60)
            return
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)
        with self.lock:
            request.answered = answer.status
            self.changed.notify_all()

    def on(self, path: str, plan: Plan) -> None:
        self.plans[path] = plan

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.split("?")[0] == path]

    def delivered(self, path: str) -> list[Received]:
        """Requests this sink answered with success: what the target really took."""
        return [r for r in self.to(path) if 200 <= r.answered < 300]

    def wait_for(self, test: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not test():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink: condition not met in {timeout}s: {self.received}")
                self.changed.wait(min(left, 0.1))

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeComment:
    id: int
    body: str
    issue: int


class FakeGithub:
    """The GitHub REST calls receiver makes, kept in memory: issue comments and statuses."""

    PER_PAGE_MAX = 100

    def __init__(self, token: str, prefix: str = "") -> None:
        self.token = token
        self.prefix = prefix  # GitHub Enterprise serves the API under /api/v3
        self.comments: dict[str, list[FakeComment]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.next_id = 1000
        self.refuse: dict[str, Answer] = {}  # "METHOD /path" -> a forced answer
        self.sink = HttpSink()
        self.sink.default = self.answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sink.port}{self.prefix}"

    def seed_comments(self, repo: str, issue: int, count: int) -> None:
        for _ in range(count):
            self._add(repo, issue, "someone else's comment")

    def answer(self, n: int, request: Received) -> Answer:
        path, _, query = request.path.partition("?")
        if not path.startswith(self.prefix):
            return _json(404, {"message": "Not Found"})
        path = path[len(self.prefix) :]
        forced = self.refuse.get(f"{request.method} {path}")
        if forced is not None:
            return forced
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _json(401, {"message": "Bad credentials"})
        if m := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path):
            repo, issue = m.group(1), int(m.group(2))
            if request.method == "GET":
                return self._list(repo, issue, query)
            comment = self._add(repo, issue, request.json()["body"])
            return _json(201, {"id": comment.id, "body": comment.body})
        if m := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)", path):
            for comment in self.comments.get(m.group(1), []):
                if comment.id == int(m.group(2)) and request.method == "PATCH":
                    comment.body = request.json()["body"]
                    return _json(200, {"id": comment.id, "body": comment.body})
            return _json(404, {"message": "Not Found"})
        if m := re.fullmatch(r"/repos/([^/]+/[^/]+)/statuses/([0-9a-f]+)", path):
            self.statuses.setdefault(m.group(2), []).append(request.json())
            return _json(201, request.json())
        return _json(404, {"message": "Not Found"})

    def _add(self, repo: str, issue: int, body: str) -> FakeComment:
        self.next_id += 1
        comment = FakeComment(self.next_id, body, issue)
        self.comments.setdefault(repo, []).append(comment)
        return comment

    def _list(self, repo: str, issue: int, query: str) -> Answer:
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        per_page = min(int(params.get("per_page", 30)), self.PER_PAGE_MAX)
        page = int(params.get("page", 1))
        found = [c for c in self.comments.get(repo, []) if c.issue == issue]
        chunk = found[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(found):
            next_url = f"{self.url}/repos/{repo}/issues/{issue}/comments"
            headers["Link"] = f'<{next_url}?per_page={per_page}&page={page + 1}>; rel="next"'
        return _json(200, [{"id": c.id, "body": c.body} for c in chunk], headers)

    def markers(self, repo: str, issue: int) -> list[FakeComment]:
        return [
            c
            for c in self.comments.get(repo, [])
            if c.issue == issue and "<!-- receiver:pr-comment -->" in c.body
        ]

    def close(self) -> None:
        self.sink.close()


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, headers or {}, json.dumps(data).encode())


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
