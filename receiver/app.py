"""The Litestar app factory: every route, guard, error handler and the lifespan in one place."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig

from receiver import __version__, routing
from receiver.callbacks import CallbackIntake
from receiver.config import Config, config_path, load_config, require_webhook_secret
from receiver.jobs import report_link
from receiver.logs import configure as configure_logs
from receiver.logs import get_logger
from receiver.metrics import Metrics
from receiver.notify.worker import DeliveryWorker
from receiver.poller import start_poller
from receiver.server import die_with_parent
from receiver.services import Services
from receiver.store import Store
from receiver.web.api import JobsController, ResultsController
from receiver.web.auth import bearer_guard
from receiver.web.callbacks import CallbacksFirst, take_callback
from receiver.web.deadlines import body_deadline
from receiver.web.deliveries import DeliveriesController
from receiver.web.errors import EXCEPTION_HANDLERS
from receiver.web.health import health, metrics
from receiver.web.jobs import SubmitController

log = get_logger("receiver.app")


def create_app(config: Config) -> Litestar:
    """The service for ``config``: the store opens and closes with the app's lifespan."""
    require_webhook_secret(config)
    router = routing.Router.from_config(config)  # a wrong route stops start-up here

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        database = Store(config.db_path).open()
        worker = DeliveryWorker(database, router, config)
        app.state.services = Services(
            config=config,
            store=database,
            intake=CallbackIntake(
                database,
                config.qualitymax.webhook_secrets,
                report_url=report_link(config),
                on_results=worker.record_many,
            ),
            metrics=Metrics(),
            worker=worker,
        )
        await worker.start()
        # Qualigate/QualGent jobs: polled until they end; only when one of them has a key.
        poller = app.state.services.poller = start_poller(config, database, on_result=worker.record)
        log.info("service.started", db=config.db_path, config=config.source)
        try:
            yield
        finally:
            if poller is not None:
                await poller.stop()
            await worker.stop()
            database.close()
            log.info("service.stopped")

    api = Router(
        "/",
        route_handlers=[ResultsController, JobsController, SubmitController, DeliveriesController],
        guards=[bearer_guard],
    )
    return Litestar(
        route_handlers=[take_callback, api, health, metrics],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[body_deadline(config.server.body_timeout_seconds)],
        request_max_body_size=config.server.max_body_bytes,
        openapi_config=OpenAPIConfig(title="receiver", version=__version__, path="/schema"),
        debug=False,
        logging_config=None,
    )


def app_from_environment() -> CallbacksFirst:
    """The factory ASGI servers call: config from ``RECEIVER_CONFIG`` and the environment.

    Callback POSTs are answered in front of Litestar (see ``CallbacksFirst``).
    """
    configure_logs()
    die_with_parent()
    return CallbacksFirst(create_app(load_config(config_path(None, os.environ))))
