"""``POST /api/jobs``: submit a job to its provider.

QualityMax jobs get a callback URL that links the result back; Qualigate and QualGent jobs are
triggered at once and handed to the poller. The body's ``provider`` (default ``qualitymax``)
chooses which typed body the rest is decoded as, so each provider's unknown fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeVar

import msgspec
from litestar import Controller, Request, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi.spec import Example
from litestar.params import Body

from receiver import jobs
from receiver.logs import get_logger
from receiver.poller import SubmittedJob
from receiver.providers import POLLING_PROVIDERS, PROVIDERS, polling
from receiver.providers import qualitymax as qm
from receiver.results import CustomData
from receiver.services import Services, services_of
from receiver.web.errors import BODY_ERRORS, error_answers

log = get_logger("receiver.jobs")

T = TypeVar("T")

# A provider's typed error -> the status POST /api/jobs answers with the provider's message.
PROVIDER_STATUS: Final = (
    (polling.NotConfigured, 409),
    (polling.RequestRejected, 400),
    (polling.UnknownTarget, 404),
    (polling.AuthRejected, 502),
    (polling.ProviderUnavailable, 503),
)

EXAMPLES: Final = [
    Example(
        summary="QualityMax (the default provider)",
        value={
            "url": "https://preview-42.example.com",
            "feature_description": "Users can log in and see their dashboard",
            "custom_data": {"branch": "feat/login", "pr_number": 42, "repository": "acme/shop"},
        },
    ),
    Example(
        summary="Qualigate: a suite (or test_case_id / project_id), browser and viewport",
        value={
            "provider": "qualigate",
            "test_suite_id": "suite_abc",
            "browserType": "chromium",
            "viewportPreset": "desktop",
            "custom_data": {"branch": "feat/login", "pr_number": 42, "repository": "acme/shop"},
        },
    ),
    Example(
        summary="QualGent: one test case (or run_all with category_id) on an app and device",
        value={
            "provider": "qualgent",
            "test_case_id": "tc_123",
            "app_file_id": "latest",
            "device": {"name": "Pixel 8", "platform": "android", "os_version": "14"},
            "custom_data": {"branch": "feat/login", "pr_number": 42, "repository": "acme/shop"},
        },
    ),
]
JobBody = Annotated[
    dict[str, Any],
    Body(
        media_type=RequestEncodingType.JSON,
        title="A job for one provider",
        description=(
            "`provider` is `qualitymax` (default), `qualigate` or `qualgent`; `custom_data` is "
            "echoed back with the result. The other fields are the provider's own: QualityMax's "
            "webhook request (url, feature_description, auth, options; callback_url is filled "
            "in by receiver), Qualigate's trigger request (exactly one of test_case_id, "
            "test_suite_id, project_id; browserType, viewportPreset, viewportWidth, "
            "viewportHeight), QualGent's (test_case_id or run_all with category_id; "
            "app_file_id, device {name, platform, os_version} or platform)."
        ),
        examples=EXAMPLES,
    ),
]


class PollingJob(msgspec.Struct, kw_only=True):
    """The fields every polling provider's body shares; the rest is the provider's request."""

    provider: str
    custom_data: CustomData = msgspec.field(default_factory=dict)


class SubmitController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @post(
        "/",
        status_code=201,
        summary="Submit a job",
        description="Answers the job's `id`, `provider`, `state` and `external_id` (QualityMax "
        "also `callback_url`; Qualigate and QualGent `external_kind`). A provider's refusal "
        "answers with its own words: 400 bad request, 404 unknown test, 502 wrong key, 503 "
        "unavailable.",
        responses=error_answers(
            {
                400: "The body is not a job this service can submit, or the provider refused "
                "it as a bad request; `detail` names the field",
                404: "The provider does not know the test, suite or project",
                409: "The service lacks a setting submitting needs (QualityMax's, or the "
                "chosen provider's key); `detail` names it",
                502: "The provider refused the service's key, or answered an error",
                503: "The provider is unavailable or over its rate limit (see Retry-After)",
                **BODY_ERRORS,
            }
        ),
    )
    async def submit_job(
        self, request: Request[Any, Any, Any], data: JobBody
    ) -> jobs.JobSubmitted | SubmittedJob:
        services = services_of(request)
        provider = data.get("provider", qm.NAME)
        if provider in POLLING_PROVIDERS:
            return await submit_polling(services, data)
        if provider != qm.NAME:
            raise HTTPException(
                status_code=400,
                detail=f"provider: {provider!r} is unknown; use {', '.join(PROVIDERS)}",
            )
        return await submit_qualitymax(services, decode(data, jobs.JobRequest))


def decode(data: dict[str, Any], kind: type[T]) -> T:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise HTTPException(
            status_code=400, detail=f"Validation failed for POST /api/jobs: {exc}"
        ) from None


async def submit_qualitymax(services: Services, data: jobs.JobRequest) -> jobs.JobSubmitted:
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


async def submit_polling(services: Services, data: dict[str, Any]) -> SubmittedJob:
    """Trigger the run and hand it to the poller; the rest of the body is the provider's
    request, decoded (unknown fields refused) by the provider's own Struct."""
    envelope = decode(data, PollingJob)  # only its two fields are read; the rest stays in data
    fields = {k: v for k, v in data.items() if k not in PollingJob.__struct_fields__}
    if services.poller is None:
        raise HTTPException(
            status_code=409,
            detail=f"provider: {envelope.provider} is not configured on this service: set "
            "QUALIGATE_API_KEY / QUALGENT_API_KEY (or [qualigate] / [qualgent] api_key) "
            "and restart",
        )
    try:
        return await services.poller.submit(envelope.provider, fields, envelope.custom_data)
    except polling.ProviderError as exc:
        log.warning("job.refused", provider=envelope.provider, reason=str(exc))
        raise HTTPException(status_code=_provider_status(exc), detail=str(exc)) from None


def _provider_status(exc: polling.ProviderError) -> int:
    return next((code for kind, code in PROVIDER_STATUS if isinstance(exc, kind)), 502)


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
