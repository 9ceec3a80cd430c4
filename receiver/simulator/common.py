"""What the provider simulators share: rate windows that count, injected faults, a served thread.

The simulators keep score: every request an endpoint group admits is counted, the most ever seen
inside one window is kept, and each 429 for going over the limit is counted. Tests read
``GET /_sim/stats`` to show that a client never went over.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import JSONBody

from receiver.process import free_port


class Verdict(msgspec.Struct, kw_only=True):
    admitted: bool
    remaining: int
    reset: float  # seconds until a slot frees
    retry_after: float = 0.0


class RateWindow:
    """A sliding window per (key, group): ``limit`` requests in any ``seconds``."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self.admitted: dict[str, int] = {}
        self.max_in_window: dict[str, int] = {}
        self.limited = 0

    def admit(self, key: str, group: str) -> Verdict:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault((key, group), deque())
            while hits and now - hits[0] >= self.seconds:
                hits.popleft()
            reset = hits[0] + self.seconds - now if hits else 0.0
            if len(hits) >= self.limit:
                self.limited += 1
                return Verdict(admitted=False, remaining=0, reset=reset, retry_after=reset)
            hits.append(now)
            self.admitted[group] = self.admitted.get(group, 0) + 1
            self.max_in_window[group] = max(self.max_in_window.get(group, 0), len(hits))
            reset = hits[0] + self.seconds - now
            return Verdict(admitted=True, remaining=self.limit - len(hits), reset=reset)


class Fault(msgspec.Struct, kw_only=True):
    """``POST /_sim/faults``: answer the next ``count`` API requests with ``status``."""

    status: int = 500
    count: int = 1
    retry_after: float | None = None


class Faults:
    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.served = 0

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def take(self) -> Fault | None:
        with self._lock:
            while self._queue and self._queue[0].count <= 0:
                self._queue.popleft()
            if not self._queue:
                return None
            self._queue[0].count -= 1
            self.served += 1
            return msgspec.structs.replace(self._queue[0])


class Stats(msgspec.Struct, kw_only=True):
    limit: int
    window_seconds: float
    admitted: dict[str, int]
    max_in_window: dict[str, int]
    limited: int
    faults_served: int
    runs: int


def retry_seconds(value: float) -> int | float:
    """Whole seconds as documented (``retry_after: 60``); sub-second windows stay fractional."""
    return math.ceil(value) if value >= 1 else round(value, 3)


def control_routes(window: RateWindow, faults: Faults, runs: Any) -> list[Any]:
    """The simulator's own endpoints: scores and fault injection (no auth, no limits)."""

    @get("/_sim/stats", sync_to_thread=False)
    def stats() -> Stats:
        return Stats(
            limit=window.limit,
            window_seconds=window.seconds,
            admitted=dict(window.admitted),
            max_in_window=dict(window.max_in_window),
            limited=window.limited,
            faults_served=faults.served,
            runs=len(runs),
        )

    @post("/_sim/faults", sync_to_thread=False, status_code=204)
    def add_fault(data: JSONBody[Fault]) -> None:
        faults.add(data)

    return [stats, add_fault]


def simulated_api(
    handlers: list[Any],
    *,
    rates: RateWindow,
    faults: Faults,
    runs: Any,
    before: Callable[[Request[Any, Any, Any]], Response[Any] | None],
    http_error: Callable[[Request[Any, Any, Any], HTTPException], Response[Any]],
) -> Litestar:
    """A polled provider's simulator: its endpoints behind ``before`` (key, faults, limits), its
    errors in the provider's own shape (``http_error``), and the control routes."""
    return Litestar(
        route_handlers=[*handlers, *control_routes(rates, faults, runs)],
        before_request=before,
        exception_handlers={HTTPException: http_error},
        openapi_config=None,
        logging_config=None,
    )


def group_of(request: Request[Any, Any, Any]) -> str | None:
    group: str | None = request.route_handler.opt.get("limit")
    return group


class Served:
    """A Litestar app under uvicorn in a daemon thread on a loopback port (tests, the CLI)."""

    def __init__(self, app: Litestar, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.port = port or free_port()
        self.host = host
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="simulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10) -> Served:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"simulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
