"""Every error answer has one shape, ``{"detail": "..."}``; tracebacks are logged only for 5xx."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from receiver.logs import get_logger
from receiver.providers.errors import ProviderError
from receiver.store import NotFound

log = get_logger("receiver.web")


def error_response(
    status_code: int, detail: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response({"detail": detail}, status_code=status_code, headers=headers)


def http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        detail = f"{detail}: {_describe_extra(exc.extra)}"
    return error_response(exc.status_code, detail, exc.headers)


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


def _describe_extra(extra: Any) -> str:
    if isinstance(extra, list):
        parts = []
        for item in extra:
            if isinstance(item, dict):
                where = item.get("key") or item.get("source") or ""
                parts.append(f"{where} {item.get('message', '')}".strip())
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(extra)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception,
    NotFound: not_found,
    ProviderError: provider_error,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error,
}
