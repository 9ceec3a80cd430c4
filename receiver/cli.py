"""The ``receiver`` command: each command parses, calls one function, prints.

Domain code raises typed errors; only this module turns them into one ``Error: ...`` line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from receiver import __version__, store
from receiver.config import (
    Config,
    ConfigError,
    config_path,
    effective_settings,
    load_config,
    require_webhook_secret,
)
from receiver.routing import Router
from receiver.store import Store, StoreError

F = TypeVar("F", bound=Callable[..., Any])

# Typed errors the commands turn into one line; helpers add theirs here.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, StoreError)


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
        Router.from_config(config)  # a wrong route stops here, with its name
        Store(config.db_path).open().close()  # migrations run, and a bad path fails here
        click.echo(
            f"receiver {__version__} on http://{host}:{port} (db {config.db_path})", err=True
        )
        sys.exit(run(path, host=host, port=port))


@main.command("check-config")
@config_option
@click.option(
    "--result",
    "result_file",
    metavar="FILE.json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A callback body: print which routes and targets it would reach",
)
def check_config(config_file: str | None, result_file: Path | None) -> None:
    """Validate the config and print the settings and routes it would use (secrets masked).

    \b
    Example:
        receiver check-config --config config/receiver.toml
        receiver check-config --result callback.json
    """
    with user_errors():
        config = read_config(config_file)
        router = Router.from_config(config)
    if result_file is not None:
        print_reach(router, result_file)
        return
    click.echo(f"config: {config.source}")
    for section, values in effective_settings(config).items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"  {key} = {value}")
    click.echo(f"routes: {len(config.routes)}")
    for route in config.routes:
        click.echo(f"  - {route.name}: {len(route.notify)} target(s)")
        print_route(router, route.name)
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


# ---------------------------------------------------------------------------------------------
# Routes and the outbox


def print_route(router: Router, name: str) -> None:
    for compiled in router.routes:
        if compiled.route.name != name:
            continue
        when = {k: v for k, v in msgspec.to_builtins(compiled.route.when).items() if v}
        click.echo(f"      when: {json.dumps(when) if when else 'every result'}")
        if compiled.route.on_change:
            group = ", ".join(compiled.route.group_by) or "provider only"
            click.echo(f"      on_change: yes, grouped by {group}")
        for target in compiled.targets:
            click.echo(f"      -> {target.display}")


def print_reach(router: Router, result_file: Path) -> None:
    from receiver.callbacks import decode

    decoded = decode(result_file.read_bytes())
    if decoded.error is not None:
        raise click.ClickException(f"{result_file}: {decoded.error}")
    result = decoded.result
    if result is None:
        click.echo(f"{result_file}: this callback carries no result; it reaches no route")
        return
    branch = result.branch or "(no branch)"
    click.echo(f"result: {result.status} ({result.provider}, event {result.event}, {branch})")
    reach = router.reach(result)
    if not reach:
        click.echo("reaches no route")
        return
    click.echo(f"reaches {len(reach)} route(s):")
    for item in reach:
        note = "  (on_change: only if its group's status changed)" if item.on_change else ""
        click.echo(f"  - {item.route}{note}")
        for target in item.targets:
            click.echo(f"      -> {target}")


def open_store(config_file: str | None) -> Store:
    return Store(read_config(config_file).db_path).open()


@main.command()
@config_option
@click.option("--failed", is_flag=True, help="Only dead ones and pending ones that failed before")
@click.option("--state", type=click.Choice(store.DELIVERY_STATES), help="Only this state")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
def deliveries(
    config_file: str | None, failed: bool, state: str | None, limit: int, as_json: bool
) -> None:
    """List the outbox, newest first: one row per (result, target), targets masked.

    \b
    Example:
        receiver deliveries --failed
        receiver deliveries --state dead --json
    """
    where = store.DeliveryFilter(state=state, failed=failed, limit=limit)
    with user_errors():
        database = open_store(config_file)
        try:
            page = database.read(lambda db: store.list_deliveries(db, where))
        finally:
            database.close()
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(page.items)).decode())
        return
    click.echo(delivery_table(page.items))


@main.command()
@config_option
@click.argument("delivery_id", metavar="ID", type=int)
def redeliver(config_file: str | None, delivery_id: int) -> None:
    """Send a delivery again: back to pending, due now, with a fresh attempt budget.

    The running service picks it up within seconds.

    \b
    Example:
        receiver redeliver 42
    """
    with user_errors():
        database = open_store(config_file)
        try:
            view = database.write_sync(lambda db: store.redeliver(db, delivery_id))
        finally:
            database.close()
    click.echo(f"delivery {view.id} to {view.target} is pending again (attempts reset)")


DELIVERY_COLUMNS = ("id", "state", "attempts", "result", "route", "target", "when", "last error")


def delivery_table(items: list[store.DeliveryView]) -> str:
    if not items:
        return "no deliveries"
    rows = [DELIVERY_COLUMNS] + [
        (
            str(d.id),
            d.state,
            str(d.attempts),
            str(d.result_id),
            _cut(d.route, 24),
            _cut(d.target, 48),
            ((d.sent_at if d.state == "sent" else d.next_attempt_at) or d.updated_at)[:19],
            _cut(d.last_error or "", 60),
        )
        for d in items
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(DELIVERY_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
