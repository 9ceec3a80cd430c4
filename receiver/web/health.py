"""``/health`` for load balancers and ``/metrics`` for Prometheus: both open, both cheap."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import ServiceUnavailableException

from receiver.metrics import MEDIA_TYPE
from receiver.services import services_of
from receiver.web.errors import error_answers


class Healthy(msgspec.Struct):
    status: Literal["ok"]


@get(
    "/health",
    sync_to_thread=True,
    tags=["service"],
    summary="Whether the store answers",
    responses=error_answers({503: "The store does not answer or its writer is not running"}),
)
def health(request: Request[Any, Any, Any]) -> Healthy:
    try:
        ok = services_of(request).store.ping()
    except Exception as exc:
        raise ServiceUnavailableException(f"The store does not answer: {exc}") from None
    if not ok:
        raise ServiceUnavailableException("The store's writer is not running")
    return Healthy(status="ok")


@get(
    "/metrics",
    sync_to_thread=False,
    tags=["service"],
    summary="Prometheus text",
    media_type=MEDIA_TYPE,
)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = services_of(request)
    services.metrics.write_batches.set(services.store.batches)
    services.metrics.batched_writes.set(services.store.batched_writes)
    # Litestar adds "; charset=utf-8" to every text/* media type.
    return Response(services.metrics.render(), media_type=MEDIA_TYPE)
