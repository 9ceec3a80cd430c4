"""``/health`` for load balancers and ``/metrics`` for Prometheus: both open, both cheap."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from receiver.metrics import CONTENT_TYPE, Metrics
from receiver.store import Store
from receiver.web.errors import error_response


@get(
    "/health",
    tags=["service"],
    summary="Whether the store answers and takes writes",
    description='200 `{"status": "ok"}`; 503 with the reason when the store cannot '
    "write (a read-only file, a full disk) or does not answer.",
)
async def health(store: NamedDependency[Store]) -> Response[Any]:
    try:
        problem = await store.probe()
    except Exception as exc:  # whatever it is, the load balancer must hear "not ok"
        problem = f"The store does not answer: {exc}"
    if problem is not None:
        return error_response(503, problem)
    return Response({"status": "ok"})


@get("/metrics", sync_to_thread=False, tags=["service"], summary="Prometheus text")
def metrics(store: NamedDependency[Store], metrics: NamedDependency[Metrics]) -> Response[bytes]:
    metrics.write_batches.set(store.batches)
    metrics.batched_writes.set(store.batched_writes)
    return Response(metrics.render(), media_type=CONTENT_TYPE)
