"""/metrics: Prometheus' content type, and every 5xx the service answers is counted.

A 5xx is provoked for real: another connection to the service's SQLite file adds a trigger that
fails every insert into ``callbacks``, as a full or failing disk would fail the write. (Making
the file read-only does not do it: the service's connection is already open, and root, which
runs these tests, writes through permissions anyway.)
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from litestar.testing import TestClient

from receiver.metrics import CONTENT_TYPE
from receiver.process import ServiceProcess
from receiver.store.sqlite import SqliteStore
from tests.conftest import callback_body, signed

URL = "/callbacks/qualitymax"


@contextmanager
def callbacks_cannot_be_stored(db_path: str) -> Iterator[None]:
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        conn.execute(
            "CREATE TRIGGER fail_callbacks BEFORE INSERT ON callbacks "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END"
        )
    try:
        yield
    finally:
        with sqlite3.connect(db_path, isolation_level=None) as conn:
            conn.execute("DROP TRIGGER fail_callbacks")


def sample(metrics_text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", metrics_text, re.MULTILINE)
    assert match, f"{series} is not in /metrics"
    return float(match.group(1))


def test_metrics_are_prometheus_text_with_one_charset(service: ServiceProcess) -> None:
    answer = httpx.get(f"{service.url}/metrics")
    assert (
        answer.headers["content-type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    )
    assert sample(answer.text, 'receiver_http_server_errors_total{status="500"}') == 0


def test_a_callback_the_service_fails_on_is_answered_500_and_counted(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    body = callback_body()
    with callbacks_cannot_be_stored(env["RECEIVER_DB"]):
        failed = httpx.post(f"{service.url}{URL}", content=body, headers=signed(body))
    assert failed.status_code == 500
    assert failed.json() == {"detail": "Internal error; the service log has the cause"}
    text = httpx.get(f"{service.url}/metrics").text
    assert sample(text, 'receiver_callbacks_total{outcome="error"}') == 1
    assert sample(text, 'receiver_http_server_errors_total{status="500"}') == 1
    # The same callback once the store writes again: taken, and nothing more counted as failed.
    assert httpx.post(f"{service.url}{URL}", content=body, headers=signed(body)).status_code == 200
    text = httpx.get(f"{service.url}/metrics").text
    assert sample(text, 'receiver_callbacks_total{outcome="accepted"}') == 1
    assert sample(text, 'receiver_http_server_errors_total{status="500"}') == 1


def test_5xx_answered_through_litestar_are_counted(
    client: TestClient[Any], env: dict[str, str]
) -> None:
    # In process, without CallbacksFirst in front: the callback fails inside Litestar's router.
    body = callback_body()
    with callbacks_cannot_be_stored(env["RECEIVER_DB"]):
        assert client.post(URL, content=body, headers=signed(body)).status_code == 500
    services = client.app.state.services
    running, services.store = services.store, SqliteStore(services.config.db_path)  # not open
    try:
        assert client.get("/health").status_code == 503
    finally:
        services.store = running
    text = client.get("/metrics").text
    assert sample(text, 'receiver_callbacks_total{outcome="error"}') == 1
    assert sample(text, 'receiver_http_server_errors_total{status="500"}') == 1
    assert sample(text, 'receiver_http_server_errors_total{status="503"}') == 1
