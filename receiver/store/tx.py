"""What a query module is given: one transaction (or read connection), whatever the backend.

Query functions take a ``Tx`` and speak SQL through it with ``?`` placeholders; a backend that
needs another placeholder style translates. ``dialect`` lets a query pick its backend's variant
where the SQL must differ (``"sqlite"`` or ``"postgresql"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol, TypeVar

import msgspec

T = TypeVar("T")

SQLITE: Final = "sqlite"
POSTGRESQL: Final = "postgresql"

Params = Sequence[Any] | dict[str, Any]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """A connection inside the transaction the writer opened, or a read connection."""

    dialect: str

    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...

    def at_commit(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """``executemany`` as late in the transaction as the backend can: for counters that
        many writes add to (a day's results), whose row lock is held until COMMIT. On
        PostgreSQL the writer's transaction holds a batch of writes, and another instance
        adding to the same row would wait for all of them; there it runs just before the
        COMMIT. SQLite's one writer waits for nobody: it treats them like ``later``."""
        ...

    def later(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """``executemany`` of an ``INSERT INTO`` whose rows this transaction need not see
        before its next statement that names their table. SQLite's writer keeps a batch's rows
        and writes them with one statement per table (docs/performance.md); PostgreSQL runs
        it now."""
        ...

    def next_id(self, table: str) -> int:
        """The id the next row of ``table`` gets, for rows that must point at it before it is
        written; the caller then writes that row with it."""
        ...


def rows_as(cursor: Cursor, kind: type[T], *, json: tuple[str, ...] = ()) -> list[T]:
    """Every row of ``cursor`` as a ``kind`` Struct, by column name; the ``json`` columns hold
    JSON text, decoded (a NULL one is left out: the Struct's default applies)."""
    names = [column[0] for column in cursor.description]
    return [_convert(names, row, kind, json) for row in cursor.fetchall()]


def row_as(cursor: Cursor, kind: type[T], *, json: tuple[str, ...] = ()) -> T | None:
    """The first row of ``cursor`` as a ``kind`` Struct (see ``rows_as``), or None."""
    row = cursor.fetchone()
    if row is None:
        return None
    return _convert([column[0] for column in cursor.description], row, kind, json)


def _convert(names: list[str], row: Sequence[Any], kind: type[T], json: tuple[str, ...]) -> T:
    fields = dict(zip(names, row, strict=True))
    for name in json:
        text = fields.pop(name)
        if text:
            fields[name] = msgspec.json.decode(text)
    return msgspec.convert(fields, kind)


def marks(values: Sequence[object]) -> str:
    """One ``?`` per value, for an IN list."""
    return ", ".join("?" * len(values))
