"""What the polling providers (Qualigate, QualGent) share: errors, rate limiter, retrying HTTP.

Both platforms are pull-only: we trigger a run, then ask until it ends. Each client keeps under
the documented rate limits before it is told off (a sliding window per endpoint group), waits as
told on a 429 anyway, and backs off 1 s doubling to 30 s on a 5xx or an unreachable host, as
Qualigate's document advises. Sleeping and the clock are injectable so tests run in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

import httpx
import msgspec
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from receiver.results import CustomData, Result

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

BACKOFF_FIRST: Final = 1.0
BACKOFF_MAX: Final = 30.0
DEFAULT_ATTEMPTS: Final = 6  # 1 + 2 + 4 + 8 + 16 s of waiting, then the caller is told


class ProviderError(Exception):
    """A provider refused or failed a request; the message carries the provider's own words."""

    def __init__(self, provider: str, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code


class AuthRejected(ProviderError):
    """401/403: the API key is wrong, inactive or lacks access to the resource."""


class UnknownTarget(ProviderError):
    """404: the test case, suite, project, app or run does not exist."""


class RequestRejected(ProviderError):
    """400/413/422, or a request we refuse to send: the message says what to change."""


class NotConfigured(RequestRejected):
    """A provider this service holds no key for: the message names the setting."""


class ProviderUnavailable(ProviderError):
    """5xx, rate limited or unreachable, still after every retry: try again later."""


class _Transient(Exception):
    """One failed attempt worth retrying; ``wait`` is the provider's own advice, if it gave one."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class SlidingWindow:
    """At most ``limit`` requests in any ``window`` seconds, decided before sending.

    A request counts from when its answer arrived (not from when it was sent): the server saw it
    no later than that, so its own window, however it measures it, never holds more than
    ``limit``. ``hold`` obeys the provider's X-RateLimit headers on top.
    """

    def __init__(self, limit: int, window: float, *, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._done: deque[float] = deque()
        self._in_flight = 0
        self._held_until = 0.0
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Seconds to wait before one more request may go."""
        now = self.clock()
        while self._done and now - self._done[0] >= self.window:
            self._done.popleft()
        wait = max(0.0, self._held_until - now)
        if len(self._done) + self._in_flight >= self.limit:
            if self._done and len(self._done) + self._in_flight - self.limit < len(self._done):
                oldest = self._done[len(self._done) + self._in_flight - self.limit]
                wait = max(wait, oldest + self.window - now)
            else:  # every slot is taken by a request still in flight: look again shortly
                wait = max(wait, self.window / self.limit)
        return wait

    async def acquire(self, sleep: Sleep) -> None:
        async with self._lock:
            while (wait := self.delay()) > 0:
                await sleep(wait)
            self._in_flight += 1

    def release(self) -> None:
        self._in_flight -= 1
        self._done.append(self.clock())

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the provider said its window resets then)."""
        self._held_until = max(self._held_until, self.clock() + seconds)


def _wait(state: RetryCallState) -> float:
    """The provider's advice when it gave one (429), else 1 s doubling up to 30 s."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, _Transient) and error.wait is not None:
        return max(0.0, error.wait)
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (state.attempt_number - 1)))


async def real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class ErrorBody(msgspec.Struct, kw_only=True):
    """Qualigate's ``{"error", "message", "retry_after"}``; FastAPI's (QualGent) ``{"detail"}``."""

    error: str | None = None
    message: str | None = None
    detail: str | list[Any] | None = None
    retry_after: float | None = None


class Api:
    """One provider's HTTP client: auth headers, rate windows, retries and typed errors."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        windows: Mapping[str, SlidingWindow],
        attempts: int = DEFAULT_ATTEMPTS,
        timeout: float = 10.0,
        sleep: Sleep = real_sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.windows = dict(windows)
        self.attempts = attempts
        self.sleep = sleep
        self.requests = 0
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, *, window: str | None, **kwargs: Any) -> bytes:
        """The body of a 2xx answer, after retries; raises a ProviderError subclass otherwise."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            wait=_wait,
            stop=stop_after_attempt(self.attempts),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            body: bytes = await retrying(self._once, method, path, window, kwargs)
        except _Transient as exc:
            raise ProviderUnavailable(
                self.provider, f"{exc} (gave up after {self.attempts} attempts; try again later)"
            ) from None
        return body

    async def _once(
        self, method: str, path: str, window: str | None, kwargs: dict[str, Any]
    ) -> bytes:
        limiter = self.windows.get(window) if window else None
        if limiter is not None:
            await limiter.acquire(self.sleep)
        try:
            self.requests += 1
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            message = f"{self.provider} is unreachable ({type(exc).__name__}: {exc})"
            if method != "GET" and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                # The trigger may have been received: sending it again could start a second run.
                raise ProviderUnavailable(self.provider, f"{message}; not retried") from None
            raise _Transient(message) from None
        finally:
            if limiter is not None:
                limiter.release()
        if limiter is not None:
            _obey_headers(limiter, response.headers)
        return self._check(response)

    def _check(self, response: httpx.Response) -> bytes:
        code = response.status_code
        if code < 300:
            return response.content
        error = _error_body(response.content)
        message = f"{self.provider} answered {code}: {_words(error, response)}"
        if code == 429:
            raise _Transient(message, wait=_retry_after(error, response.headers))
        if code >= 500:
            raise _Transient(message)
        if code in (401, 403):
            raise AuthRejected(self.provider, message, code)
        if code == 404:
            raise UnknownTarget(self.provider, message, code)
        raise RequestRejected(self.provider, message, code)


def _obey_headers(limiter: SlidingWindow, headers: httpx.Headers) -> None:
    """QualGent's X-RateLimit-Remaining: 0 means wait X-RateLimit-Reset seconds."""
    remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
    try:
        if remaining is not None and int(float(remaining)) <= 0 and reset is not None:
            limiter.hold(float(reset))
    except ValueError:
        return


def _error_body(content: bytes) -> ErrorBody:
    try:
        return msgspec.json.decode(content, type=ErrorBody)
    except msgspec.DecodeError:
        return ErrorBody()


def _words(error: ErrorBody, response: httpx.Response) -> str:
    if error.message:
        return f"{error.error}: {error.message}" if error.error else error.message
    if isinstance(error.detail, str):
        return error.detail
    if error.detail:
        return msgspec.json.encode(error.detail).decode()
    if error.error:
        return error.error
    return response.reason_phrase or "(no message)"


def _retry_after(error: ErrorBody, headers: httpx.Headers) -> float | None:
    if error.retry_after is not None:
        return error.retry_after
    try:
        return float(headers["retry-after"])
    except (KeyError, ValueError):
        return None


class ClientSettings(Protocol):
    @property
    def base_url(self) -> str: ...

    @property
    def api_key(self) -> str | None: ...


S = TypeVar("S", bound=ClientSettings)


class Client(Generic[S]):
    """What both clients share: their settings, and one ``Api`` with a rate window per endpoint
    group (``groups``), ``rate_limit`` requests per ``rate_window`` seconds each."""

    label: ClassVar[str]  # how the provider names itself in messages: "Qualigate"
    groups: ClassVar[tuple[str, ...]]
    rate_limit: ClassVar[int]
    rate_window: ClassVar[float]

    def __init__(
        self,
        settings: S,
        *,
        sleep: Sleep = real_sleep,
        clock: Clock = time.monotonic,
        rate_limit: int | None = None,
        rate_window: float | None = None,
        attempts: int | None = None,
    ) -> None:
        self.settings = settings
        limit, window = rate_limit or self.rate_limit, rate_window or self.rate_window
        self.api = Api(
            provider=self.label,
            base_url=settings.base_url,
            headers=self.auth_headers(settings.api_key or ""),
            windows={g: SlidingWindow(limit, window, clock=clock) for g in self.groups},
            sleep=sleep,
            attempts=attempts or DEFAULT_ATTEMPTS,
        )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.api.aclose()


# ---------------------------------------------------------------------------------------------
# What the poller and submit_polling_job need from a polling provider.


class Triggered(msgspec.Struct, kw_only=True):
    """A run the provider accepted: how to ask about it later."""

    external_kind: str
    external_id: str
    state: str = "submitted"


class Progress(msgspec.Struct, kw_only=True):
    """One poll's answer: still open (``state`` pending/running) or ended with ``result``."""

    state: str
    raw_status: str | None = None
    result: Result | None = None


class PollSettings(Protocol):
    @property
    def poll_seconds(self) -> float: ...

    @property
    def timeout_seconds(self) -> float: ...


class PollingProvider(Protocol):
    """A provider the poller drives; its ``api`` counts the requests it made."""

    name: str
    api: Api

    @property
    def settings(self) -> PollSettings: ...

    @property
    def request_type(self) -> type[msgspec.Struct]: ...

    async def trigger(self, request: Any, custom_data: CustomData) -> Triggered: ...

    async def poll(self, kind: str, external_id: str, custom_data: CustomData) -> Progress: ...
