"""The Litestar app factory: every route, guard, error handler and the lifespan in one place."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig

from receiver import __version__, preflight, redact
from receiver.artifacts import LogFetcher
from receiver.callbacks import CallbackIntake
from receiver.config import Config, find_config, load_config
from receiver.jobs import Submission
from receiver.live import LiveResults, both, closed_on_stop
from receiver.logs import capture_process_output, get_logger
from receiver.logs import configure as configure_logs
from receiver.metrics import Metrics
from receiver.notify.worker import DeliveryWorker
from receiver.poller import start_poller
from receiver.providers import configured
from receiver.providers.qualitymax import QualityMax
from receiver.record import RecordedHook, Recorder
from receiver.retention import Retention
from receiver.sender import Sender
from receiver.server import die_with_parent
from receiver.services import DEPENDENCIES, Services
from receiver.store import open_store, results
from receiver.timeouts import start_watcher
from receiver.web.api import JobsController, ResultsController
from receiver.web.artifacts import artifact
from receiver.web.auth import bearer_guard
from receiver.web.body import BoundedRequest
from receiver.web.callbacks import NOT_CONFIGURED, CallbacksFirst, take_callback
from receiver.web.dashboard.assets import (
    SCHEMA_PAGE,
    compression_config,
    csrf_config,
    static_files,
    template_config,
)
from receiver.web.dashboard.routes import dashboard_router
from receiver.web.deadlines import body_deadline
from receiver.web.deliveries import DeliveriesController
from receiver.web.errors import EXCEPTION_HANDLERS, count_server_errors, error_answers
from receiver.web.flaky import FlakyController
from receiver.web.health import health, metrics
from receiver.web.jobs import rerun_job, submit_handler
from receiver.web.openapi import ErrorBodySchema, LayeredResponses, layered

# The answers of every route under /api, and of every route at all, in the OpenAPI document.
API_ERRORS: Final = error_answers(
    {
        400: "A parameter or the body is not valid; `detail` names it",
        401: "Missing or wrong bearer token, or the API is closed (RECEIVER_API_TOKEN unset)",
    }
)
EVERY_ROUTE_ERRORS: Final = error_answers({500: "Internal error; the service log has the cause"})

log = get_logger("receiver.app")


def create_app(config: Config) -> Litestar:
    """The service for ``config``: the store opens and closes with the app's lifespan."""
    router = preflight.check(config)  # what serve checked; a wrong route stops start-up here

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        database = open_store(config.db_path)
        database.check_writable()  # a read-only file opens quietly: refuse it here
        providers = configured(config)
        qualitymax = providers.get(QualityMax.name)
        fetch_logs = isinstance(qualitymax, QualityMax) and bool(qualitymax.settings.api_key)
        recorder = Recorder(router, config.triage, fetch_logs=fetch_logs)
        metrics = Metrics()
        worker = DeliveryWorker(database, config, metrics=metrics)
        submission = Submission(database, config, providers)
        live = LiveResults()
        # After each commit that stored a result: wake the worker, tell the live pages. On
        # PostgreSQL the live pages hear every instance's results from the database instead.
        on_recorded: RecordedHook = worker.recorded
        if not database.listen(results.RESULTS_CHANNEL, live.publish_id):
            on_recorded = both(worker.recorded, live.publish)
        services = app.state.services = Services(
            config=config,
            store=database,
            intake=CallbackIntake(
                database, config.qualitymax.webhook_secrets, recorder, on_recorded=on_recorded
            ),
            metrics=metrics,
            worker=worker,
            submission=submission,
            providers=providers,
            live=live,
        )
        await worker.start()
        # Jobs of providers that do not call back: polled until they end.
        services.poller = start_poller(
            providers.values(), database, recorder, on_recorded=on_recorded
        )
        if services.poller is not None:
            submission.on_polled = services.poller.wake
        # Jobs over a provider's rate limit: sent, oldest first, when the limit allows.
        sender = Sender(submission, providers.values())
        submission.on_queued = sender.wake
        sender.start()
        # Failed QualityMax tests' logs, fetched after their result is stored.
        fetcher = None
        if fetch_logs and isinstance(qualitymax, QualityMax):
            fetcher = LogFetcher(database, qualitymax, on_refreshed=worker.wake)
            fetcher.start()
        # Jobs submitted through receiver whose result never came: `timeout` results.
        timeouts = start_watcher(config, database, recorder, on_recorded)
        retention = Retention(database, config.retention)
        retention.start()
        log.info("service.started", db=redact.url(config.db_path), config=config.source)
        if not config.qualitymax.webhook_secrets:
            log.warning("callbacks.not_configured", answer=503, hint=NOT_CONFIGURED)
        # What start-up made lives as long as the service: out of the collector's way, so a
        # full collection does not walk it (measured: ~45 ms pauses, the dashboard's p99).
        gc.freeze()
        try:
            with closed_on_stop(live):  # open event streams must not hold up a stop
                yield
        finally:
            live.close()  # the dashboard's event streams end
            await retention.stop()
            await timeouts.stop()
            await sender.stop()
            if fetcher is not None:
                await fetcher.stop()
            if services.poller is not None:
                await services.poller.stop()
            await worker.stop()
            for provider in providers.values():
                await provider.aclose()
            database.close()
            log.info("service.stopped")

    api = Router(
        "/",
        route_handlers=[
            ResultsController,
            JobsController,
            submit_handler(),
            rerun_job,
            artifact,
            DeliveriesController,
            FlakyController,
        ],
        guards=[bearer_guard],
        opt=layered(API_ERRORS),
    )
    return Litestar(
        route_handlers=[take_callback, api, health, metrics, dashboard_router(), static_files()],
        dependencies=DEPENDENCIES,
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[count_server_errors],
        plugins=[LayeredResponses(), ErrorBodySchema()],
        opt=layered(EVERY_ROUTE_ERRORS),
        middleware=[body_deadline(config.server.body_timeout_seconds)],
        request_max_body_size=config.server.max_body_bytes,
        request_class=BoundedRequest,
        openapi_config=OpenAPIConfig(
            title="receiver",
            version=__version__,
            path="/schema",
            render_plugins=[SCHEMA_PAGE],  # Redoc, served from /static: no CDN
        ),
        template_config=template_config(),
        csrf_config=csrf_config(config),
        compression_config=compression_config(),
        debug=False,
        logging_config=None,
    )


def app_from_environment() -> CallbacksFirst:
    """The factory ASGI servers call: config from ``RECEIVER_CONFIG`` and the environment.

    Callback POSTs are answered in front of Litestar (see ``CallbacksFirst``).
    """
    configure_logs()
    capture_process_output()
    die_with_parent()
    return CallbacksFirst(create_app(load_config(find_config(None, os.environ))))
