"""The API is closed unless ``RECEIVER_API_TOKEN`` is set, and then open only to that bearer."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="receiver"'}


def bearer_guard(connection: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
    expected: str | None = connection.app.state.services.config.api_token
    if not expected:
        raise NotAuthorizedException(
            "The API is closed: set RECEIVER_API_TOKEN on the service, "
            "then send 'Authorization: Bearer <token>'",
            headers=CHALLENGE,
        )
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise NotAuthorizedException(
            "Missing or wrong bearer token: send 'Authorization: Bearer <RECEIVER_API_TOKEN>'",
            headers=CHALLENGE,
        )
