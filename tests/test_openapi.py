"""The OpenAPI document tells every answer, and Schemathesis holds the served app to it: every
operation, a bounded number of generated requests each, with the bearer token so the API's own
logic runs.

No answer may be a server error or differ from the document (status, content type, body,
headers). QualityMax is left unconfigured, so POST /api/jobs refuses at once (409, documented).
Half of the callbacks are signed with the webhook secret, so they reach the intake (200 or 400)
instead of stopping at the signature (401).
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from receiver.app import create_app
from receiver.config import load_config
from receiver.process import ServiceProcess
from receiver.signatures import sign
from tests.conftest import SECRET, TOKEN

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
signing = itertools.cycle([True, False])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("schemathesis")
    config = folder / "receiver.toml"
    config.write_text("")
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": TOKEN,
        "RECEIVER_DB": str(folder / "receiver.db"),
    }
    process = ServiceProcess(config, env, folder / "serve.log").start()
    yield process
    process.kill()


def app_document() -> dict[str, Any]:
    """The OpenAPI document as the app builds it, read at collection to make one test per
    operation (Schemathesis' lazy ``from_fixture`` fails on pytest 9.2: Node._nodeid is gone)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "receiver.toml"
        path.write_text("")
        env = {"QUALITYMAX_WEBHOOK_SECRET": SECRET, "RECEIVER_DB": f"{folder}/receiver.db"}
        document: dict[str, Any] = create_app(load_config(path, env)).openapi_schema.to_schema()
        return document


DOCUMENT = app_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_served_document_is_the_one_tested(served: ServiceProcess) -> None:
    assert httpx.get(f"{served.url}/schema/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same requests every run; a longer run by hand explores (README)
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_documented(case: Case[Any], served: ServiceProcess) -> None:
    kwargs: dict[str, Any] = {}
    headers = dict(AUTH)
    json_body = case.media_type == "application/json" and isinstance(case.body, dict | list)
    if case.path.startswith("/callbacks/") and json_body and next(signing):
        raw = json.dumps(case.body).encode()
        headers |= {"X-QualityMax-Signature": sign(raw, SECRET), "Content-Type": "application/json"}
        kwargs["data"] = raw
    case.call_and_validate(base_url=served.url, headers=headers, checks=CHECKS, **kwargs)


def test_every_error_answer_is_the_one_error_shape() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "500" in statuses, (method, path)
            if path.startswith("/api/"):
                assert {"400", "401"} <= statuses, (method, path)
            for status, answer in operation["responses"].items():
                if status >= "400":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
    error_body = DOCUMENT["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["detail"] and error_body["additionalProperties"] is False


def test_ids_and_cursors_are_bounded_to_sqlite_integers() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"].endswith("_id") or parameter["name"] == "cursor":
                    assert parameter["schema"]["minimum"] == 1, path
                    # Exactly 2^63-1: Litestar's own float would round it up to 2^63.
                    assert parameter["schema"]["maximum"] == 2**63 - 1, path


def test_metrics_health_and_callbacks_are_described_as_served() -> None:
    paths = DOCUMENT["paths"]
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain; version=0.0.4"]
    health = paths["/health"]["get"]["responses"]
    assert health["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Healthy"
    }
    assert "503" in health
    for path in ("/callbacks/qualitymax", "/callbacks/qualitymax/{job_key}"):
        callback = paths[path]["post"]
        assert {"200", "400", "401", "408", "413", "500", "503"} == set(callback["responses"])
        (signature,) = [p for p in callback["parameters"] if p["in"] == "header"]
        assert signature["name"] == "X-QualityMax-Signature" and signature["required"]
        assert callback["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    submit = paths["/api/jobs"]["post"]["responses"]
    assert {"201", "400", "401", "404", "408", "409", "413", "500", "502", "503"} == set(submit)
