"""Query and path parameters shared by the API's listings."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page (1-500)")]
Cursor = Annotated[
    int | None,
    QueryParameter(description="next_cursor of the previous page: items older than it"),
]
