"""``/health`` for load balancers and ``/metrics`` for Prometheus: both open, both cheap."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get

from receiver import clock
from receiver.metrics import CONTENT_TYPE
from receiver.services import services_of
from receiver.store import deliveries
from receiver.web.errors import error_response


@get(
    "/health",
    tags=["service"],
    summary="Whether the store answers and takes writes",
    description='200 `{"status": "ok"}`; 503 with the reason when the store cannot '
    "write (a read-only file, a full disk) or does not answer.",
)
async def health(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        problem = await services_of(request).store.probe()
    except Exception as exc:  # whatever it is, the load balancer must hear "not ok"
        problem = f"The store does not answer: {exc}"
    if problem is not None:
        return error_response(503, problem)
    return Response({"status": "ok"})


@get("/metrics", sync_to_thread=True, tags=["service"], summary="Prometheus text")
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = services_of(request)
    now = dt.datetime.now(dt.UTC)
    oldest = services.store.read(deliveries.oldest_pending)
    services.metrics.set_oldest_pending(
        {key: (now - clock.parse(made)).total_seconds() for key, made in oldest.items()}
    )
    services.metrics.write_batches.set(services.store.batches)
    services.metrics.batched_writes.set(services.store.batched_writes)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
