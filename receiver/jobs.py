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
from functools import partial

import msgspec

from receiver import providers
from receiver.config import Config
from receiver.logs import get_logger
from receiver.providers.base import JobBody, Outgoing, Provider, Sent, kept
from receiver.providers.errors import (
    NotConfigured,
    ProviderError,
    ProviderUnavailable,
    RequestRejected,
)
from receiver.store import Store
from receiver.store import jobs as stored
from receiver.store.tx import Tx

log = get_logger("receiver.jobs")


class JobSubmitted(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What POST /api/jobs answers, whichever the provider."""

    id: int
    provider: str
    state: str  # submitted, or queued: over the provider's rate limit, sent when it allows
    external_id: str | None
    external_kind: str | None = None  # a polled provider's: what the poller asks about
    callback_url: str | None = None  # a provider that calls back: where it will post
    jobs: list[int] | None = None  # a request of several runs (QualGent's jobs[]): a job each
    rerun_of: int | None = None  # the job this one re-runs


class RerunSecrets(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a re-run must be given again: secrets are never stored."""

    password: str | None = None  # QualityMax's auth.password


class RerunBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/jobs/{id}/rerun``: empty, or the secrets the first request carried."""

    auth: RerunSecrets | None = None


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
        self.on_queued: Callable[[], None] | None = None  # the sender's wake-up
        # Secrets of queued jobs, in memory only: a restart loses them (the job says so).
        self._secrets: dict[int, JobBody] = {}

    async def submit(self, request: JobBody, *, rerun_of: int | None = None) -> JobSubmitted:
        """Check, record, send (or queue), record the answer; a ProviderError names what went
        wrong."""
        provider = self.provider(type(request).__struct_config__.tag)
        job_key = secrets.token_urlsafe(24) if request.wants_callback else None
        callback = self._callback_url(job_key) if job_key else None
        outgoing = provider.prepare(request, callback)
        over_limit = provider.send_delay(request) > 0 or self.store.read(
            partial(stored.has_queued, provider=provider.name)
        )
        new = stored.NewJob(
            provider=provider.name,
            state="queued" if over_limit else "submitted",
            job_key=job_key,
            url=outgoing.url,
            request=outgoing.kept,
            custom_data=request.custom_data,
            callback_url=callback,
            body=_encode(request.masked()),
            rerun_of=rerun_of,
        )
        job_id = await self.store.write(lambda tx: stored.insert(tx, new))
        answer = JobSubmitted(
            id=job_id,
            provider=provider.name,
            state="queued",
            external_id=None,
            callback_url=callback,
            rerun_of=rerun_of,
        )
        if over_limit:
            self._queue(job_id, request)
            log.info("job.queued", id=job_id, provider=provider.name)
            return answer
        sent = await self._send(provider, outgoing, job_id, request)
        if sent is None:
            return answer
        log.info("job.submitted", id=job_id, provider=provider.name, external=sent.external_id)
        return msgspec.structs.replace(
            answer,
            state=sent.state,
            external_id=sent.external_id,
            external_kind=sent.external_kind,
            jobs=sent.jobs,
        )

    async def send_queued(self, job: stored.QueuedJob) -> None:
        """Send a job that waited for its provider's limit (the sender calls this)."""
        provider = self.provider(job.provider)
        try:
            request = self._secrets.pop(job.id, None) or _decode(job.body)
            if missing := request.missing_secrets():
                raise RequestRejected(
                    provider.label,
                    f"{missing[0]}: not kept across a restart of the service; re-run the job "
                    f"with it (receiver rerun {job.id} --auth-password ...)",
                )
            outgoing = provider.prepare(request, job.callback_url)
        except (ProviderError, msgspec.DecodeError) as exc:
            reason = str(exc)
            await self.store.write(lambda tx: stored.set_error(tx, job.id, reason))
            log.warning("job.refused", id=job.id, provider=job.provider, reason=reason)
            return
        sent = await self._send(provider, outgoing, job.id, request, reraise=False)
        if sent is not None:
            log.info("job.sent", id=job.id, provider=job.provider, external=sent.external_id)

    async def rerun(self, job_id: int, given: RerunBody | None = None) -> JobSubmitted:
        """Submit job ``job_id``'s request again as a new job linked to it; the secrets it
        carried must be given again (RequestRejected names the field)."""
        row = self.store.read(partial(stored.get, job_id=job_id))
        if row.body is None:
            raise RequestRejected(
                row.provider,
                f"job {job_id} was not submitted through receiver (it came as a callback, or "
                "before re-runs were kept): there is no request to send again",
            )
        request = _decode(row.body)
        password = given.auth.password if given and given.auth else None
        if missing := request.missing_secrets():
            if not password:
                raise RequestRejected(
                    row.provider,
                    f"{missing[0]}: job {job_id}'s request carried a login password, which "
                    "receiver does not store; give it again (body "
                    '{"auth": {"password": "..."}}, or receiver rerun --auth-password)',
                )
            request = _with_password(request, password)
        return await self.submit(request, rerun_of=job_id)

    def holds(self, job_id: int) -> bool:
        """This instance keeps the secrets queued job ``job_id`` carried."""
        return job_id in self._secrets

    def _queue(self, job_id: int, request: JobBody) -> None:
        if request.masked() is not request:
            self._secrets[job_id] = request
        if self.on_queued is not None:
            self.on_queued()

    async def _send(
        self,
        provider: Provider,
        outgoing: Outgoing,
        job_id: int,
        request: JobBody,
        *,
        reraise: bool = True,
    ) -> _Sent | None:
        """The provider's answer recorded; None when it said "not now" (the job is queued)."""
        try:
            sent = await provider.send(outgoing)
        except ProviderUnavailable as exc:
            if exc.status_code != 429:
                await self._refused(provider, job_id, exc, reraise)
                return None
            # Over its limit after all (its window is fuller than ours): wait in the queue.
            await self.store.write(lambda tx: stored.set_queued(tx, job_id))
            self._queue(job_id, request)
            log.info("job.queued", id=job_id, provider=provider.name, retry_after=exc.retry_after)
            return None
        except ProviderError as exc:
            await self._refused(provider, job_id, exc, reraise)
            return None
        ids = await self.store.write(partial(_record_sent, job_id, outgoing, sent))
        if sent.external_kind is not None and self.on_polled is not None:
            self.on_polled()
        return _Sent(
            state=sent.state,
            external_id=sent.external_id,
            external_kind=sent.external_kind,
            jobs=ids if len(ids) > 1 else None,
        )

    async def _refused(
        self, provider: Provider, job_id: int, exc: ProviderError, reraise: bool
    ) -> None:
        reason = str(exc)  # the job's own error: without "job N recorded as error"
        exc.job_id = job_id
        await self.store.write(lambda tx: stored.set_error(tx, job_id, reason))
        log.warning("job.refused", id=job_id, provider=provider.name, reason=reason)
        if reraise:
            raise exc

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


class _Sent(msgspec.Struct, kw_only=True):
    state: str
    external_id: str
    external_kind: str | None
    jobs: list[int] | None


def _record_sent(job_id: int, outgoing: Outgoing, sent: Sent, tx: Tx) -> list[int]:
    """The provider's answer; for a request of several runs, a job per run (the first job is
    the first run's), and an error job for each run the answer did not link."""
    if not outgoing.parts:
        stored.set_sent(tx, job_id, external_id=sent.external_id, external_kind=sent.external_kind)
        return [job_id]
    first = stored.get(tx, job_id)
    ids = []
    for index, part in enumerate(outgoing.parts):
        request, body = kept(part), _encode(part.masked())
        answer = sent.parts[index] if index < len(sent.parts) else None
        if index == 0:
            stored.set_part(tx, job_id, request=request, body=body)
            part_id = job_id
        else:
            part_id = stored.insert(
                tx,
                stored.NewJob(
                    provider=first.provider,
                    state="submitted",
                    request=request,
                    body=body,
                    custom_data=part.custom_data,
                    rerun_of=first.rerun_of,
                ),
            )
        if answer is None:
            error = f"the provider linked {len(sent.parts)} runs for {len(outgoing.parts)} jobs"
            stored.set_error(tx, part_id, error)
        else:
            stored.set_sent(
                tx, part_id, external_id=answer.external_id, external_kind=answer.external_kind
            )
        ids.append(part_id)
    return ids


def _encode(request: JobBody) -> str:
    return msgspec.json.encode(request).decode()


def _decode(body: str | None) -> JobBody:
    decoded: JobBody = msgspec.json.decode(body or "null", type=providers.job_body_type())
    return decoded


def _with_password(request: JobBody, password: str) -> JobBody:
    auth = getattr(request, "auth", None)
    if auth is None:
        return request
    return msgspec.structs.replace(
        request,
        auth=msgspec.structs.replace(auth, password=password),
    )
