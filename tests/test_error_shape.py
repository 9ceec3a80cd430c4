"""Every error answer is exactly ``{"detail": "<sentence>"}``, as datasette's test checks."""

from typing import Any

import pytest
from litestar.testing import TestClient

from receiver.store.sqlite import SqliteStore
from tests.conftest import signed


def assert_error_shape(response: Any, status_code: int) -> None:
    assert response.status_code == status_code
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert list(document) == ["detail"]
    assert isinstance(document["detail"], str) and document["detail"]


def test_each_error_path_has_the_shape(client: TestClient[Any], auth: dict[str, str]) -> None:
    assert_error_shape(
        client.post("/callbacks/qualitymax", content=b"[]", headers=signed(b"[]")), 400
    )
    assert_error_shape(client.get("/api/results?limit=0", headers=auth), 400)
    assert_error_shape(client.post("/callbacks/qualitymax", content=b"{}"), 401)
    assert_error_shape(client.get("/api/results"), 401)
    assert_error_shape(client.get("/api/results/42", headers=auth), 404)
    assert_error_shape(client.get("/api/jobs/42", headers=auth), 404)
    assert_error_shape(client.get("/no/such/path"), 404)
    assert_error_shape(client.get("/callbacks/qualitymax"), 405)
    big = b"{" + b" " * 2_000_000 + b"}"
    assert_error_shape(client.post("/callbacks/qualitymax", content=big, headers=signed(big)), 413)


BEYOND_64_BITS = "99999999999999999999999"
MAX_ID = str(2**63 - 1)  # SQLite's largest INTEGER: well-formed, so absent is a 404


@pytest.mark.parametrize(
    ("method", "path", "status_code", "named"),
    [
        ("GET", "/api/results/9223372036854775808", 400, "result_id"),
        ("GET", f"/api/results/{BEYOND_64_BITS}", 400, "result_id"),
        ("GET", "/api/results/0", 400, "result_id"),
        ("GET", "/api/results/-1", 400, "result_id"),
        ("GET", f"/api/jobs/{BEYOND_64_BITS}", 400, "job_id"),
        ("POST", f"/api/deliveries/{BEYOND_64_BITS}/retry", 400, "delivery_id"),
        ("POST", "/api/deliveries/0/retry", 400, "delivery_id"),
        ("GET", f"/api/results?cursor={BEYOND_64_BITS}", 400, "cursor"),
        ("GET", "/api/results?cursor=9223372036854775808", 400, "cursor"),
        ("GET", "/api/jobs?cursor=0", 400, "cursor"),
        ("GET", f"/api/deliveries?cursor={BEYOND_64_BITS}", 400, "cursor"),
        ("GET", f"/api/jobs?limit={BEYOND_64_BITS}", 400, "limit"),
        ("GET", f"/api/results/{MAX_ID}", 404, "No result"),
        ("GET", f"/api/jobs/{MAX_ID}", 404, "No job"),
        ("POST", f"/api/deliveries/{MAX_ID}/retry", 404, "No delivery"),
    ],
)
def test_ids_cursors_and_limits_out_of_range_are_refused(
    client: TestClient[Any],
    auth: dict[str, str],
    method: str,
    path: str,
    status_code: int,
    named: str,
) -> None:
    response = client.request(method, path, headers=auth)
    assert_error_shape(response, status_code)
    assert named in response.json()["detail"]


def test_the_last_id_and_cursor_are_taken(client: TestClient[Any], auth: dict[str, str]) -> None:
    for path in ("/api/results", "/api/jobs", "/api/deliveries"):
        page = client.get(f"{path}?cursor={MAX_ID}", headers=auth)
        assert page.status_code == 200 and page.json()["items"] == []


def test_the_api_error_answers_have_the_shape(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    # QualityMax is not configured here: the job cannot be submitted (409, naming the setting).
    refused = client.post(
        "/api/jobs", json={"url": "https://e.com", "feature_description": "x"}, headers=auth
    )
    assert_error_shape(refused, 409)
    malformed = client.post("/api/jobs", content=b"{", headers=auth)
    assert_error_shape(malformed, 400)
    assert malformed.json()["detail"].startswith("The body is not valid JSON")
    big = client.post("/api/jobs", content=b"[" + b" " * 2_000_000 + b"]", headers=auth)
    assert_error_shape(big, 413)
    assert "raise [server] max_body_bytes" in big.json()["detail"]
    assert_error_shape(client.post("/api/jobs", json=[1], headers=auth), 400)
    assert_error_shape(client.get("/api/deliveries?state=lost", headers=auth), 400)


def test_health_answers_503_in_the_shape_when_the_store_is_not_running(
    client: TestClient[Any],
) -> None:
    services = client.app.state.services
    # A store whose writer is not running (closing the live one would strand the worker).
    running, services.store = services.store, SqliteStore(services.config.db_path)
    try:
        assert_error_shape(client.get("/health"), 503)
    finally:
        services.store = running
