"""Runs the app under granian: measured faster than uvicorn on the callback path (see README).

One worker process on uvloop: the callbacks' group commit lives in that process (several
processes would contend for SQLite's write lock; measured slower, see README). asyncio's own loop
took about a third more CPU per callback than uvloop.

granian serves from a worker process. The worker is tied to its parent's life, so a SIGKILL of
`receiver serve` cannot leave an orphan worker holding the port and the database.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

from granian.constants import Interfaces, Loops
from granian.server import Server

PR_SET_PDEATHSIG = 1


def run(config_file: Path, *, host: str, port: int) -> int:
    """Serve until SIGTERM/SIGINT; granian lets requests in flight finish, then exits."""
    os.environ["RECEIVER_CONFIG"] = str(config_file)
    server = Server(
        "receiver.app:app_from_environment",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        factory=True,
        workers=1,
        websockets=False,
        log_access=False,
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
