"""What a running service holds: built in the app's lifespan, kept on ``app.state.services``,
and handed to handlers by Litestar's dependency injection (``DEPENDENCIES``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from litestar.datastructures import State
from litestar.di import Provide

from receiver.callbacks import CallbackIntake
from receiver.config import Config
from receiver.jobs import Submission
from receiver.live import LiveResults
from receiver.metrics import Metrics
from receiver.notify.worker import DeliveryWorker
from receiver.poller import Poller
from receiver.providers.base import Provider
from receiver.store import Store


@dataclass
class Services:
    config: Config
    store: Store
    intake: CallbackIntake
    metrics: Metrics
    worker: DeliveryWorker
    submission: Submission
    providers: dict[str, Provider] = field(default_factory=dict)
    poller: Poller | None = None  # None when no configured provider is polled
    live: LiveResults | None = None  # new results for the dashboard's live pages


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def _store(state: State) -> Store:
    return _services(state).store


def _config(state: State) -> Config:
    return _services(state).config


def _metrics(state: State) -> Metrics:
    return _services(state).metrics


def _worker(state: State) -> DeliveryWorker:
    return _services(state).worker


def _submission(state: State) -> Submission:
    return _services(state).submission


DEPENDENCIES: Final = {
    "services": Provide(_services, sync_to_thread=False),
    "store": Provide(_store, sync_to_thread=False),
    "config": Provide(_config, sync_to_thread=False),
    "metrics": Provide(_metrics, sync_to_thread=False),
    "worker": Provide(_worker, sync_to_thread=False),
    "submission": Provide(_submission, sync_to_thread=False),
}
