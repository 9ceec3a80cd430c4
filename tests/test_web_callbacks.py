"""POST /callbacks/qualitymax as a provider meets it: every bad input, and what gets stored."""

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from receiver import views
from receiver.app import create_app
from receiver.callbacks import CallbackIntake
from receiver.config import Config
from receiver.signatures import sign
from receiver.store import callbacks
from receiver.web.callbacks import CallbacksFirst, match_callback_path
from tests.conftest import SECRET, callback_body, signed

URL = "/callbacks/qualitymax"


def stored(client: TestClient[Any]) -> dict[str, int]:
    counts: dict[str, int] = client.app.state.services.store.read(callbacks.count_by_outcome)
    return counts


def result_count(client: TestClient[Any]) -> int:
    page = client.app.state.services.store.read(
        lambda tx: views.result_page(tx, views.ResultFilter(limit=500))
    )
    return len(page.items)


BODY = callback_body()
DIGEST = sign(BODY, SECRET).removeprefix("sha256=")


@pytest.mark.parametrize(
    ("name", "headers", "body"),
    [
        ("no signature header", {}, BODY),
        ("empty header", {"X-QualityMax-Signature": ""}, BODY),
        ("wrong secret", {"X-QualityMax-Signature": sign(BODY, "not-the-secret")}, BODY),
        ("body changed after signing", signed(BODY), BODY.replace(b"passed", b"failed", 1)),
        (
            "sha1= prefix",
            {
                "X-QualityMax-Signature": "sha1="
                + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
            },
            BODY,
        ),
        ("bare hex without sha256=", {"X-QualityMax-Signature": DIGEST}, BODY),
        ("non-hex digest", {"X-QualityMax-Signature": "sha256=" + "g" * 64}, BODY),
        ("the signature of another header name", {"X-Partner-Signature": sign(BODY, SECRET)}, BODY),
    ],
)
def test_bad_signatures_get_401_and_store_nothing(
    client: TestClient[Any], name: str, headers: dict[str, str], body: bytes
) -> None:
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 401, name
    assert response.json() == {"detail": "Missing or invalid X-QualityMax-Signature"}
    assert stored(client) == {}


def test_body_over_the_limit_gets_413_and_stores_nothing(
    client: TestClient[Any], config: Config
) -> None:
    body = b"{" + b" " * config.server.max_body_bytes + b"}"
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 413
    assert "over 1048576 bytes" in response.json()["detail"]
    assert stored(client) == {}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "The body is not valid JSON"),
        (b"[1, 2, 3]", "The body is JSON but not an object; send a JSON object"),
        (b'"text"', "The body is JSON but not an object"),
        (
            b'{"results": {"total_tests": "many"}}',
            "The callback does not match the QualityMax format: Expected `int | null`, got `str`",
        ),
    ],
)
def test_signed_but_unreadable_gets_400_and_the_raw_body_is_kept(
    client: TestClient[Any], body: bytes, detail: str
) -> None:
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert stored(client) == {"rejected": 1}
    assert result_count(client) == 0
    callback_id = 1
    kept = client.app.state.services.store.read(lambda tx: callbacks.body_of(tx, callback_id))
    assert kept == body
    again = client.post(URL, content=body, headers=signed(body))
    assert again.status_code == 400 and stored(client) == {"rejected": 1}


def test_unknown_fields_and_a_new_event_are_taken(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    document = json.loads(callback_body())
    document["event"] = "test_results_v2"
    document["brand_new"] = {"nested": [1, 2]}
    document["results"]["new_metric"] = 0.5
    body = json.dumps(document).encode()
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 200
    result = client.get(f"/api/results/{response.json()['result_id']}", headers=auth).json()
    assert result["event"] == "test_results_v2"


def test_an_event_without_results_is_kept_without_a_result(client: TestClient[Any]) -> None:
    body = json.dumps({"event": "job_started", "custom_data": {"branch": "x"}}).encode()
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 200
    assert response.json()["result_id"] is None
    assert stored(client) == {"accepted": 1}


def test_any_secret_of_the_rotation_list_is_taken(write_config: Any, env: dict[str, str]) -> None:
    from receiver.config import load_config

    config = load_config(write_config(""), {**env, "QUALITYMAX_WEBHOOK_SECRET": "old,new"})
    with TestClient(create_app(config)) as client:
        for secret in ("old", "new"):
            body = callback_body(custom_data={"secret": secret})
            assert client.post(URL, content=body, headers=signed(body, secret)).status_code == 200
        body = callback_body(custom_data={"secret": "other"})
        assert client.post(URL, content=body, headers=signed(body, "other")).status_code == 401


def test_seed_callback_is_normalised(client: TestClient[Any], auth: dict[str, str]) -> None:
    body = callback_body()
    answer = client.post(URL, content=body, headers=signed(body)).json()
    assert answer == {
        "callback_id": 1,
        "result_id": 1,
        "job_id": 1,
        "duplicate": False,
        "status": "passed",
    }
    repeat = client.post(URL, content=body, headers=signed(body)).json()
    assert repeat == {**answer, "duplicate": True}
    result = client.get("/api/results/1", headers=auth).json()
    assert result["total"] == 1 and result["passed"] == 1 and result["failed"] == 0
    assert result["duration_ms"] == 54600
    assert result["branch"] == "feat/new-feature"
    assert result["custom_data"] == {"deploy_id": "abc-123", "branch": "feat/new-feature"}
    assert result["summary"] == "AI crawl completed, 1 test generated and executed"
    assert result["tests"][0]["name"] == "Login and Dashboard Verification"
    assert result["tests"][0]["execution_id"] == "exec_abc123"
    assert result["links"]["report"] == "https://app.qualitymax.io/#/projects/137"
    assert result["failures"] == []


def test_failures_come_from_failing_tests_when_not_listed(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    document = json.loads(callback_body())
    document["results"].update(
        status="failed",
        total_tests=2,
        passed=1,
        failed=1,
        tests=[
            {"test": "ok", "status": "passed"},
            {"test": "login", "status": "failed", "error": "Timeout waiting for #submit"},
        ],
    )
    body = json.dumps(document).encode()
    result_id = client.post(URL, content=body, headers=signed(body)).json()["result_id"]
    result = client.get(f"/api/results/{result_id}", headers=auth).json()
    assert result["status"] == "failed"
    assert result["failures"] == [{"test": "login", "error": "Timeout waiting for #submit"}]


def test_a_callback_on_an_unknown_job_key_is_kept_unlinked(client: TestClient[Any]) -> None:
    body = callback_body()
    response = client.post(f"{URL}/no-such-key", content=body, headers=signed(body))
    assert response.status_code == 200
    assert response.json()["job_id"] is None and response.json()["result_id"] == 1


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(extra=st.integers(min_value=-64, max_value=64))
def test_size_limit_is_exact(client: TestClient[Any], config: Config, extra: int) -> None:
    size = config.server.max_body_bytes + extra
    body = b"{" + b" " * (size - 2) + b"}"
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == (413 if size > config.server.max_body_bytes else 200)


# ---------------------------------------------------------------------------------------------
# CallbacksFirst: the served app answers callback POSTs before Litestar routes; the same answers


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/callbacks/qualitymax", (True, None)),
        ("/callbacks/qualitymax/", (True, None)),
        ("/callbacks/qualitymax/deploy-42", (True, "deploy-42")),
        ("/callbacks/qualitymax/deploy-42/", (True, "deploy-42")),
        ("/callbacks/qualitymax/a/b", (False, None)),
        ("/callbacks/qualitymaxx", (False, None)),
        ("/callbacks/qualigate", (False, None)),
        ("/health", (False, None)),
    ],
)
def test_the_front_door_matches_the_routes_paths(
    path: str, expected: tuple[bool, str | None]
) -> None:
    assert match_callback_path(path) == expected


@pytest.fixture
def front(config: Config) -> Any:
    app = CallbacksFirst(create_app(config))
    with TestClient(app) as test_client:
        yield app, test_client


def test_the_front_door_answers_like_the_route(front: Any, auth: dict[str, str]) -> None:
    app, client = front
    body = callback_body(custom_data={"branch": "front"})
    taken = client.post(URL, content=body, headers=signed(body))
    assert taken.status_code == 200 and taken.json()["duplicate"] is False
    again = client.post(URL + "/", content=body, headers=signed(body))
    assert again.json() == {**taken.json(), "duplicate": True}
    unsigned = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert unsigned.json() == {"detail": "Missing or invalid X-QualityMax-Signature"}
    keyed = client.post(
        f"{URL}/no-such-job", content=callback_body(), headers=signed(callback_body())
    )
    assert keyed.status_code == 200 and keyed.json()["job_id"] is None
    assert app.state.services.store.read(callbacks.count_by_outcome) == {"accepted": 2}
    # Everything else is Litestar's: other methods, other paths, the API.
    assert client.get(URL).status_code == 405
    assert client.post(f"{URL}/a/b", content=body, headers=signed(body)).status_code == 404
    branches = [r["branch"] for r in client.get("/api/results", headers=auth).json()["items"]]
    assert "front" in branches


class BrokenIntake(CallbackIntake):
    """An intake whose store write blows up the way an unexpected bug would."""

    async def take(self, **_: Any) -> Any:
        raise RuntimeError("the disk caught fire")


def test_the_front_door_answers_an_unexpected_error_with_the_error_shape(front: Any) -> None:
    app, client = front
    services = app.state.services
    services.intake = BrokenIntake(
        services.store, services.intake.secrets, services.intake.recorder
    )
    body = callback_body()
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal error; the service log has the cause"}
