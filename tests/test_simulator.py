"""The QualityMax simulator answers as the partner document says: auth, validation, rate limit."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from receiver.signatures import sign
from receiver.simulator.common import RateWindow
from receiver.simulator.process import SimulatorProcess
from receiver.simulator.qualitymax import SimulatorSettings
from tests.conftest import QM_KEY, QM_SLUG, SECRET


def post_job(
    simulator: SimulatorProcess,
    document: dict[str, Any] | None = None,
    *,
    key: str | None = QM_KEY,
    secret: str = SECRET,
    slug: str = QM_SLUG,
    body: bytes | None = None,
) -> httpx.Response:
    if body is None:
        body = json.dumps(
            document
            or {
                "url": "https://preview.app.com",
                "feature_description": "Test login",
                "callback_url": "http://127.0.0.1:9/results",
            }
        ).encode()
    headers = {"Content-Type": "application/json", "X-Partner-Signature": sign(body, secret)}
    if key is not None:
        headers["X-QualityMax-API-Key"] = key
    return httpx.post(f"{simulator.url}/api/webhooks/{slug}", content=body, headers=headers)


def test_the_documented_example_is_accepted(simulator: SimulatorProcess) -> None:
    answer = post_job(simulator)
    assert answer.status_code == 200
    assert answer.json()["accepted"] is True
    assert answer.json()["job_id"].startswith("pwj_")
    assert answer.json()["message"] == "Webhook accepted, processing started"


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"key": None}, 401, "Missing X-QualityMax-API-Key header"),
        ({"key": "qm-another-key"}, 401, "Invalid API key"),
        ({"key": "xx-test-partner-key"}, 401, "Invalid API key"),
        ({"secret": "wrong-secret"}, 401, "Invalid or missing X-Partner-Signature"),
        ({"slug": "someone-else"}, 404, "Unknown partner 'someone-else'"),
        ({"body": b"not json"}, 400, None),
        ({"document": {"url": "https://a.com", "callback_url": "https://b.com"}}, 400, None),
    ],
)
def test_refusals_have_the_partners_shape(
    simulator: SimulatorProcess, kwargs: dict[str, Any], status: int, detail: str | None
) -> None:
    answer = post_job(simulator, **kwargs)
    assert answer.status_code == status
    assert set(answer.json()) == {"detail"}
    if detail is not None:
        assert answer.json()["detail"] == detail


def test_a_limit_broken_is_named_in_the_detail(simulator: SimulatorProcess) -> None:
    document = {
        "url": "https://preview.app.com",
        "feature_description": "Test login",
        "callback_url": "https://r.com/cb",
        "options": {"quality_threshold": 101},
    }
    answer = post_job(simulator, document)
    assert answer.status_code == 400
    assert "options.quality_threshold" in answer.json()["detail"]


def test_the_webhook_rate_limit_is_ten_a_minute(simulator: SimulatorProcess) -> None:
    answers = [post_job(simulator) for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert "Rate limit exceeded" in answers[-1].json()["detail"]


def test_the_free_endpoints_need_the_key(simulator: SimulatorProcess) -> None:
    answer = httpx.get(f"{simulator.url}/api/v1/partner/jobs/pwj_x/report")
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Missing X-QualityMax-API-Key header"}


def test_rate_limiter_window() -> None:
    limiter = RateWindow(2, 60)
    assert limiter.admit("k", "llm").admitted
    assert limiter.admit("k", "llm").admitted
    refused = limiter.admit("k", "llm")
    assert not refused.admitted and 0 < refused.retry_after <= 60
    assert limiter.admit("other", "llm").admitted


def test_settings_come_from_the_documented_environment() -> None:
    settings = SimulatorSettings.from_environment(
        {"QUALITYMAX_API_KEY": "qm_ci", "QUALITYMAX_WEBHOOK_SECRET": " new , old "}
    )
    assert settings.api_key == "qm_ci"
    assert settings.webhook_secret == "new"  # the first of a rotation list signs
    assert SimulatorSettings.from_environment({}).api_key.startswith("qm-")


def test_the_free_endpoints_are_sixty_a_minute(simulator: SimulatorProcess) -> None:
    headers = {"X-QualityMax-API-Key": QM_KEY}
    url = f"{simulator.url}/api/v1/partner/jobs/pwj_unknown/report"
    with httpx.Client(headers=headers) as http:
        answers = [http.get(url) for _ in range(61)]
    assert [a.status_code for a in answers] == [404] * 60 + [429]
    assert answers[0].json() == {"detail": "Job pwj_unknown not found"}
    assert "retry-after" in answers[-1].headers
