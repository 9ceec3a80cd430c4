"""``POST /callbacks/qualitymax[/{job_key}]``: read within the limit, hand to the intake, answer."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, post
from litestar.exceptions import ClientException

from receiver.callbacks import Accepted, PayloadRejected, SignatureRejected
from receiver.logs import get_logger
from receiver.services import Services, services_of
from receiver.store import utcnow
from receiver.web.errors import error_response

log = get_logger("receiver.callbacks")


@post(
    ["/callbacks/qualitymax", "/callbacks/qualitymax/{job_key:str}"],
    status_code=200,
    summary="Take a QualityMax callback",
    description="Verified with X-QualityMax-Signature (sha256=<hex> over the raw body), "
    "stored, then answered. A repeat of a stored body answers 200 with duplicate=true.",
    tags=["callbacks"],
)
async def take_callback(request: Request[Any, Any, Any]) -> Response[Any]:
    services = services_of(request)
    # Read from the path, not declared: the parameter exists on only one of the two paths.
    job_key: str | None = request.path_params.get("job_key")
    received_at = utcnow()
    try:
        body = await request.body()
    except ClientException as exc:
        if exc.status_code != 413:
            raise
        return _refused(services, "too_large", 413, _too_large(services))
    started = time.perf_counter()
    try:
        accepted = await services.intake.take(
            job_key=job_key, headers=request.headers, body=body, received_at=received_at
        )
    except SignatureRejected:
        return _refused(services, "unsigned", 401, "Missing or invalid X-QualityMax-Signature")
    except PayloadRejected as exc:
        log.info("callback", id=exc.callback_id, outcome="rejected", reason=exc.detail)
        return _refused(services, "rejected", 400, exc.detail)
    elapsed = time.perf_counter() - started
    _record(services, accepted, job_key, elapsed)
    return Response(accepted)


def _record(services: Services, accepted: Accepted, job_key: str | None, elapsed: float) -> None:
    outcome = "duplicate" if accepted.duplicate else "accepted"
    services.metrics.callbacks.labels(outcome).inc()
    services.metrics.ingest_seconds.observe(elapsed)
    if job_key is not None and accepted.job_id is None:
        log.warning(
            "callback.unknown_job", id=accepted.callback_id, hint="kept, not linked to a job"
        )
    log.info(
        "callback",
        id=accepted.callback_id,
        outcome=outcome,
        result_id=accepted.result_id,
        status=accepted.status,
        duration_ms=round(elapsed * 1000, 2),
    )


def _refused(services: Services, outcome: str, status_code: int, detail: str) -> Response[Any]:
    services.metrics.callbacks.labels(outcome).inc()
    if outcome != "rejected":
        log.info("callback", outcome=outcome, status_code=status_code)
    return error_response(status_code, detail)


def _too_large(services: Services) -> str:
    limit = services.config.server.max_body_bytes
    return (
        f"The body is over {limit} bytes; raise [server] max_body_bytes in the config "
        "if such callbacks are expected"
    )
