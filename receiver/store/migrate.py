"""Applying the numbered migrations of ``receiver/store/migrations``, each in one transaction
with its row in ``_migrations``.

A migration is ``NNNN_name.sql`` (every backend) or ``NNNN_name.<dialect>.sql`` (one backend's
own SQL where it must differ); each backend must have every number. Statements end with ``;`` at
the end of a line. Databases made by the first releases recorded their migrations by function
name (``m001_initial`` … ``m006_…``); such a database is at ``0001_initial``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Final

import msgspec

from receiver.clock import utcnow
from receiver.store.errors import StoreError
from receiver.store.tx import Tx

FILE_NAME: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)(?:\.([a-z]+))?\.sql$")
CREATE_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
)
LEGACY_LAST: Final = "m006_open_poll_index_without_in_list"
LEGACY_STATE: Final = "0001_initial"


class Migration(msgspec.Struct, frozen=True):
    name: str  # "0002_retention"
    sql: str

    @property
    def statements(self) -> list[str]:
        """The statements of the file: each ends with ``;`` at the end of a line."""
        lines = [line for line in self.sql.splitlines() if not line.lstrip().startswith("--")]
        found, current = [], []
        for line in lines:
            current.append(line)
            if line.rstrip().endswith(";"):
                found.append("\n".join(current).strip().rstrip(";"))
                current = []
        if "".join(current).strip():
            raise StoreError(f"migration {self.name}: the last statement has no ';'")
        return found


def migrations(dialect: str) -> list[Migration]:
    """This backend's migrations in order: its own file for a number where there is one."""
    chosen: dict[str, tuple[str, str]] = {}
    for entry in resources.files("receiver.store.migrations").iterdir():
        match = FILE_NAME.match(entry.name)
        if match is None:
            continue
        number, name, only = match.groups()
        if only not in (None, dialect):
            continue
        if only is None and number in chosen:
            continue  # the backend's own file wins
        chosen[number] = (f"{number}_{name}", entry.read_text(encoding="utf-8"))
    numbers = sorted(chosen)
    if numbers != [f"{n:04d}" for n in range(1, len(numbers) + 1)]:
        raise StoreError(f"migrations for {dialect} are not numbered 0001, 0002, …: {numbers}")
    return [Migration(*chosen[number]) for number in numbers]


def migrate(
    tx: Tx, *, begin: Callable[[], None], commit: Callable[[], None], rollback: Callable[[], None]
) -> list[str]:
    """Apply every migration not yet applied; return the names applied now. ``tx`` is a
    connection outside any transaction; ``begin``/``commit``/``rollback`` are the backend's."""
    tx.execute(CREATE_TABLE)
    done = {row[0] for row in tx.execute("SELECT name FROM _migrations").fetchall()}
    if LEGACY_LAST in done and LEGACY_STATE not in done:
        tx.execute("INSERT INTO _migrations VALUES (?, ?)", [LEGACY_STATE, utcnow()])
        done.add(LEGACY_STATE)
    elif done and not any(FILE_NAME.match(f"{name}.sql") for name in done):
        raise StoreError(
            "This database was made by a release too old to upgrade from here: "
            f"applied migrations {sorted(done)}. Start a new database (set RECEIVER_DB)."
        )
    known = migrations(tx.dialect)
    _refuse_a_downgrade(done, {migration.name for migration in known})
    applied = []
    for migration in known:
        if migration.name in done:
            continue
        begin()
        try:
            for statement in migration.statements:
                tx.execute(statement)
            tx.execute("INSERT INTO _migrations VALUES (?, ?)", [migration.name, utcnow()])
            commit()
        except BaseException:
            rollback()
            raise
        applied.append(migration.name)
    return applied


def _refuse_a_downgrade(done: set[str], known: set[str]) -> None:
    """A database migrated by a newer release has tables and meanings this release does not
    know: serving it could lose or misread what the newer one wrote."""
    newer = sorted(name for name in done if FILE_NAME.match(f"{name}.sql") and name not in known)
    if newer:
        raise StoreError(
            f"This database was migrated by a newer release of receiver ({', '.join(newer)}): "
            "receiver never downgrades. Run that release (or a later one), or restore the backup "
            "taken before the upgrade"
        )
