"""The ``receiver`` command: each command parses, calls one function, prints.

Domain code raises typed errors; only this module turns them into one ``Error: ...`` line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from receiver import __version__
from receiver.config import (
    Config,
    ConfigError,
    config_path,
    effective_settings,
    load_config,
    require_webhook_secret,
)
from receiver.providers.polling import ProviderError
from receiver.store import Store, StoreError

F = TypeVar("F", bound=Callable[..., Any])

# Typed errors the commands turn into one line; helpers add theirs here.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, StoreError, ProviderError)


@contextmanager
def user_errors() -> Iterator[None]:
    """Say what was wrong and what to do, in one line, without a traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        raise click.ClickException(str(exc)) from None


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config_file",
        metavar="FILE",
        help="TOML config file [default: $RECEIVER_CONFIG or config/receiver.toml]",
    )(fn)


def read_config(config_file: str | None) -> Config:
    return load_config(config_path(config_file, os.environ))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="receiver")
def main() -> None:
    """receiver: take signed test-result callbacks, keep them, route them to people.

    Every command reads its settings from the config file and the environment
    (see README.md). Run `receiver COMMAND --help` for one command's options.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@config_option
def serve(host: str, port: int, config_file: str | None) -> None:
    """Run the service: the HTTP app and its delivery worker.

    Stops on SIGTERM or Ctrl-C after finishing the requests in flight.

    \b
    Example:
        QUALITYMAX_WEBHOOK_SECRET=... receiver serve --host 0.0.0.0 --port 8000
    """
    from receiver.server import run

    with user_errors():
        path = config_path(config_file, os.environ)
        config = load_config(path)
        require_webhook_secret(config)
        Store(config.db_path).open().close()  # migrations run, and a bad path fails here
        click.echo(
            f"receiver {__version__} on http://{host}:{port} (db {config.db_path})", err=True
        )
        sys.exit(run(path, host=host, port=port))


@main.command("check-config")
@config_option
def check_config(config_file: str | None) -> None:
    """Validate the config and print the settings and routes it would use (secrets masked).

    \b
    Example:
        receiver check-config --config config/receiver.toml
    """
    with user_errors():
        config = read_config(config_file)
    click.echo(f"config: {config.source}")
    for section, values in effective_settings(config).items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"  {key} = {value}")
    click.echo(f"routes: {len(config.routes)}")
    for route in config.routes:
        click.echo(f"  - {route.name}: {len(route.notify)} target(s)")
    if not config.qualitymax.webhook_secrets:
        click.echo("warning: QUALITYMAX_WEBHOOK_SECRET is not set; `serve` will refuse to start")


@main.command()
def demo() -> None:
    """Show the whole loop locally in one command, on a throwaway database.

    \b
    Example:
        receiver demo
    """
    from receiver.demo import run_demo

    with user_errors():
        sys.exit(run_demo(Path.cwd()))


@main.command()
@click.option(
    "--provider",
    type=click.Choice(["qualitymax", "qualigate", "qualgent"]),
    default="qualitymax",
    show_default=True,
    help="Which provider's API to simulate",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535))
def simulate(provider: str, host: str, port: int) -> None:
    """A local provider API for development and demos, until Ctrl-C.

    Qualigate and QualGent: every documented endpoint with its auth, errors and rate limits;
    a run goes pending, running, then the outcome its test case names (README.md lists them).
    Point [qualigate] or [qualgent] base_url at it and use the API key it prints.

    \b
    Example:
        receiver simulate --provider qualigate --port 8100
    """
    if provider == "qualitymax":
        click.echo("qualitymax simulator: see issue 5")
        return
    from receiver.simulator.run import serve_simulator

    sys.exit(serve_simulator(provider, host=host, port=port))
