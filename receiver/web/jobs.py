"""``POST /api/jobs``: submit a job to its provider with a callback URL that links it back."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body

from receiver import jobs
from receiver.logs import get_logger
from receiver.providers import qualitymax as qm
from receiver.services import services_of

log = get_logger("receiver.jobs")

JsonJobRequest = Annotated[jobs.JobRequest, Body(media_type=RequestEncodingType.JSON)]


class SubmitController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @post(
        "/",
        status_code=201,
        summary="Submit a job",
        description="The body is QualityMax's webhook request (url, feature_description, "
        "custom_data, auth, options) plus `provider`; callback_url is filled in by receiver. "
        "A partner refusal answers with the partner's detail and leaves the job as `error`.",
    )
    async def submit_job(
        self, request: Request[Any, Any, Any], data: JsonJobRequest
    ) -> jobs.JobSubmitted:
        services = services_of(request)
        try:
            submitted = await jobs.submit(services.store, services.config, data)
        except jobs.SubmitRefused as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        except jobs.NotConfigured as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except jobs.SubmitFailed as exc:
            log.warning("job.refused", id=exc.job_id, reason=str(exc.cause))
            raise _partner_error(exc) from None
        log.info("job.submitted", id=submitted.id, external_id=submitted.external_id)
        return submitted


def _partner_error(exc: jobs.SubmitFailed) -> HTTPException:
    """The caller's fault (the partner's 400) is a 400; anything else is the gateway's, 502/503."""
    cause = exc.cause
    detail = f"{cause} (job {exc.job_id} recorded as error)"
    if isinstance(cause, qm.PartnerRefused) and cause.status_code in (400, 422):
        return HTTPException(status_code=400, detail=detail)
    if isinstance(cause, qm.PartnerUnavailable) and cause.status_code == 429:
        headers = {"Retry-After": str(int(cause.retry_after or 60))}
        return HTTPException(status_code=503, detail=detail, headers=headers)
    return HTTPException(status_code=502, detail=detail)
