"""The Litestar app factory: every route, guard, error handler and the lifespan in one place."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig

from receiver import __version__, preflight, redact
from receiver.callbacks import CallbackIntake
from receiver.config import Config, config_path, load_config
from receiver.logs import configure as configure_logs
from receiver.logs import get_logger
from receiver.metrics import Metrics
from receiver.notify.worker import DeliveryWorker
from receiver.poller import start_poller
from receiver.record import Recorder
from receiver.retention import Retention
from receiver.server import die_with_parent
from receiver.services import Services
from receiver.store import open_store
from receiver.web.api import JobsController, ResultsController
from receiver.web.auth import bearer_guard
from receiver.web.body import BoundedRequest
from receiver.web.callbacks import NOT_CONFIGURED, CallbacksFirst, take_callback
from receiver.web.deliveries import DeliveriesController
from receiver.web.errors import EXCEPTION_HANDLERS
from receiver.web.flaky import FlakyController
from receiver.web.health import health, metrics
from receiver.web.jobs import SubmitController

log = get_logger("receiver.app")


def create_app(config: Config) -> Litestar:
    """The service for ``config``: the store opens and closes with the app's lifespan."""
    router = preflight.check(config)  # what serve checked; a wrong route stops start-up here

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        database = open_store(config.db_path)
        database.check_writable()  # a read-only file opens quietly: refuse it here
        recorder = Recorder(router, config.triage)
        worker = DeliveryWorker(database, config)
        services = app.state.services = Services(
            config=config,
            store=database,
            intake=CallbackIntake(
                database,
                config.qualitymax.webhook_secrets,
                recorder,
                on_recorded=worker.recorded,
            ),
            metrics=Metrics(),
            worker=worker,
        )
        await worker.start()
        # Qualigate/QualGent jobs: polled until they end; only when one of them has a key.
        services.poller = start_poller(config, database, recorder, on_recorded=worker.recorded)
        retention = Retention(database, config.retention)
        retention.start()
        log.info("service.started", db=redact.url(config.db_path), config=config.source)
        if not config.qualitymax.webhook_secrets:
            log.warning("callbacks.not_configured", answer=503, hint=NOT_CONFIGURED)
        try:
            yield
        finally:
            await retention.stop()
            if services.poller is not None:
                await services.poller.stop()
            await worker.stop()
            database.close()
            log.info("service.stopped")

    api = Router(
        "/",
        route_handlers=[
            ResultsController,
            JobsController,
            SubmitController,
            DeliveriesController,
            FlakyController,
        ],
        guards=[bearer_guard],
    )
    return Litestar(
        route_handlers=[take_callback, api, health, metrics],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=config.server.max_body_bytes,
        request_class=BoundedRequest,
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
