"""Query and path parameters shared by the API's routes, bounded so the store can take them.

An id or cursor is a SQLite INTEGER, a signed 64-bit number: one beyond 2^63-1 made sqlite3
raise OverflowError (a 500), so Litestar refuses it first (400, saying which parameter).
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import PathParameter, QueryParameter

MAX_ID: Final = 2**63 - 1
# Litestar writes ``le`` into the document as a float, which rounds 2^63-1 up to 2^63.
EXACT_MAX: Final = {"maximum": MAX_ID}

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page (1-500)")]
Cursor = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=MAX_ID,
        schema_extra=EXACT_MAX,
        description="next_cursor of the previous page: items older than it",
    ),
]
RowId = Annotated[
    int, PathParameter(ge=1, le=MAX_ID, schema_extra=EXACT_MAX, description="The item's id")
]
