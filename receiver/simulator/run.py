"""``receiver simulate --provider qualigate|qualgent``: one simulator in the foreground."""

from __future__ import annotations

import click
import uvicorn
from litestar import Litestar

from receiver.simulator import qualgent, qualigate


def build(provider: str) -> tuple[Litestar, str]:
    if provider == "qualigate":
        return qualigate.create_app(), qualigate.API_KEY
    return qualgent.create_app(), qualgent.API_KEY


def serve_simulator(provider: str, *, host: str, port: int) -> int:
    app, key = build(provider)
    click.echo(f"{provider} simulator on http://{host}:{port} (API key {key})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
