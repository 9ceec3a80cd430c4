"""Start ``receiver serve`` as a child process on a free loopback port, wait until it answers.

Used by the demo and by the end-to-end tests, like Litestar's subprocess test client.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


class StartError(Exception):
    """The service did not come up; the message has the end of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """One ``receiver serve`` child: ``start()``, ``url``, ``stop()`` (SIGTERM) or ``kill()``."""

    def __init__(
        self,
        config_file: Path | None,
        env: Mapping[str, str],
        log_file: Path,
        port: int = 0,
        cwd: Path | None = None,
    ):
        self.config_file = config_file
        self.env = dict(env)
        self.log_file = log_file
        self.port = port or free_port()
        # ``python -m`` puts the working directory first on sys.path: to serve another checkout's
        # code, start from it (bench/ab.py does).
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServiceProcess:
        command = [sys.executable, "-m", "receiver", "serve", "--port", str(self.port)]
        if self.config_file is not None:  # None: as a user would, the default path or none
            command += ["--config", str(self.config_file)]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StartError(
                    f"receiver serve exited with {self.proc.returncode}: {self.tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise StartError(f"receiver serve did not answer within {timeout:.0f}s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait: the service finishes what is in flight and exits."""
        proc = self.proc
        if proc is None:
            return 0
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._forget(proc)
        return code

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM killer would."""
        proc = self.proc
        if proc is None:
            return
        proc.kill()
        proc.wait()
        self._forget(proc)

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        # Only the process just ended: a start() from another thread meanwhile (a test's
        # restart) has put its own in self.proc, which must stay reachable to be stopped.
        if self.proc is proc:
            self.proc = None
