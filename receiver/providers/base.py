"""What every provider is to the rest of receiver: one protocol, and the shapes it speaks in.

A provider takes its own job request (a ``JobBody`` tagged with its name, as ``POST /api/jobs``
decodes it), checks it (``prepare``, before anything is recorded), sends it (``send``, once the
job is recorded), and, if it does not call back, is asked about the run until it ends (``poll``).
Its module holds its payload structs, its client and how its results normalise; the registry
(receiver.providers) lists it once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import msgspec

from receiver import limits
from receiver.providers.errors import RequestRejected, UnknownTarget
from receiver.results import CustomData, Result


class JobBody(msgspec.Struct, tag_field="provider", kw_only=True, forbid_unknown_fields=True):
    """``POST /api/jobs``: ``provider`` picks which provider's fields follow; ``custom_data``
    comes back with the result. Each provider subclasses it with ``tag=<its name>``."""

    custom_data: CustomData = msgspec.field(default_factory=dict)

    @property
    def wants_callback(self) -> bool:
        """Its result comes as a signed callback (a callback URL with a job key is made)."""
        return False

    def masked(self) -> JobBody:
        """This body as the job row keeps it: without secrets (see ``with_secrets``)."""
        return self

    def missing_secrets(self) -> list[str]:
        """The fields this (masked) body needs again before it can be sent: ``auth.password``."""
        return []


class Outgoing(msgspec.Struct, kw_only=True):
    """A request checked and ready to send: ``wire`` is the provider's own request, ``kept`` the
    JSON the job row keeps (secrets masked), ``url`` the page under test when there is one.
    ``parts``: one request for several runs (QualGent's ``jobs[]``), each its own job."""

    wire: Any
    kept: str
    url: str | None = None
    parts: list[JobBody] = msgspec.field(default_factory=list)


class Sent(msgspec.Struct, kw_only=True):
    """The provider took the request: how to find the run again (for each part, in order)."""

    external_id: str
    external_kind: str | None = None  # what the poller asks about; None: the provider calls back
    state: str = "submitted"
    parts: list[Sent] = msgspec.field(default_factory=list)


class Progress(msgspec.Struct, kw_only=True):
    """One poll's answer: still open (``state`` pending/running) or ended with ``result``."""

    state: str
    raw_status: str | None = None
    result: Result | None = None
    progress: float | None = None  # 0-100, when the provider says how far it got


class ProviderSettings(Protocol):
    @property
    def poll_seconds(self) -> float: ...

    @property
    def timeout_seconds(self) -> float: ...


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str:
        """How it names itself in messages: "Qualigate"."""
        ...

    @property
    def request_type(self) -> type[JobBody]: ...

    @property
    def calls_back(self) -> bool:
        """Results arrive as signed callbacks (a callback URL is made for each job)."""
        ...

    @property
    def polled(self) -> bool:
        """Some of its jobs are polled (the poller asks about them)."""
        ...

    @property
    def settings(self) -> ProviderSettings: ...

    def prepare(self, request: Any, callback_url: str | None) -> Outgoing:
        """Check ``request`` against the provider's documented limits; RequestRejected names
        the field. Nothing is recorded or sent before this passes."""
        ...

    async def send(self, outgoing: Outgoing) -> Sent: ...

    def send_delay(self, request: Any) -> float:
        """Seconds before sending ``request`` keeps within the provider's documented limits
        (0: now). A job with a delay is queued, not sent."""
        ...

    async def poll(
        self, kind: str, external_id: str, custom_data: CustomData, request: str | None = None
    ) -> Progress:
        """How the run goes; ``request`` is the job's request as kept (what the answers lack)."""
        ...

    async def aclose(self) -> None: ...


def check_custom_data(provider: str, custom_data: CustomData) -> None:
    """What every provider refuses in custom_data before sending (see receiver.limits)."""
    problem = limits.custom_data_problem(custom_data)
    if problem is not None:
        raise RequestRejected(provider, ": ".join(problem))


def kept(request: msgspec.Struct) -> str:
    return msgspec.json.encode(request).decode()


class CallsBack:
    """For a provider that calls back: there is nothing to poll."""

    label: ClassVar[str]

    async def poll(
        self, kind: str, external_id: str, custom_data: CustomData, request: str | None = None
    ) -> Progress:
        raise UnknownTarget(self.label, f"{self.label} calls back; it is not polled ({kind})")
