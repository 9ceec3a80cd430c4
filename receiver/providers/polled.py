"""What the polled providers (Qualigate, QualGent) share: a client for one API key that keeps
within the provider's rate windows, JSON in and out, and being asked about runs rather than
called back.

What differs stays in each provider's module: how the key is sent (``auth_headers``), which rate
windows there are (``WINDOWS``: each limited on its own to ``LIMIT`` requests in
``WINDOW_SECONDS`` seconds), the endpoints, and how the answers normalise.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Mapping
from typing import ClassVar, Protocol, TypeVar

import msgspec

from receiver.providers.http import Api, RetryPolicy
from receiver.providers.window import Clock, Sleep, SlidingWindow

Answer = TypeVar("Answer")


class PolledSettings(Protocol):
    """The config section of a polled provider (``[qualigate]``, ``[qualgent]``)."""

    @property
    def base_url(self) -> str: ...

    @property
    def api_key(self) -> str | None: ...

    @property
    def poll_seconds(self) -> float: ...

    @property
    def timeout_seconds(self) -> float: ...


class PolledClient(abc.ABC):
    """One API key's client; one instance per service, so its rate windows are shared."""

    name: ClassVar[str]
    label: ClassVar[str]  # how it names itself in messages: "Qualigate"
    calls_back: ClassVar[bool] = False
    polled: ClassVar[bool] = True
    WINDOWS: ClassVar[tuple[str, ...]]
    LIMIT: ClassVar[int]  # requests per window, per API key (the documented limit)
    WINDOW_SECONDS: ClassVar[float]

    def __init__(
        self,
        settings: PolledSettings,
        *,
        rate_limit: int | None = None,
        rate_window: float | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        limit = self.LIMIT if rate_limit is None else rate_limit
        seconds = self.WINDOW_SECONDS if rate_window is None else rate_window
        self.api = Api(
            provider=self.label,
            base_url=settings.base_url,
            headers=self.auth_headers(settings.api_key or ""),
            windows={name: SlidingWindow(limit, seconds, clock=clock) for name in self.WINDOWS},
            policy=policy,
            sleep=sleep,
        )

    @staticmethod
    @abc.abstractmethod
    def auth_headers(api_key: str) -> Mapping[str, str]:
        """The headers that carry the key, as the provider's document says."""

    async def aclose(self) -> None:
        await self.api.aclose()

    async def get_json(
        self,
        path: str,
        answer: type[Answer],
        *,
        window: str | None,
        params: Mapping[str, str | None] | None = None,
    ) -> Answer:
        response = await self.api.call("GET", path, window=window, params=params)
        return msgspec.json.decode(response.content, type=answer)

    async def post_json(
        self,
        path: str,
        body: msgspec.Struct,
        answer: type[Answer],
        *,
        window: str,
        retry_limited: bool = True,
    ) -> Answer:
        """``retry_limited=False`` (a job's send): a 429 is raised, the job waits queued."""
        response = await self.api.call(
            "POST",
            path,
            window=window,
            retry_limited=retry_limited,
            content=msgspec.json.encode(body),
            headers={"Content-Type": "application/json"},
        )
        return msgspec.json.decode(response.content, type=answer)
