"""The outbox under ``/api/deliveries``: list (filter ``state``) and revive one; bearer-protected.

Targets are shown masked: the full URL can hold a secret and never leaves the store.
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from receiver import views
from receiver.notify.worker import DeliveryWorker
from receiver.store import Store, deliveries
from receiver.web.errors import error_answers
from receiver.web.params import Cursor, Limit, RowId

State = Annotated[
    Literal["pending", "sent", "dead"] | None,
    # ``state`` is reserved for handler arguments in Litestar; the query key stays ``state``.
    QueryParameter(name="state", description="Only deliveries in this state"),
]


class DeliveriesController(Controller):
    path = "/api/deliveries"
    tags = ["deliveries"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @get("/", sync_to_thread=True, summary="Deliveries, newest first")
    def list_deliveries(
        self,
        store: NamedDependency[Store],
        wanted: State = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> views.DeliveryPage:
        where = views.DeliveryFilter(state=wanted, limit=limit, before=cursor)
        return store.read(lambda tx: views.delivery_page(tx, where))

    @post(
        "/{delivery_id:int}/retry",
        status_code=200,
        summary="Send a delivery again",
        description="Back to pending, due now, with a fresh attempt budget (sent or dead alike).",
        responses=error_answers({404: "No delivery with this id"}),
    )
    async def retry(
        self,
        store: NamedDependency[Store],
        worker: NamedDependency[DeliveryWorker],
        delivery_id: RowId,
    ) -> views.DeliveryView:
        view = await store.write(lambda tx: deliveries.redeliver(tx, delivery_id))
        worker.wake()
        return view
