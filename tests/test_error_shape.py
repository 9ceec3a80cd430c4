"""Every error answer is exactly ``{"detail": "<sentence>"}``, as datasette's test checks."""

from typing import Any

from litestar.testing import TestClient

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
