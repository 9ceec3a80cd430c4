"""Runs the app under granian: measured faster than uvicorn on the callback path (see README).

One worker process on uvloop: the callbacks' group commit lives in that process (several
processes would contend for SQLite's write lock; measured slower, see README). asyncio's own loop
took about a third more CPU per callback than uvloop.

granian serves from a worker process. The worker is tied to its parent's life, so a SIGKILL of
`receiver serve` cannot leave an orphan worker holding the port and the database.

Slow and idle clients (README, Limits): the headers of each request must arrive within
``[server] header_timeout_seconds`` (hyper's header read timeout: one deadline for the whole
head, which also ends an idle kept-alive connection), the body within ``body_timeout_seconds``
(receiver.web.deadlines), and up to ``max_connections`` connections are served at once
(receiver.listen).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.server import MPServer

from receiver import logs
from receiver.config import ServerSettings
from receiver.listen import BACKLOG, ConnectionLimit

PR_SET_PDEATHSIG = 1


# granian's stub lists no arguments; the extension takes (fd, uds) and, on Linux, the backlog.
_socket_holder: Any = SocketHolder


class _OwnListener(MPServer):
    """granian's server, serving on a socket bound by ``listen_socket``, not one of its own."""

    # granian sets these to None in __init__ (its own types say no more).
    _ssp: Any
    _sfd: Any
    _shd: Any

    def __init__(self, listener: socket.socket, **options: Any) -> None:
        super().__init__(**options)
        self._listener = listener

    def _init_shared_socket(self) -> None:
        # receiver.listen.listen_socket says why. This is what granian does where it shares
        # one listener with its workers: a SocketHolder they serve and the socket they inherit.
        self._listener.listen(self.backlog)
        self._listener.set_inheritable(True)
        fd = self._listener.fileno()
        self._ssp = None
        self._sfd = fd
        if sys.platform.startswith(("linux", "freebsd")):
            self._shd = _socket_holder(fd, False, self.backlog)
        else:
            self._shd = _socket_holder(fd, False)
        self._sso = self._listener


def run(
    config_file: Path | None,
    listener: socket.socket,
    settings: ServerSettings,
    limit: ConnectionLimit,
) -> int:
    """Serve until SIGTERM/SIGINT; granian lets requests in flight finish, then exits.

    ``config_file`` None: no file, the worker reads the environment alone, as this process did.
    """
    if config_file is not None:
        os.environ["RECEIVER_CONFIG"] = str(config_file)
    host, port = listener.getsockname()[:2]
    server = _OwnListener(
        listener,
        target="receiver.app:app_from_environment",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        factory=True,
        workers=1,
        # HTTP/1 only: in granian's auto mode hyper first waits for bytes that tell HTTP/1
        # from HTTP/2, with no deadline, so a client that connects and sends nothing holds a
        # connection forever (hyper issue 3962). Without TLS no client speaks HTTP/2 anyway.
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(settings.header_timeout_seconds * 1000))
        ),
        # granian's backpressure is a count of connections (each holds a permit until it
        # closes), not of requests in flight; its default is the backlog, 1024.
        backpressure=limit.connections,
        backlog=BACKLOG,
        websockets=False,
        log_access=False,
        # granian's own lines (start, stop, errors) as ours: one JSON object per line.
        log_dictconfig=logs.stdlib_config(logs.log_format(os.environ)),
        workers_kill_timeout=30,
    )
    server.serve()
    return 0


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its parent dies; elsewhere do nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGKILL)
