"""Submitting a job to any provider: check it, record it, send it, record the provider's answer.

The order is the design. Nothing is recorded before the request passes the provider's own
checks. The job is recorded (for a provider that calls back, with an unguessable key in its
callback URL) before the provider hears of it: a callback that arrives before the provider's
answer is linked to its job, and a crash in between leaves a job receiver knows of, never a run
at the provider that receiver never hears of.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping

import msgspec

from receiver.config import Config
from receiver.logs import get_logger
from receiver.providers.base import JobBody, Outgoing, Provider, Sent
from receiver.providers.errors import NotConfigured, ProviderError
from receiver.store import Store
from receiver.store import jobs as stored

log = get_logger("receiver.jobs")


class JobSubmitted(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What POST /api/jobs answers, whichever the provider."""

    id: int
    provider: str
    state: str
    external_id: str | None
    external_kind: str | None = None  # a polled provider's: what the poller asks about
    callback_url: str | None = None  # a provider that calls back: where it will post


class Submission:
    """Submits jobs with the service's providers (shared, so their rate windows are too)."""

    def __init__(
        self,
        database: Store,
        config: Config,
        providers: Mapping[str, Provider],
        *,
        on_polled: Callable[[], None] | None = None,
    ) -> None:
        self.store = database
        self.config = config
        self.providers = providers
        self.on_polled = on_polled  # the poller's wake-up: a polled job was sent

    async def submit(self, request: JobBody) -> JobSubmitted:
        """Check, record, send, record the answer; a ProviderError names what went wrong."""
        provider = self.provider(type(request).__struct_config__.tag)
        job_key = secrets.token_urlsafe(24) if provider.calls_back else None
        callback = self._callback_url(job_key) if job_key else None
        outgoing = provider.prepare(request, callback)
        new = stored.NewJob(
            provider=provider.name,
            state="submitted",
            job_key=job_key,
            url=outgoing.url,
            request=outgoing.kept,
            custom_data=request.custom_data,
            callback_url=callback,
        )
        job_id = await self.store.write(lambda tx: stored.insert(tx, new))
        sent = await self._send(provider, outgoing, job_id)
        if sent.external_kind is not None and self.on_polled is not None:
            self.on_polled()
        log.info("job.submitted", id=job_id, provider=provider.name, external=sent.external_id)
        return JobSubmitted(
            id=job_id,
            provider=provider.name,
            state=sent.state,
            external_id=sent.external_id,
            external_kind=sent.external_kind,
            callback_url=callback,
        )

    async def _send(self, provider: Provider, outgoing: Outgoing, job_id: int) -> Sent:
        try:
            sent = await provider.send(outgoing)
        except ProviderError as exc:
            reason = str(exc)  # the job's own error: without "job N recorded as error"
            exc.job_id = job_id
            await self.store.write(lambda tx: stored.set_error(tx, job_id, reason))
            log.warning("job.refused", id=job_id, provider=provider.name, reason=reason)
            raise
        await self.store.write(
            lambda tx: stored.set_sent(
                tx, job_id, external_id=sent.external_id, external_kind=sent.external_kind
            )
        )
        return sent

    def provider(self, name: str | int | None) -> Provider:
        """The configured provider of that name; NotConfigured names the setting it lacks."""
        provider = self.providers.get(str(name))
        if provider is None:
            setting = f"{str(name).upper()}_API_KEY ([{name}] api_key)"
            raise NotConfigured(
                str(name),
                f"provider: {name} is not configured on this service: set {setting} and restart",
            )
        return provider

    def _callback_url(self, job_key: str) -> str:
        public_url = (self.config.server.public_url or "").rstrip("/")
        if not public_url:
            raise NotConfigured(
                "receiver",
                "RECEIVER_PUBLIC_URL is not set: the service cannot tell the provider where to "
                "post results. Set it (or [server] public_url in "
                f"{self.config.source}) to the URL at which providers reach this service, and "
                "restart",
            )
        return f"{public_url}/callbacks/qualitymax/{job_key}"
