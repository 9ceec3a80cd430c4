"""``/health`` for load balancers and ``/metrics`` for Prometheus: both open, both cheap."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException

from receiver import clock
from receiver.metrics import MEDIA_TYPE, Metrics
from receiver.store import Store, deliveries
from receiver.web.errors import error_answers


class Healthy(msgspec.Struct):
    status: Literal["ok"]


@get(
    "/health",
    tags=["service"],
    summary="Whether the store answers and takes writes",
    responses=error_answers(
        {503: "The store cannot write (a read-only file, a full disk) or does not answer"}
    ),
)
async def health(store: NamedDependency[Store]) -> Healthy:
    try:
        problem = await store.probe()
    except Exception as exc:  # whatever it is, the load balancer must hear "not ok"
        problem = f"The store does not answer: {exc}"
    if problem is not None:
        raise ServiceUnavailableException(problem)
    return Healthy(status="ok")


@get(
    "/metrics",
    sync_to_thread=True,
    tags=["service"],
    summary="Prometheus text",
    media_type=MEDIA_TYPE,
)
def metrics(store: NamedDependency[Store], metrics: NamedDependency[Metrics]) -> Response[bytes]:
    now = dt.datetime.now(dt.UTC)
    oldest = store.read(deliveries.oldest_pending)
    metrics.set_oldest_pending(
        {key: (now - clock.parse(made)).total_seconds() for key, made in oldest.items()}
    )
    metrics.write_batches.set(store.batches)
    metrics.batched_writes.set(store.batched_writes)
    # Litestar adds "; charset=utf-8" to every text/* media type.
    return Response(metrics.render(), media_type=MEDIA_TYPE)
