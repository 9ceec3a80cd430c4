"""The simulators answer as the documents say: auth, validation errors, rate limits that count."""

from __future__ import annotations

import httpx

from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from tests.sims import stats

GATE = {"Authorization": f"Bearer {gate_sim.API_KEY}"}
GENT = {"X-Api-Key": gent_sim.API_KEY}


def test_qualigate_errors() -> None:
    with Served(gate_sim.create_app()) as sim, httpx.Client(base_url=sim.url) as http:
        no_key = http.post("/api/v1/trigger", json={"test_case_id": gate_sim.PASSING_CASE})
        assert (no_key.status_code, no_key.json()) == (
            401,
            {"error": "Unauthorized", "message": "Missing or invalid API key"},
        )
        two = http.post(
            "/api/v1/trigger", headers=GATE, json={"test_case_id": "a", "project_id": "b"}
        )
        assert two.status_code == 400 and "exactly one of" in two.json()["message"]
        not_object = http.post("/api/v1/trigger", headers=GATE, json=[1])
        assert not_object.status_code == 400
        unknown = http.post(
            "/api/v1/trigger", headers=GATE, json={"test_suite_id": gate_sim._id(9, 9)}
        )
        assert unknown.json() == {"error": "Not Found", "message": "Test suite not found"}
        assert http.get("/api/v1/trigger", headers=GATE).status_code == 400
        assert (
            http.get("/api/v1/results", headers=GATE, params={"suite_run_id": "x"}).status_code
            == 404
        )


def test_qualigate_counts_and_refuses_over_the_limit() -> None:
    with (
        Served(gate_sim.create_app(limit=3, window=60)) as sim,
        httpx.Client(base_url=sim.url) as http,
    ):
        codes = [
            http.get("/api/v1/results", headers=GATE, params={"test_run_ids": "x"}).status_code
            for _ in range(4)
        ]
        assert codes == [404, 404, 404, 429]
        told = http.get("/api/v1/results", headers=GATE, params={"test_run_ids": "x"}).json()
        assert told["error"] == "Too Many Requests" and 0 < told["retry_after"] <= 60
        # Another endpoint has its own budget.
        assert (
            http.get("/api/v1/trigger", headers=GATE, params={"test_run_id": "x"}).status_code
            == 404
        )
        score = stats(sim)
    assert score["limited"] == 2 and score["max_in_window"]["results"] == 3


def test_qualgent_errors_and_headers() -> None:
    with (
        Served(gent_sim.create_app(limit=2, window=60)) as sim,
        httpx.Client(base_url=sim.url) as http,
    ):
        assert http.get("/v1/jobs/list").json() == {"detail": "Invalid or missing API key"}
        upload = http.post("/v1/apps/upload", headers=GENT, files={"file": ("a.apk", b"x")})
        assert upload.status_code == 422
        assert [d["loc"] for d in upload.json()["detail"]] == [
            ["body", "app_name"],
            ["body", "version"],
        ]
        bare = {"jobs": [{"test_case_id": "tc_pass"}]}
        assert http.post("/v1/test-cases/run", headers=GENT, json=bare).status_code == 400
        over = http.post("/v1/test-cases/run", headers=GENT, json=bare)  # the third in a minute
        assert over.status_code == 429
        assert over.headers["X-RateLimit-Remaining"] == "0"
        assert 0 < float(over.headers["Retry-After"]) <= 60
        assert over.json() == {"detail": "Rate limit exceeded"}


def test_qualgent_run_needs_a_device_or_platform() -> None:
    with Served(gent_sim.create_app()) as sim, httpx.Client(base_url=sim.url) as http:
        bare = http.post(
            "/v1/test-cases/run", headers=GENT, json={"jobs": [{"test_case_id": "tc_pass"}]}
        )
        assert bare.status_code == 400 and "device" in bare.json()["detail"]
        auto = http.post(
            "/v1/test-cases/run",
            headers=GENT,
            json={"jobs": [{"test_case_id": "tc_pass", "platform": "android"}]},
        )
        assert auto.json()["jobs"][0]["link"].startswith(gent_sim.LINK)
        assert auto.headers["X-RateLimit-Limit"] == "10"
        latest = http.get("/v1/apps/latest", headers=GENT).json()
        assert latest["id"] == gent_sim.APP_ID
