"""JSON request bodies that cannot exhaust the stack: Litestar's ``Request.json`` decodes the
body to plain values (for ``data: dict[str, Any]`` in POST /api/jobs), and msgspec raises
RecursionError on a body nested about a thousand levels deep. Here that is a 400 naming the
field, not a 500."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException, SerializationException

from receiver import limits


class BoundedRequest(Request[Any, Any, Any]):
    """The app's request class (``Litestar(request_class=...)``)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException(detail=too_deep_detail(await self.body())) from None
        except SerializationException as exc:  # also where a hook reads it before Litestar does
            raise ClientException(str(exc)) from exc


def too_deep_detail(body: bytes) -> str:
    depth, field = limits.nesting(body)
    where = "The body" if field is None else f"{field}:"
    return (
        f"{where} nests {depth} levels deep, too deep to decode (custom_data may nest at most "
        f"{limits.MAX_CUSTOM_DATA_DEPTH} levels)"
    )
