"""``/health`` for load balancers and ``/metrics`` for Prometheus: both open, both cheap."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from receiver.metrics import CONTENT_TYPE
from receiver.services import services_of
from receiver.web.errors import error_response


@get("/health", sync_to_thread=True, tags=["service"], summary="Whether the store answers")
def health(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        ok = services_of(request).store.ping()
    except Exception as exc:
        return error_response(503, f"The store does not answer: {exc}")
    if not ok:
        return error_response(503, "The store's writer is not running")
    return Response({"status": "ok"})


@get("/metrics", sync_to_thread=False, tags=["service"], summary="Prometheus text")
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = services_of(request)
    services.metrics.write_batches.set(services.store.batches)
    services.metrics.batched_writes.set(services.store.batched_writes)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
