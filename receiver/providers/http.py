"""One retrying HTTP client for every provider: auth headers, rate windows, typed errors.

Retried (with stamina) is only what cannot have been acted on, or is safe to repeat:
- nothing was sent (connection refused, connect timeout): always;
- 429 and 503, the provider's "not now": after its ``Retry-After`` (obeyed in full) or the
  backoff;
- any other 5xx, or a failure after the request was sent: only for a request that may be
  repeated (a GET). A trigger or submit may have started a paid run, so it raises MaybeReceived.
Other answers map to the one error hierarchy of receiver.providers.errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

import httpx
import msgspec
import stamina

from receiver import redact, retry_after
from receiver.providers.errors import (
    AuthRejected,
    MaybeReceived,
    ProviderError,
    ProviderUnavailable,
    RequestRejected,
    UnknownTarget,
)
from receiver.providers.window import Sleep, SlidingWindow

NOT_ACTED_ON: Final = (429, 503)  # answers that say the request was refused before acting
IDEMPOTENT: Final = ("GET", "HEAD")


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """How stubbornly to retry (stamina's parameters)."""

    attempts: int = 6
    wait_initial: float = 1.0
    wait_max: float = 30.0
    wait_jitter: float = 0.5
    timeout: float = 120.0  # in all


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every provider's error shape: Qualigate's ``{"error", "message", "retry_after"}``,
    FastAPI's ``{"detail"}`` (QualityMax, QualGent)."""

    error: str | None = None
    message: str | None = None
    detail: str | list[Any] | None = None
    retry_after: float | None = None

    def words(self, response: httpx.Response) -> str:
        if self.message:
            return f"{self.error}: {self.message}" if self.error else self.message
        if isinstance(self.detail, str):
            return self.detail
        if self.detail:
            return msgspec.json.encode(self.detail).decode()
        return self.error or response.reason_phrase or f"HTTP {response.status_code}"


class _NotNow(Exception):
    """One attempt the provider refused before acting on it (or never got): retry."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


def _wait(exc: BaseException) -> bool | float:
    """stamina's hook: retry _NotNow, after the provider's Retry-After when it gave one."""
    if not isinstance(exc, _NotNow):
        return False
    advice = exc.error.retry_after
    return True if advice is None else max(0.0, advice)


class Api:
    """One provider account's HTTP client."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        windows: Mapping[str, SlidingWindow] | None = None,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        follow_redirects: bool = False,
    ) -> None:
        self.provider = provider
        self.windows = dict(windows or {})
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.requests = 0  # requests sent, for tests and the rate figures
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            timeout=timeout,
            follow_redirects=follow_redirects,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def delay(self, windows: tuple[str, ...]) -> float:
        """Seconds until a request counted in ``windows`` would be sent (0: now)."""
        return max((self.windows[name].delay() for name in windows), default=0.0)

    def hold(self, windows: tuple[str, ...], seconds: float) -> None:
        """The provider said "not for ``seconds``" (its 429's Retry-After): send nothing."""
        for name in windows:
            self.windows[name].hold(seconds)

    async def call(
        self,
        method: str,
        path: str,
        *,
        window: str | tuple[str, ...] | None = None,
        retry_limited: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """A 2xx or 3xx answer, after retries; a ProviderError subclass otherwise.
        ``retry_limited=False``: a 429 is raised at once (a job waits in receiver's queue,
        not in the request that submits it)."""
        policy, attempts = self.policy, 0
        try:
            async for attempt in stamina.retry_context(
                on=_wait,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    attempts = attempt.num
                    try:
                        return await self._once(method, path, window, kwargs)
                    except _NotNow as not_now:
                        if not retry_limited and not_now.error.status_code == 429:
                            raise not_now.error from None
                        raise
        except _NotNow as last:
            error = last.error
            raise ProviderUnavailable(
                self.provider,
                f"{error} (gave up after {attempts} attempts; try again later)",
                status_code=error.status_code,
                retry_after=error.retry_after,
            ) from None
        raise AssertionError("stamina ended without an attempt")  # pragma: no cover

    async def _once(
        self, method: str, path: str, window: str | tuple[str, ...] | None, kwargs: dict[str, Any]
    ) -> httpx.Response:
        # A request may count in several windows (QualityMax: its endpoint's and its type's).
        names = (window,) if isinstance(window, str) else (window or ())
        limiters = [self.windows[name] for name in names if name in self.windows]
        for limiter in limiters:
            await limiter.acquire(self.sleep)
        try:
            self.requests += 1
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unanswered(method, path, exc) from None
        finally:
            for limiter in limiters:
                limiter.release()
        for limiter in limiters:
            _obey_headers(limiter, response.headers)
        if response.status_code == 429 and limiters:  # its window is fuller than ours: obey
            advice = _error_body(response.content).retry_after
            if advice is None:
                advice = retry_after.parse(response.headers.get("retry-after"))
            for limiter in limiters:
                limiter.hold(1.0 if advice is None else advice)
        return self._check(method, response)

    def _unanswered(self, method: str, path: str, exc: httpx.TransportError) -> Exception:
        where = redact.url(f"{self._http.base_url}{path}")
        what = f"{self.provider} is unreachable at {where} ({type(exc).__name__}: {exc})"
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):  # nothing was sent
            return _NotNow(ProviderUnavailable(self.provider, what))
        if method not in IDEMPOTENT:
            return MaybeReceived(self.provider, f"{what} after the request was sent")
        return _NotNow(ProviderUnavailable(self.provider, what))

    def _check(self, method: str, response: httpx.Response) -> httpx.Response:
        code = response.status_code
        if code < 400:
            return response
        body = _error_body(response.content)
        message = f"{self.provider} answered {code}: {body.words(response)}"
        advice = body.retry_after
        if advice is None:
            advice = retry_after.parse(response.headers.get("retry-after"))
        if code in NOT_ACTED_ON:
            raise _NotNow(
                ProviderUnavailable(self.provider, message, status_code=code, retry_after=advice)
            )
        if code >= 500:
            if method not in IDEMPOTENT:
                raise MaybeReceived(self.provider, message, status_code=code)
            raise _NotNow(ProviderUnavailable(self.provider, message, status_code=code))
        kind = {401: AuthRejected, 403: AuthRejected, 404: UnknownTarget}.get(code, RequestRejected)
        raise kind(self.provider, message, status_code=code)


def _obey_headers(limiter: SlidingWindow, headers: httpx.Headers) -> None:
    """X-RateLimit-Remaining: 0 means wait X-RateLimit-Reset seconds (QualGent sends them)."""
    remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
    try:
        if remaining is not None and int(float(remaining)) <= 0 and reset is not None:
            limiter.hold(float(reset))
    except ValueError:
        return


def _error_body(content: bytes) -> ErrorBody:
    try:
        return msgspec.json.decode(content, type=ErrorBody)
    except msgspec.DecodeError:  # ValidationError is one: a body of another shape
        return ErrorBody()
