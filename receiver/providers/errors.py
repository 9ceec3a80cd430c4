"""What can go wrong with a provider, one hierarchy for all of them.

Each kind says what ``POST /api/jobs`` answers (``status``); the web layer turns them into HTTP
once (receiver.web.errors). The message carries the provider's own words.
"""

from __future__ import annotations

from typing import ClassVar


class ProviderError(Exception):
    """A provider refused or failed a request, or cannot be asked."""

    status: ClassVar[int] = 502

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code  # the provider's own HTTP status, when it answered
        self.retry_after = retry_after
        self.job_id: int | None = None  # set once the job it concerns was recorded

    @property
    def http_status(self) -> int:
        """What POST /api/jobs answers for it."""
        return self.status

    def __str__(self) -> str:
        message = super().__str__()
        if self.job_id is not None:
            return f"{message} (job {self.job_id} recorded as error)"
        return message


class RequestRejected(ProviderError):
    """400/413/422 from the provider, or a request we refuse to send: what to change is said."""

    status = 400


class UnknownTarget(ProviderError):
    """404: the test case, suite, project, app or run does not exist."""

    status = 404


class NotConfigured(ProviderError):
    """This service lacks a setting the provider needs; the message names it."""

    status = 409


class AuthRejected(ProviderError):
    """401/403: the service's key is wrong, inactive or lacks access."""

    status = 502


class MaybeReceived(ProviderError):
    """The request failed after it was sent: the provider may have started it. Never retried;
    check at the provider before sending again."""

    status = 502


class ProviderUnavailable(ProviderError):
    """Unreachable, rate limiting (429) or unavailable (5xx), still after every retry."""

    status = 503

    @property
    def http_status(self) -> int:
        """503 (with Retry-After) when the provider said "not now"; 502 when it failed."""
        return 503 if self.status_code in (429, 503) else 502
