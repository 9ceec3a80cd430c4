"""What a running service holds: built in the app's lifespan, kept on ``app.state.services``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from receiver.callbacks import CallbackIntake
from receiver.config import Config
from receiver.live import LiveResults
from receiver.metrics import Metrics
from receiver.notify.worker import DeliveryWorker
from receiver.poller import Poller
from receiver.store import Store


@dataclass
class Services:
    config: Config
    store: Store
    intake: CallbackIntake
    metrics: Metrics
    worker: DeliveryWorker | None = None
    poller: Poller | None = None  # Qualigate/QualGent jobs; None when neither is configured
    live: LiveResults | None = None  # new results for the dashboard's live pages


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services
