"""The store: the only package that speaks SQL.

Its seam is small, so that another backend can provide it: ``open_store(url)`` gives a ``Store``
(``write`` a function in a shared transaction and return once it is durable, ``write_sync``,
``read``, ``probe``), and one query module per thing stored (``callbacks``, ``jobs``,
``results``, ``deliveries``, ``groups``, ``retention``, ``test_history``) whose functions take
the ``Tx`` the store hands a function, and return plain Structs. Schema changes are numbered SQL
migrations (``migrations/``), per backend only where the SQL must differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

from receiver.store.errors import NoDatabase, NotFound, NotWritable, StoreError
from receiver.store.sqlite import SqliteStore
from receiver.store.tx import Tx

T = TypeVar("T")

__all__ = [
    "NoDatabase",
    "NotFound",
    "NotWritable",
    "Store",
    "StoreError",
    "Tx",
    "open_store",
]


@runtime_checkable  # Litestar checks what a dependency provides against its annotation
class Store(Protocol):
    """What the service and the CLI need of a database, whichever backend holds it."""

    dialect: str
    batches: int
    batched_writes: int
    queued_writes: int

    def open(self, *, create: bool = True) -> Store: ...

    def close(self) -> None: ...

    async def write(self, fn: Callable[[Tx], T]) -> T: ...

    def write_sync(self, fn: Callable[[Tx], T]) -> T: ...

    def read(self, fn: Callable[[Tx], T]) -> T: ...

    async def probe(self) -> str | None: ...

    def check_writable(self) -> None: ...

    def listen(self, channel: str, callback: Callable[[str], None]) -> bool:
        """Call ``callback`` with the payload when any instance commits a notification on
        ``channel``; False when the backend has no such thing (SQLite: one process writes,
        whose own hooks already say what it committed)."""
        ...


POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def is_postgresql(url: str) -> bool:
    return url.startswith(POSTGRESQL_SCHEMES)


def open_store(url: str, *, create: bool = True) -> Store:
    """The store at ``url``, opened and migrated: ``postgresql://…`` for PostgreSQL, anything
    else a SQLite file path.

    ``create=False``: for commands that only read or revive: refuse a database that does not
    exist (NoDatabase) instead of making an empty one.
    """
    if is_postgresql(url):
        from receiver.store.postgres import PostgresStore  # psycopg only where it is used

        return PostgresStore(url).open(create=create)
    return SqliteStore(url).open(create=create)
