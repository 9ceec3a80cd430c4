"""Serve the QualityMax simulator: in this process (``receiver simulate``) or as a child process
on a free loopback port (the demo and the end-to-end tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from granian.constants import Interfaces
from granian.server import Server

from receiver.process import ServiceProcess

TARGET = "receiver.simulator.qualitymax:app_from_environment"


def run(*, host: str, port: int) -> int:
    """Serve until SIGTERM/SIGINT; settings come from the environment (see SimulatorSettings)."""
    server = Server(
        TARGET,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,  # jobs, rate limits and faults live in this one worker's memory
        websockets=False,
        log_access=False,
    )
    server.serve()
    return 0


class SimulatorProcess(ServiceProcess):
    """``receiver simulate`` as a child: ``start()``, ``url``, ``stop()``, like the service."""

    def __init__(self, env: Mapping[str, str], log_file: Path, port: int = 0) -> None:
        super().__init__(Path(os.devnull), env, log_file, port)

    def start(self, timeout: float = 30) -> SimulatorProcess:
        command = [sys.executable, "-m", "receiver", "simulate", "--port", str(self.port)]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy(timeout)
        return self
