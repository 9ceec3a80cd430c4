"""POST /api/jobs with values no store or provider could take: a 400 naming the field, before
anything is recorded or sent (the QualityMax simulator and Qualigate's count what reached them)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import load_config
from receiver.limits import MAX_CUSTOM_DATA_DEPTH
from receiver.process import ServiceProcess
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from receiver.simulator.process import SimulatorProcess
from tests.conftest import TOKEN
from tests.sims import POLLING_KEYS, polling_config, qualgent_sim, qualigate_sim, stats

__all__ = ["qualgent_sim", "qualigate_sim"]

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
JOB = {"url": "https://preview-42.example.com", "feature_description": "Users can log in"}
MARK = "deep nesting goes here"


def body_with(document: dict[str, Any], levels: int = 0) -> bytes:
    """``document`` as JSON, with ``MARK`` replaced by a value nested ``levels`` deep."""
    return (
        json.dumps(document)
        .encode()
        .replace(json.dumps(MARK).encode(), b'{"a":' * levels + b"1" + b"}" * levels)
    )


def deep_custom_data(levels: int) -> bytes:
    return body_with({**JOB, "custom_data": MARK}, levels)


# (what is wrong, the body, how the 400's detail starts)
REFUSED = [
    (
        "pr_number as text beyond 64 bits",
        body_with({**JOB, "custom_data": {"pr_number": "9223372036854775808"}}),
        "custom_data.pr_number: '9223372036854775808' is not a pull request number",
    ),
    (
        "pr_number beyond 64 bits",
        body_with({**JOB, "custom_data": {"pr_number": 2**63}}),
        "custom_data.pr_number: 9223372036854775808 is not a pull request number",
    ),
    (
        "pr_number negative",
        body_with({**JOB, "custom_data": {"pr_number": -1}}),
        "custom_data.pr_number: -1 is not a pull request number",
    ),
    (
        "custom_data one level too deep",
        deep_custom_data(MAX_CUSTOM_DATA_DEPTH + 1),  # custom_data's own object is one
        "custom_data: nests deeper than 32 levels",
    ),
    # Past Python's stack: Litestar's own decoding of the body raised RecursionError (a 500).
    ("custom_data 1,000 deep", deep_custom_data(1000), "custom_data: nests "),
    ("an unknown field 1,000 deep", body_with({**JOB, "x": MARK}, 1000), "x: nests "),
    ("the whole body 1,000 deep", b"[" * 1000 + b"]" * 1000, "The body nests 1000 levels"),
    (
        "quality_threshold beyond 64 bits",
        body_with({**JOB, "options": {"quality_threshold": 2**63}}),
        "options.quality_threshold: 9223372036854775808 is outside 0-100",
    ),
]


@pytest.fixture
def api(linked_service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=linked_service.url, headers=AUTH, timeout=30) as c:
        yield c


def test_out_of_range_values_and_deep_nesting_are_refused_before_the_partner_hears(
    api: httpx.Client, simulator: SimulatorProcess
) -> None:
    for case, body, detail in REFUSED:
        answer = api.post("/api/jobs", content=body)
        assert answer.status_code == 400, (case, answer.text)
        assert answer.json()["detail"].startswith(detail), (case, answer.text)
    assert api.get("/api/jobs").json()["items"] == []
    counters = httpx.get(f"{simulator.url}/_simulator/counters").json()
    assert counters["webhook_requests"] == 0
    # The same service submits a job whose pr_number does fit: the counters do count.
    good = body_with({**JOB, "custom_data": {"pr_number": "9223372036854775807"}})
    assert api.post("/api/jobs", content=good).status_code == 201
    assert httpx.get(f"{simulator.url}/_simulator/counters").json()["webhook_requests"] == 1


# -- Qualigate, in process against its simulator ---------------------------------------------


@pytest.fixture
def gate(
    write_config: Callable[[str], Path],
    env: dict[str, str],
    qualigate_sim: Served,
    qualgent_sim: Served,
) -> Iterator[TestClient[Any]]:
    path = write_config(polling_config(qualigate_sim, qualgent_sim))
    with TestClient(create_app(load_config(path, {**env, **POLLING_KEYS}))) as client:
        yield client


SUITE = {"provider": "qualigate", "test_suite_id": gate_sim.MIXED_SUITE}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (body_with({**SUITE, "viewportWidth": 2**63}), "viewportWidth: Expected `int` <= 16384"),
        (body_with({**SUITE, "viewportHeight": 0}), "viewportHeight: Expected `int` >= 1"),
        (
            body_with({**SUITE, "custom_data": {"pr_number": "9223372036854775808"}}),
            "custom_data.pr_number: '9223372036854775808' is not a pull request number",
        ),
        (
            body_with({**SUITE, "custom_data": MARK}, MAX_CUSTOM_DATA_DEPTH + 1),
            "custom_data: nests deeper than 32 levels",
        ),
        (body_with({**SUITE, "custom_data": MARK}, 5000), "custom_data: nests 5000 levels deep"),
    ],
)
def test_a_qualigate_job_with_such_values_is_refused_before_qualigate_hears(
    gate: TestClient[Any], qualigate_sim: Served, body: bytes, detail: str
) -> None:
    answer = gate.post("/api/jobs", content=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert detail in answer.json()["detail"]
    assert gate.get("/api/jobs", headers=AUTH).json()["items"] == []
    assert sum(stats(qualigate_sim)["admitted"].values()) == 0


def test_a_qualigate_viewport_within_bounds_is_sent(
    gate: TestClient[Any], qualigate_sim: Served
) -> None:
    body = body_with({**SUITE, "viewportWidth": 1920, "viewportHeight": 1080})
    assert gate.post("/api/jobs", content=body, headers=AUTH).status_code == 201
    assert stats(qualigate_sim)["admitted"]["trigger_post"] == 1
