"""Submitting a job: record it, give it an unguessable key, build its callback URL, send it.

The order matters: the job row exists (with its ``job_key``) before the partner hears of it, so
even a callback that arrives before the partner's answer is linked to its job.
"""

from __future__ import annotations

import secrets

import msgspec

from receiver.config import Config
from receiver.providers import qualitymax as qm
from receiver.results import CustomData
from receiver.store import Store
from receiver.store import jobs as stored_jobs


class JobRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/jobs`` for QualityMax (web/jobs.py sends only its provider's bodies here):
    QualityMax's webhook request, ``callback_url`` filled in by receiver."""

    provider: str = qm.NAME
    url: str = ""
    feature_description: str = ""
    custom_data: CustomData = msgspec.field(default_factory=dict)
    auth: qm.Auth | None = None
    options: qm.Options | None = None
    callback_url: str | None = None


class JobSubmitted(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    state: str
    callback_url: str
    external_id: str | None


class SubmitRefused(Exception):
    """The request cannot be submitted as it is; nothing was recorded or sent."""


class NotConfigured(Exception):
    """The service lacks a setting submitting needs; the message names it."""


class SubmitFailed(Exception):
    """The partner refused the job or could not be reached; the job is recorded as ``error``."""

    def __init__(self, job_id: int, cause: qm.QualityMaxError) -> None:
        super().__init__(str(cause))
        self.job_id = job_id
        self.cause = cause


def client_for(config: Config) -> qm.QualityMaxClient:
    settings = config.qualitymax
    api_key, slug, secrets_ = settings.api_key, settings.partner_slug, settings.webhook_secrets
    if not (api_key and slug and secrets_):
        missing = [
            name
            for name, value in (
                ("QUALITYMAX_API_KEY ([qualitymax] api_key)", api_key),
                ("QUALITYMAX_PARTNER_SLUG ([qualitymax] partner_slug)", slug),
                ("QUALITYMAX_WEBHOOK_SECRET ([qualitymax] webhook_secret)", secrets_),
            )
            if not value
        ]
        raise NotConfigured(
            f"Submitting jobs needs {', '.join(missing)}: set it on the service and restart"
        )
    return qm.QualityMaxClient(
        base_url=settings.base_url, api_key=api_key, webhook_secret=secrets_[0], partner_slug=slug
    )


def callback_url(config: Config, job_key: str) -> str:
    public_url = (config.server.public_url or "").rstrip("/")
    if not public_url:
        raise NotConfigured(
            "RECEIVER_PUBLIC_URL is not set: the service cannot tell QualityMax where to post "
            f"results. Set it (or [server] public_url in {config.source}) to the URL at which "
            "QualityMax reaches this service, and restart"
        )
    return f"{public_url}/callbacks/{qm.NAME}/{job_key}"


def webhook_request(job: JobRequest, callback: str) -> qm.WebhookRequest:
    """The partner's request; raise SubmitRefused naming the field when a limit is broken."""
    if job.callback_url is not None:
        raise SubmitRefused(
            "callback_url: receiver fills it in (so the result is linked to the job); remove it"
        )
    request = qm.WebhookRequest(
        url=job.url,
        feature_description=job.feature_description,
        callback_url=callback,
        auth=job.auth,
        custom_data=job.custom_data,
        options=job.options,
    )
    try:
        qm.validate_request(request)
    except qm.RequestInvalid as exc:
        raise SubmitRefused(str(exc)) from None
    return request


def _kept_request(request: qm.WebhookRequest) -> str:
    """The request as stored: the login password never reaches the database."""
    auth = request.auth
    if auth is not None and auth.password:
        request = msgspec.structs.replace(
            request, auth=msgspec.structs.replace(auth, password="****")
        )
    return msgspec.json.encode(request).decode()


async def submit(
    database: Store,
    config: Config,
    job: JobRequest,
    client: qm.QualityMaxClient | None = None,
) -> JobSubmitted:
    """Validate, record, send, record the partner's id; raise a typed error on each failure."""
    job_key = secrets.token_urlsafe(24)
    request = webhook_request(job, callback_url(config, job_key))
    partner = client or client_for(config)
    new = stored_jobs.NewJob(
        provider=job.provider,
        state="submitted",
        job_key=job_key,
        url=request.url,
        request=_kept_request(request),
        custom_data=request.custom_data,
        callback_url=request.callback_url,
    )
    job_id = await database.write(lambda tx: stored_jobs.insert(tx, new))
    try:
        answer = await partner.submit(request)
    except qm.QualityMaxError as exc:
        reason = str(exc)
        await database.write(lambda tx: stored_jobs.set_error(tx, job_id, reason))
        raise SubmitFailed(job_id, exc) from None
    await database.write(lambda tx: stored_jobs.set_sent(tx, job_id, external_id=answer.job_id))
    return JobSubmitted(
        id=job_id,
        provider=job.provider,
        state="submitted",
        callback_url=request.callback_url,
        external_id=answer.job_id,
    )
