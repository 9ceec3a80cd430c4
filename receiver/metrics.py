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
)

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
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

    def count_callback(self, outcome: str) -> None:
        self._callback_counts[outcome].inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
