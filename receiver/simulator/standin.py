"""A stand-in HTTP server on loopback that records every request: the demo's chat webhook and
GitHub, and the tests' sinks. Standard library only, served from a daemon thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec


class Received(msgspec.Struct, kw_only=True):
    method: str
    path: str  # with its query
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.time() when the request arrived
    answered: int = 0  # the status it was answered with (0 while unanswered)

    def json(self) -> Any:
        return json.loads(self.body)


class Reply(msgspec.Struct, kw_only=True):
    status: int = 200
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: bytes = b"{}"


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, headers=headers or {}, body=json.dumps(data).encode())


Answer = Callable[[Received], Reply | None]  # None: hold the request, never answer


class StandIn:
    """Answers each request with ``answer(request)`` and keeps it in ``received``."""

    def __init__(self, answer: Answer = lambda request: Reply(), *, nodelay: bool = False) -> None:
        """``nodelay``: answer without Nagle's delay (headers and body go in two writes, and
        the client's delayed ACK held the body ~40 ms), as a real API server does."""
        self.answer = answer
        self.received: list[Received] = []
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.released = threading.Event()  # set on close: held requests end
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = nodelay

            def do_POST(self) -> None:
                stand_in.handle(self)

            do_PUT = do_PATCH = do_GET = do_DELETE = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            self.received.append(request)
            self.changed.notify_all()
        reply = self.answer(request)
        if reply is None:
            self.released.wait(60)
            return
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        handler.wfile.write(reply.body)
        with self.lock:
            request.answered = reply.status
            self.changed.notify_all()

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.split("?")[0] == path]

    def delivered(self, path: str) -> list[Received]:
        """Requests answered with success: what the target really took."""
        return [r for r in self.to(path) if 200 <= r.answered < 300]

    def wait_for(self, test: Callable[[], bool], timeout: float = 20) -> bool:
        """Wait until ``test()`` holds; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not test():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.1))
        return True

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
