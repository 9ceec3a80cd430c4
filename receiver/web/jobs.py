"""``POST /api/jobs``: submit a job to its provider.

The body's ``provider`` (default ``qualitymax``, filled in before decoding) picks which
provider's request the rest is decoded as: a tagged union of every registered provider's
request Struct, so each provider's unknown fields are refused. The submission (receiver.jobs)
does the rest; a provider's refusal is a ProviderError, answered by receiver.web.errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Example
from litestar.params import Body

from receiver import providers
from receiver.jobs import JobSubmitted, RerunBody, Submission
from receiver.providers.base import JobBody
from receiver.web.errors import BODY_ERRORS, error_answers
from receiver.web.params import RowId

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
        summary="QualityMax SAST scan of an imported repository (polled; a result of kind sast)",
        value={
            "kind": "sast",
            "repository_id": 42,
            "branch": "main",
            "engines": ["semgrep", "bandit"],
            "custom_data": {"pr_number": 42, "repository": "acme/shop", "sha": "4b1e7c0"},
        },
    ),
    Example(
        summary="QualityMax gap analysis (polled; a result of kind gap_analysis)",
        value={
            "kind": "gap_analysis",
            "repository_id": 42,
            "categories": ["e2e", "security", "integration"],
            "max_tests_per_category": 10,
        },
    ),
    Example(
        summary="QualGent: several test cases in one run (the document's jobs[]), a job each",
        value={
            "provider": "qualgent",
            "jobs": [
                {
                    "test_case_id": "tc_login",
                    "app_file_id": "latest",
                    "device": {
                        "name": "Pixel 8",
                        "platform": "android",
                        "os_version": "14",
                        "orientation": "portrait",
                    },
                },
                {"test_case_id": "tc_checkout", "platform": "android"},
            ],
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
DESCRIPTION: Final = (
    "`provider` is `qualitymax` (default), `qualigate` or `qualgent`; `custom_data` is "
    "echoed back with the result. The other fields are the provider's own: QualityMax's "
    "webhook request (url, feature_description, auth, options; callback_url is filled "
    "in by receiver), or with `kind` `sast` (repository_id, branch, engines) or "
    "`gap_analysis` (repository_id, categories, max_tests_per_category), polled; "
    "Qualigate's trigger request (exactly one of test_case_id, "
    "test_suite_id, project_id; browserType, viewportPreset, viewportWidth, "
    "viewportHeight), QualGent's (test_case_id, `jobs` of up to 10 test cases (a job each), "
    "or run_all with category_id; app_file_id, device {name, platform, os_version, "
    "orientation} or platform). Over a provider's rate limit the job is answered with state "
    "`queued` and sent when the limit allows."
)


async def choose_provider(request: Request[Any, Any, Any]) -> None:
    """Before the body is decoded: no ``provider`` means QualityMax (DESIGN.md); an unknown one,
    or one this service has no settings for, is named before its fields are judged. Litestar
    decodes ``data`` from this same parsed body."""
    body = await request.json()
    if not isinstance(body, dict):
        return  # decoding refuses it, saying it wants an object
    name = body.setdefault("provider", providers.DEFAULT)
    if name not in providers.names():
        known = ", ".join(providers.names())
        raise ClientException(f"provider: {name!r} is unknown; use {known}")
    submission: Submission = request.app.state.services.submission
    submission.provider(name)  # NotConfigured (409) names the setting


def submit_handler() -> HTTPRouteHandler:
    """The route, its body typed as the union of the providers registered now."""

    async def submit_job(data: JobBody, submission: NamedDependency[Submission]) -> JobSubmitted:
        return await submission.submit(data)

    submit_job.__annotations__["data"] = Annotated[
        providers.job_body_type(),
        Body(
            media_type=RequestEncodingType.JSON,
            title="A job for one provider",
            description=DESCRIPTION,
            examples=EXAMPLES,
        ),
    ]
    return post(
        "/api/jobs",
        status_code=201,
        tags=["jobs"],
        before_request=choose_provider,
        responses=error_answers(
            {
                400: "The body is not a job this service can submit, or the provider refused "
                "it as a bad request; `detail` names the field",
                404: "The provider does not know the test, suite or project",
                409: "The service lacks a setting submitting needs (QualityMax's, or the "
                "chosen provider's key); `detail` names it",
                502: "The provider refused the service's key, answered an error, or may have "
                "taken the job although the answer failed (check there before resending)",
                503: "The provider is unavailable or over its rate limit (see Retry-After)",
                **BODY_ERRORS,
            }
        ),
        summary="Submit a job",
        description="Answers the job's `id`, `provider`, `state` (`submitted`, or `queued` over "
        "the provider's rate limit) and `external_id` (QualityMax's webhook also `callback_url`; "
        "polled jobs `external_kind`; QualGent's `jobs[]` the ids of every job). A provider's "
        "refusal answers with its own words: 400 bad request, 404 unknown test, 409 a setting this "
        "service lacks, 502 the provider failed or may have taken it, 503 unavailable.",
    )(submit_job)


@post(
    "/api/jobs/{job_id:int}/rerun",
    status_code=201,
    tags=["jobs"],
    summary="Re-run a job",
    description="Submits the job's request again, as a new job whose `rerun_of` is this one. "
    "Secrets are never stored: a QualityMax request that carried `auth.password` needs it "
    'again, as `{"auth": {"password": "..."}}`; without it the answer is 400 naming the field.',
    responses=error_answers(
        {
            400: "The job has no request to send again, or a secret it carried is missing; "
            "`detail` names the field",
            404: "No job with this id",
            409: "The service lacks a setting submitting needs; `detail` names it",
            502: "The provider refused or failed the request",
            503: "The provider is unavailable",
        }
    ),
)
async def rerun_job(
    job_id: RowId,
    submission: NamedDependency[Submission],
    data: Annotated[RerunBody | None, Body(media_type=RequestEncodingType.JSON)] = None,
) -> JobSubmitted:
    return await submission.rerun(job_id, data)
