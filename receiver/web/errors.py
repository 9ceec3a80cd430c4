"""Every error answer has one shape, ``{"detail": "..."}``; tracebacks are logged only for 5xx.

The shape is also the OpenAPI document's ``ErrorBody``: ``error_answers`` declares it for the
statuses a route or layer can give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Message, Scope

from receiver.logs import get_logger
from receiver.providers.errors import ProviderError
from receiver.store import NotFound

log = get_logger("receiver.web")


class ErrorBody(msgspec.Struct):
    """Every error answer: what was wrong and what to do, in one sentence."""

    detail: str


# What a route that reads a body can answer besides its own errors.
BODY_ERRORS: Final = {
    408: "The body did not arrive in time",
    413: "The body is over [server] max_body_bytes",
}


def error_answers(descriptions: Mapping[int, str]) -> dict[int, ResponseSpec]:
    """The OpenAPI answers for these statuses, each an ``ErrorBody``."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description=text, generate_examples=False)
        for status, text in descriptions.items()
    }


def error_response(
    status_code: int, detail: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response({"detail": detail}, status_code=status_code, headers=headers)


def http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's refusals, with what to do where its own words do not say it."""
    detail = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        detail = f"{detail}: {_describe_extra(exc.extra)}"
    elif isinstance(exc, RequestEntityTooLarge):
        detail = too_large(request.app.state.services.config.server.max_body_bytes)
    elif isinstance(exc.__cause__, SerializationException):
        detail = f"The body is not valid JSON ({detail}): send one JSON document"
    return error_response(exc.status_code, detail, exc.headers)


def too_large(limit: int) -> str:
    return (
        f"The body is over {limit} bytes; raise [server] max_body_bytes in the config "
        "if such requests are expected"
    )


def not_found(_: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return error_response(404, str(exc))


def provider_error(_: Request[Any, Any, Any], exc: ProviderError) -> Response[Any]:
    """A provider's refusal or failure, with the status its kind says; 503 says when to retry."""
    headers = None
    if exc.http_status == 503:
        headers = {"Retry-After": str(max(1, round(exc.retry_after or 60)))}
    return error_response(exc.http_status, str(exc), headers)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, report_internal(request.url.path, exc))


def report_internal(path: str, exc: Exception) -> str:
    """Log an unexpected error with its traceback; the detail the client is told."""
    log.exception("http.error", path=path, error=type(exc).__name__)
    return "Internal error; the service log has the cause"


def count_server_errors(message: Message, scope: Scope) -> None:
    """``before_send``: every 5xx Litestar answers is counted in /metrics (callbacks served in
    front of Litestar count their own)."""
    if message["type"] != "http.response.start":
        return
    status = message["status"]
    if status < 500:
        return
    services = getattr(scope["litestar_app"].state, "services", None)  # None before start-up
    if services is not None:
        services.metrics.count_server_error(status)


def _describe_extra(extra: Any) -> str:
    """Litestar's ``extra`` (``[{"key", "message", "source"}]``) as ``key: message; ...``."""
    if isinstance(extra, list):
        return "; ".join(_describe_item(item) for item in extra)
    if isinstance(extra, dict):
        return _describe_item(extra)
    return str(extra)


def _describe_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = item.get("key") or item.get("source") or ""
    message = str(item.get("message", ""))
    return f"{where}: {message}" if where and message else (where or message or str(item))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception,
    NotFound: not_found,
    ProviderError: provider_error,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error,
}
