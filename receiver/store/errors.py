"""The store's typed errors; only the CLI and the web layer turn them into words for people."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be opened or written; the message says which and what to do."""


class NotFound(StoreError):
    """No row with that id."""


class NoDatabase(StoreError):
    """A command that only reads (or revives) was pointed at a database that does not exist."""


class NotWritable(StoreError):
    """The database answers but refuses writes: a read-only file or folder, or a full disk."""
