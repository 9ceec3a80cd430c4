"""Can ``receiver serve`` start with this config? The one answer ``serve`` and ``check-config``
share, so a deploy gated on ``check-config`` fails exactly when the service would.

Nothing here creates or changes a file: ``check-config`` may run where the service does not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from receiver import logs, redact
from receiver.config import NOTIFY_ENV, Config, require_webhook_secret
from receiver.redact import url
from receiver.routing import Router
from receiver.store import StoreError, is_postgresql

SQLITE_HEADER: Final = b"SQLite format 3\x00"
NO_ROUTE: Final = (
    f"no route: results are stored and nobody is notified. Set {NOTIFY_ENV} to a target "
    "(a Slack webhook URL, any Apprise URL, github://...; `receiver notify-test URL` tries one) "
    "or add [[routes]] to the config (`receiver init` writes a starter file)"
)


def check(config: Config) -> Router:
    """The routes ``serve`` would use; or the first reason it refuses to start, raised as
    ConfigError or StoreError (the same order ``serve`` meets them)."""
    logs.log_format(os.environ)  # RECEIVER_LOG_FORMAT: json or console
    require_webhook_secret(config)
    router = Router.from_config(config)  # routes valid; GITHUB_TOKEN when a github target exists
    check_database(config.db_path)
    return router


def warnings(router: Router) -> list[str]:
    """What ``serve`` starts with all the same but a user should hear (one line each)."""
    return [] if router.routes else [NO_ROUTE]


def check_database(path: str) -> None:
    """Raise StoreError when the database at ``path`` could not be opened or created."""
    if path == ":memory:":
        return
    if is_postgresql(path):
        _check_server(path)
        return
    target = Path(path)
    if target.exists():
        _check_existing(path, target)
        return
    folder = next(p for p in target.absolute().parents if p.exists())
    if not folder.is_dir():
        raise StoreError(f"Cannot create the folder of {url(path)}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"Cannot create the database {url(path)}: {folder} is not writable")


def _check_server(dsn: str) -> None:
    """A PostgreSQL database must answer; receiver creates its tables, not the database."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"Cannot open the database {redact.url(dsn)}: {reason}") from None


def _check_existing(path: str, target: Path) -> None:
    if not target.is_file():
        raise StoreError(f"Cannot open the database {url(path)}: it is not a file")
    try:
        with target.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"Cannot open the database {url(path)}: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:  # an empty file is a new database to SQLite
        raise StoreError(f"Cannot open the database {url(path)}: it is not an SQLite database")
    writable = os.access(target, os.W_OK) and os.access(target.absolute().parent, os.W_OK)
    if not writable:
        raise StoreError(f"Cannot open the database {url(path)}: it or its folder is not writable")
