"""The listening socket and how many connections it serves: checked before anything starts.

Kept apart from receiver.server so the CLI can name these errors without importing granian.
"""

from __future__ import annotations

import errno
import resource
import socket
from pathlib import Path
from typing import Final

import msgspec

from receiver.config import ServerSettings

# Kept for the worker's own files: the database and its journal, log output, the delivery
# worker's and poller's outbound connections, the event loop's and granian's pipes.
FD_RESERVE: Final = 256
# The kernel's queue of connections not yet accepted; Linux caps it at net.core.somaxconn
# (4096 by default since 5.4).
BACKLOG: Final = 4096


class ListenError(Exception):
    """The address cannot be listened on; the message says why and what to do."""


class ConnectionLimit(msgspec.Struct, frozen=True):
    """How many connections are served at once: ``[server] max_connections`` unless the
    open-file limit allows fewer (each connection is one open file)."""

    connections: int
    wanted: int
    open_files: int

    def note(self) -> str | None:
        """What to tell the user when the open-file limit lowered the number."""
        if self.connections >= self.wanted:
            return None
        return (
            f"note: serving at most {self.connections} connections, not [server] "
            f"max_connections = {self.wanted}: the open-file limit is {self.open_files}. Raise "
            "it (ulimit -Hn, systemd LimitNOFILE=, docker --ulimit nofile=) to serve more"
        )


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), without SO_REUSEPORT, so no other process can share it.

    granian binds its listener with SO_REUSEPORT on Linux: a second ``receiver serve`` (or any
    process of the same user) on the same port would start and take a share of the callbacks.
    A plain bind fails against any listener, SO_REUSEPORT or not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Only lets a restart bind while the last run's connections linger in TIME_WAIT; Linux
        # still refuses the bind while anything listens on the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as granian's; inherited
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(_bind_failure(host, port, exc)) from None
    return sock


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where} is in use by another process: stop it or pass --port"
    if exc.errno == errno.EACCES:
        return f"Cannot listen on {where}: permission denied; pass --port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"Cannot listen on {where}: no interface has that address; pass --host"
    return f"Cannot listen on {where}: {exc.strerror or exc}"


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; the new soft limit.

    The worker inherits it: every connection is one open file there.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = _kernel_file_limit()
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else hard


def _kernel_file_limit() -> int:
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1_048_576


def connection_limit(settings: ServerSettings, open_files: int) -> ConnectionLimit:
    allowed = max(open_files - FD_RESERVE, 64)
    return ConnectionLimit(
        min(settings.max_connections, allowed), settings.max_connections, open_files
    )
