"""``receiver serve`` against slow and idle clients, and on a port already in use (issue 18).

Every test runs the real service on loopback and talks to it with plain sockets, as an attacker
would: bodies that never finish, headers sent a byte at a time, connections that send nothing.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, post
from litestar.response import Stream
from litestar.testing import TestClient

from receiver.process import ServiceProcess
from receiver.web.deadlines import body_deadline, body_too_slow
from tests.conftest import TOKEN, callback_body, signed

# More than granian's default of 1,024 connections a worker: with that default the service
# stopped answering at about this many (the report of issue 18).
SLOW_CLIENTS = 1_100
STUCK_BODY = b"POST /callbacks/qualitymax HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
HALF_HEADERS = b"POST /callbacks/qualitymax HTTP/1.1\r\nHost: x\r\nContent-Le"


@contextmanager
def open_connections(port: int, count: int, first_bytes: bytes) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent ``first_bytes`` and then nothing."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(first_bytes)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def enough_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"needs {wanted} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def stored_digests(db_path: str) -> set[bytes]:
    with sqlite3.connect(db_path) as conn:
        return {bytes(row[0]) for row in conn.execute("SELECT digest FROM callback_digests")}


def test_health_and_callbacks_are_answered_while_slow_clients_hold_connections(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    enough_open_files(2 * SLOW_CLIENTS + 256)
    half = SLOW_CLIENTS // 2
    with (
        open_connections(service.port, half, STUCK_BODY) as stuck,
        open_connections(service.port, half, HALF_HEADERS) as halfway,
    ):
        health = httpx.get(f"{service.url}/health", timeout=1)
        assert health.status_code == 200
        body = callback_body(custom_data={"branch": "while-slow-clients"})
        taken = httpx.post(
            f"{service.url}/callbacks/qualitymax", content=body, headers=signed(body), timeout=5
        )
        assert taken.status_code == 200, taken.text
        # Still held by the service, not dropped to make room: none has been answered or closed.
        for sock in (stuck[0], stuck[-1], halfway[0], halfway[-1]):
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    assert hashlib.sha256(body).digest() in stored_digests(env["RECEIVER_DB"])


# -- deadlines: set to 1 s here; the client sends a byte every 0.25 s, so only a deadline on the
# whole head or body (not one per read) ends it.

DEADLINE = 1.0
DRIP_EVERY = 0.25
GIVE_UP_AFTER = 6.0  # seconds; the deadlines are 1 s


@pytest.fixture
def strict_service(
    tmp_path: Path, write_config: Callable[[str], Path], env: dict[str, str]
) -> Iterator[ServiceProcess]:
    config = write_config(
        f"[server]\nheader_timeout_seconds = {DEADLINE}\nbody_timeout_seconds = {DEADLINE}\n"
    )
    process = ServiceProcess(config, env, tmp_path / "serve.log").start()
    yield process
    process.kill()


def trickle(port: int, head: bytes, drip: bytes = b"") -> tuple[float, bytes]:
    """Send ``head``, then one byte of ``drip`` every DRIP_EVERY seconds, reading all the while;
    return the seconds until the service closed the connection, and what it answered."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(DRIP_EVERY)
        sock.sendall(head)
        started = time.monotonic()
        answer = b""
        while time.monotonic() - started < GIVE_UP_AFTER:
            try:
                sock.send(drip[:1])
                drip = drip[1:]
            except OSError:  # closed by the service: what it answered is still to be read
                drip = b""
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                return time.monotonic() - started, answer
            answer += data
    raise AssertionError(f"still open after {GIVE_UP_AFTER} s, having answered {answer!r}")


def post_head(path: str, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Content-Length: 100", *extra, "", ""]
    return "\r\n".join(lines).encode() + b"{"


def assert_timed_out(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"\r\nconnection: close" in head.lower(), answer
    assert httpx.Response(408, content=body).json() == {"detail": body_too_slow(DEADLINE)}


def test_slow_heads_and_bodies_are_cut_off_at_their_deadlines(
    strict_service: ServiceProcess,
) -> None:
    port = strict_service.port
    trickled = b"a" * 1000
    cases = {
        "callback body": (post_head("/callbacks/qualitymax"), trickled),
        "job body": (
            post_head("/api/jobs", f"Authorization: Bearer {TOKEN}", "Content-Type: a/json"),
            trickled,
        ),
        "headers": (b"POST /callbacks/qualitymax HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " * 100),
        "nothing sent": (b"", b""),
        "idle after a request": (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", b""),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {name: pool.submit(trickle, port, *case) for name, case in cases.items()}
        outcomes = {name: future.result() for name, future in futures.items()}

    for name in ("callback body", "job body"):
        seconds, answer = outcomes[name]
        assert DEADLINE * 0.9 < seconds < GIVE_UP_AFTER, name
        assert_timed_out(answer)
    for name in ("headers", "nothing sent"):
        seconds, answer = outcomes[name]
        assert DEADLINE * 0.9 < seconds < GIVE_UP_AFTER, name
        assert answer == b"", name
    seconds, answer = outcomes["idle after a request"]
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert seconds < GIVE_UP_AFTER


def test_the_body_deadline_never_cuts_a_long_response() -> None:
    """A streamed answer (server-sent events) outlives the body deadline of its request."""

    async def ticks() -> AsyncIterator[str]:
        for n in range(4):
            await asyncio.sleep(0.1)
            yield f"data: {n}\n\n"

    @post("/events")
    async def events(request: Request[Any, Any, Any]) -> Stream:
        assert await request.body() == b'{"since": "0"}'  # read under the deadline
        return Stream(ticks(), media_type="text/event-stream")

    app = Litestar([events], middleware=[body_deadline(0.05)])
    with TestClient(app) as client:
        response = client.post("/events", content=b'{"since": "0"}')
    assert response.status_code == 201
    assert response.text == "".join(f"data: {n}\n\n" for n in range(4))


# -- a port in use


def test_a_second_serve_on_a_port_in_use_refuses_to_start(
    service: ServiceProcess, write_config: Callable[[str], Path], env: dict[str, str]
) -> None:
    port, config = str(service.port), str(write_config(""))
    second = subprocess.run(
        [sys.executable, "-m", "receiver", "serve", "--port", port, "--config", config],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert second.returncode != 0
    assert second.stderr == (
        f"Error: 127.0.0.1:{service.port} is in use by another process: stop it or pass --port\n"
    )
    assert httpx.get(f"{service.url}/health", timeout=1).status_code == 200


def test_no_other_process_can_share_the_port(service: ServiceProcess) -> None:
    """granian's own listener has SO_REUSEPORT: any process of the same user could join it."""
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with pytest.raises(OSError) as refused:
            intruder.bind(("127.0.0.1", service.port))
    assert refused.value.errno == errno.EADDRINUSE
