"""receiver: take signed test-result callbacks, keep them in SQLite, route them to people."""

__version__ = "0.1.0"
