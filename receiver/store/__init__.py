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
from typing import Protocol, TypeVar

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


def open_store(url: str, *, create: bool = True) -> Store:
    """The store at ``url`` (a SQLite file path), opened and migrated.

    ``create=False``: for commands that only read or revive: refuse a database that does not
    exist (NoDatabase) instead of making an empty one.
    """
    return SqliteStore(url).open(create=create)
