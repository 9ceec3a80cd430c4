"""``/api/deliveries`` and the deliveries of ``/api/results/{id}``, through the real app."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from tests.conftest import callback_body, signed
from tests.notify_helpers import make_config, route
from tests.sinks import HttpSink, always

SECRET_PASSWORD = "s3cr3t-hook-password"


@pytest.fixture
def notifying(sink: HttpSink, tmp_path: Path) -> Iterator[TestClient[Any]]:
    sink.on("/gone", always(404))
    ok = f"json://bot:{SECRET_PASSWORD}@127.0.0.1:{sink.port}/hook"
    config = make_config(tmp_path, route("all", ok, sink.url("/gone")))
    with TestClient(create_app(config)) as client:
        yield client


def eventually(fetch: Callable[[], Any], test: Callable[[Any], bool], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if test(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def post_callback(client: TestClient[Any], **changes: Any) -> int:
    body = callback_body(**changes)
    response = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    assert response.status_code == 200
    result_id: int = response.json()["result_id"]
    return result_id


def test_a_result_shows_its_deliveries_with_targets_masked(
    notifying: TestClient[Any], auth: dict[str, str], sink: HttpSink
) -> None:
    result_id = post_callback(notifying)
    detail = eventually(
        lambda: notifying.get(f"/api/results/{result_id}", headers=auth).json(),
        lambda d: {x["state"] for x in d["deliveries"]} == {"sent", "dead"},
    )
    states = {d["target"]: (d["state"], d["attempts"]) for d in detail["deliveries"]}
    assert states == {
        f"json://bot:****@127.0.0.1:{sink.port}/hook": ("sent", 1),
        f"json://127.0.0.1:{sink.port}/gone": ("dead", 1),
    }
    assert SECRET_PASSWORD not in str(detail)
    assert len(sink.delivered("/hook")) == 1


def test_list_filter_and_retry(
    notifying: TestClient[Any], auth: dict[str, str], sink: HttpSink
) -> None:
    post_callback(notifying)
    dead = eventually(
        lambda: notifying.get("/api/deliveries", params={"state": "dead"}, headers=auth).json(),
        lambda page: len(page["items"]) == 1,
    )
    (item,) = dead["items"]
    assert item["last_error"].startswith("permanent refusal:")
    everything = notifying.get("/api/deliveries", headers=auth).json()
    assert len(everything["items"]) == 2
    assert SECRET_PASSWORD not in str(everything)

    sink.on("/gone", always(200))
    retried = notifying.post(f"/api/deliveries/{item['id']}/retry", headers=auth)
    assert retried.status_code == 200
    assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    sent = eventually(
        lambda: notifying.get("/api/deliveries", params={"state": "sent"}, headers=auth).json(),
        lambda page: len(page["items"]) == 2,
    )
    assert {d["id"] for d in sent["items"]} >= {item["id"]}


def test_errors(notifying: TestClient[Any], auth: dict[str, str]) -> None:
    missing = notifying.post("/api/deliveries/999/retry", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No delivery 999: `receiver deliveries` lists them"}
    wrong_state = notifying.get("/api/deliveries", params={"state": "lost"}, headers=auth)
    assert wrong_state.status_code == 400 and "state" in wrong_state.json()["detail"]
    for response in (
        notifying.get("/api/deliveries"),
        notifying.post("/api/deliveries/1/retry"),
    ):
        assert response.status_code == 401 and set(response.json()) == {"detail"}
