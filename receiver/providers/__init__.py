"""One module per test platform (its payload structs, its client, how its results normalise),
each a ``Provider`` (receiver.providers.base); this registry lists them once.

Adding a provider is its module, its simulator, and its line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Union

from receiver.config import Config
from receiver.providers.base import JobBody, Provider
from receiver.providers.qualgent import Qualgent
from receiver.providers.qualigate import Qualigate
from receiver.providers.qualitymax import QualityMax

# A provider class: its ``name``, ``request_type``, and ``from_config`` (None: not configured).
Factory = Callable[[Config], Provider | None]

REGISTRY: dict[str, Any] = {kind.name: kind for kind in (QualityMax, Qualigate, Qualgent)}

# POST /api/jobs without ``provider`` means QualityMax (DESIGN.md).
DEFAULT: Final = QualityMax.name


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def job_body_type() -> Any:
    """The tagged union POST /api/jobs decodes: every registered provider's request."""
    kinds: list[type[JobBody]] = [kind.request_type for kind in REGISTRY.values()]
    return kinds[0] if len(kinds) == 1 else Union[tuple(kinds)]  # noqa: UP007  (built at run time)


def configured(config: Config) -> dict[str, Provider]:
    """An instance of every provider this config sets up, by name."""
    found = {}
    for name, kind in REGISTRY.items():
        provider = kind.from_config(config)
        if provider is not None:
            found[name] = provider
    return found


def polled(providers: Iterable[Provider]) -> list[Provider]:
    """The providers with jobs the poller asks about (QualityMax's SAST scans and gap analyses
    too, though its tests call back)."""
    return [p for p in providers if p.polled]
