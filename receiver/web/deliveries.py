"""The outbox under ``/api/deliveries``: list (filter ``state``) and revive one; bearer-protected.

Targets are shown masked: the full URL can hold a secret and never leaves the store.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter

from receiver import store
from receiver.services import services_of
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
        request: Request[Any, Any, Any],
        wanted: State = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> store.DeliveryPage:
        where = store.DeliveryFilter(state=wanted, limit=limit, before=cursor)
        return services_of(request).store.read(lambda db: store.list_deliveries(db, where))

    @post(
        "/{delivery_id:int}/retry",
        status_code=200,
        summary="Send a delivery again",
        description="Back to pending, due now, with a fresh attempt budget (sent or dead alike).",
        responses=error_answers({404: "No delivery with this id"}),
    )
    async def retry(
        self, request: Request[Any, Any, Any], delivery_id: RowId
    ) -> store.DeliveryView:
        services = services_of(request)
        view = await services.store.write(lambda db: store.redeliver(db, delivery_id))
        if services.worker is not None:
            services.worker.wake()
        return view
