"""A request's body must arrive within ``[server] body_timeout_seconds`` of its headers.

granian bounds the headers (``header_timeout_seconds``) but not the body: a client that sends
``Content-Length: 100`` and one byte would hold its connection for ever. The deadline is one
total for the whole body, not per read, so trickling a byte at a time does not stretch it.
It ends once the body is whole: a long response (a streamed one included) is never cut.

The callback route reads its body itself (receiver.web.callbacks) under the same deadline;
this middleware covers every route Litestar serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

REQUEST_TIMEOUT: Final = 408
# The client is mid-body: the connection cannot carry another request, so it ends with this one.
CLOSE: Final = {"Connection": "close"}


def body_too_slow(seconds: float) -> str:
    """The detail of the 408 answer."""
    return (
        f"The request body did not arrive within {seconds:g} s of its headers, so the "
        "connection is closed. Send the whole body at once; the limit is [server] "
        "body_timeout_seconds"
    )


def body_deadline(seconds: float) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar middleware: the body of each request must arrive within ``seconds``."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def within_deadline(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP and _has_body(scope):
                deadline = asyncio.get_running_loop().time() + seconds
                receive = _receive_until(receive, deadline, seconds)
            await app(scope, receive, send)

        return within_deadline

    return middleware


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def _receive_until(receive: Receive, deadline: float, seconds: float) -> Receive:
    """``receive`` under the deadline until the body is whole, then ``receive`` as it is."""
    whole = False

    async def receive_in_time() -> ReceiveMessage:
        nonlocal whole
        if whole:
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise HTTPException(
                status_code=REQUEST_TIMEOUT, detail=body_too_slow(seconds), headers=CLOSE
            ) from None
        whole = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return receive_in_time
