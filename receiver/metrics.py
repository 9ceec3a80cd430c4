"""Prometheus metrics of one app instance (its own registry, so tests can run several apps)."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CALLBACK_OUTCOMES: Final = (
    "accepted",
    "duplicate",
    "unsigned",
    "too_large",
    "too_slow",
    "rejected",
    "error",
    "not_configured",  # no webhook secret: a polling-only service answers 503
)

DELIVERY_OUTCOMES: Final = ("sent", "failed", "dead")  # per attempt; dead: the delivery gave up

# Prometheus' text format; Litestar appends "; charset=utf-8", making the served CONTENT_TYPE.
MEDIA_TYPE: Final = "text/plain; version=0.0.4"
CONTENT_TYPE: Final = f"{MEDIA_TYPE}; charset=utf-8"
INGEST_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.callbacks = Counter(
            "receiver_callbacks",
            f"Callbacks received, by outcome ({', '.join(CALLBACK_OUTCOMES)})",
            ["outcome"],
            registry=self.registry,
        )
        # Bound once: looking a labelled child up took longer than counting on it, per callback.
        self._callback_counts = {
            outcome: self.callbacks.labels(outcome) for outcome in CALLBACK_OUTCOMES
        }
        self.ingest_seconds = Histogram(
            "receiver_callback_ingest_seconds",
            "Time from the request's body being read to the answer, commit included",
            buckets=INGEST_BUCKETS,
            registry=self.registry,
        )
        self.write_batches = Gauge(
            "receiver_store_write_batches",
            "Transactions committed by the writer (several callbacks may share one)",
            registry=self.registry,
        )
        self.batched_writes = Gauge(
            "receiver_store_batched_writes",
            "Writes committed by the writer, in all batches",
            registry=self.registry,
        )

        self.server_errors = Counter(
            "receiver_http_server_errors",
            "Answers with a 5xx status, by status (callbacks and every other route)",
            ["status"],
            registry=self.registry,
        )
        self.server_errors.labels("500")  # there at 0, so that rates over it work from the start
        # Per target, named by its route and scheme: a target's URL can hold a secret.
        self.target_deliveries = Counter(
            "receiver_target_deliveries",
            "Delivery attempts per route and target scheme, by outcome: sent, failed (an "
            "attempt that failed, retried or not), dead (a delivery that gave up)",
            ["route", "scheme", "outcome"],
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "receiver_target_oldest_pending_seconds",
            "Age of the oldest pending delivery per route and target scheme",
            ["route", "scheme"],
            registry=self.registry,
        )

    def count_delivery(self, route: str, target: str, ok: bool, state: str) -> None:
        scheme = scheme_of(target)
        self.target_deliveries.labels(route, scheme, "sent" if ok else "failed").inc()
        if state == "dead":
            self.target_deliveries.labels(route, scheme, "dead").inc()

    def set_oldest_pending(self, ages: dict[tuple[str, str], float]) -> None:
        """``ages`` by (route, target URL): the gauge is rebuilt, a drained target drops out."""
        self.oldest_pending.clear()
        by_scheme: dict[tuple[str, str], float] = {}
        for (route, target), age in ages.items():
            key = (route, scheme_of(target))
            by_scheme[key] = max(age, by_scheme.get(key, 0.0))
        for (route, scheme), age in by_scheme.items():
            self.oldest_pending.labels(route, scheme).set(age)

    def count_callback(self, outcome: str) -> None:
        self._callback_counts[outcome].inc()

    def count_server_error(self, status: int) -> None:
        self.server_errors.labels(str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def scheme_of(target: str) -> str:
    """``slackbot``, ``json``, ``mailto``, ``github``: never more of the URL than its scheme."""
    scheme = target.split("://", 1)[0] if "://" in target else "unknown"
    return scheme if scheme.replace("+", "").replace("-", "").isalnum() else "unknown"
