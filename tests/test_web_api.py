"""The read API: closed without a token, newest first, filters, cursor paging."""

import json
from typing import Any

import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import load_config
from tests.conftest import TOKEN, callback_body, signed


def post_result(client: TestClient[Any], status: str, branch: str, n: int) -> int:
    document = json.loads(callback_body(custom_data={"branch": branch, "n": n}))
    document["results"]["status"] = status
    body = json.dumps(document).encode()
    response = client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    assert response.status_code == 200
    result_id: int = response.json()["result_id"]
    return result_id


@pytest.mark.parametrize("path", ["/api/results", "/api/results/1", "/api/jobs", "/api/jobs/1"])
def test_api_is_closed_without_a_configured_token(
    write_config: Any, env: dict[str, str], path: str
) -> None:
    config = load_config(write_config(""), {**env, "RECEIVER_API_TOKEN": ""})
    with TestClient(create_app(config)) as client:
        response = client.get(path, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
    assert response.json() == {
        "detail": "The API is closed: set RECEIVER_API_TOKEN on the service, "
        "then send 'Authorization: Bearer <token>'"
    }


@pytest.mark.parametrize(
    "header", [None, "", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", f"bearer {TOKEN[:-1]}"]
)
def test_wrong_or_missing_bearer_is_refused(client: TestClient[Any], header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/api/results", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text


def test_results_newest_first_with_filters_and_cursor(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    ids = [
        post_result(client, status, branch, n)
        for n, (status, branch) in enumerate(
            [("passed", "main"), ("failed", "main"), ("failed", "feat/x"), ("error", "main")]
        )
    ]
    everything = client.get("/api/results", headers=auth).json()
    assert [r["id"] for r in everything["items"]] == ids[::-1]
    assert everything["next_cursor"] is None

    failed = client.get("/api/results?status=failed", headers=auth).json()["items"]
    assert [r["id"] for r in failed] == [ids[2], ids[1]]
    main_failed = client.get("/api/results?status=failed&branch=main", headers=auth).json()
    assert [r["id"] for r in main_failed["items"]] == [ids[1]]
    assert client.get("/api/results?provider=qualigate", headers=auth).json()["items"] == []

    first = client.get("/api/results?limit=3", headers=auth).json()
    assert [r["id"] for r in first["items"]] == ids[:0:-1]
    second = client.get(f"/api/results?limit=3&cursor={first['next_cursor']}", headers=auth).json()
    assert [r["id"] for r in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


def test_jobs_show_their_result(client: TestClient[Any], auth: dict[str, str]) -> None:
    result_id = post_result(client, "failed", "main", 1)
    jobs = client.get("/api/jobs", headers=auth).json()["items"]
    assert len(jobs) == 1 and jobs[0]["state"] == "failed" and jobs[0]["result_id"] == result_id
    job = client.get(f"/api/jobs/{jobs[0]['id']}", headers=auth).json()
    assert job["result"]["id"] == result_id
    assert job["result"]["tests"][0]["name"] == "Login and Dashboard Verification"


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "cursor=abc"])
def test_bad_query_parameters_say_which(
    client: TestClient[Any], auth: dict[str, str], query: str
) -> None:
    response = client.get(f"/api/results?{query}", headers=auth)
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["detail"]


def test_health_metrics_and_schema_are_open(client: TestClient[Any]) -> None:
    body = callback_body()
    client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    client.post("/callbacks/qualitymax", content=body, headers=signed(body))
    client.post("/callbacks/qualitymax", content=body, headers={})
    assert client.get("/health").json() == {"status": "ok"}
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'receiver_callbacks_total{outcome="accepted"} 1.0' in text
    assert 'receiver_callbacks_total{outcome="duplicate"} 1.0' in text
    assert 'receiver_callbacks_total{outcome="unsigned"} 1.0' in text
    # Outcomes not seen yet are there at 0, so that rates over them work from the start.
    assert 'receiver_callbacks_total{outcome="too_large"} 0.0' in text
    assert "receiver_callback_ingest_seconds_bucket" in text
    schema = client.get("/schema/openapi.json").json()
    assert "/callbacks/qualitymax/{job_key}" in schema["paths"]
    assert "/api/results/{result_id}" in schema["paths"]
    assert client.get("/schema").status_code == 200
