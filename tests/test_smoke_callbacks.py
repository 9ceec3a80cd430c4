from typing import Any

from litestar.testing import TestClient

from tests.conftest import callback_body, signed


def test_seed_callback_is_stored_once(client: TestClient[Any], auth: dict[str, str]) -> None:
    body = callback_body()
    first = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    again = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    assert first.status_code == 200 and first.json()["duplicate"] is False
    assert again.status_code == 200 and again.json()["duplicate"] is True
    page = client.get("/api/results", headers=auth).json()
    assert [r["status"] for r in page["items"]] == ["passed"]
