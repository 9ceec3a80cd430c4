"""A test's identity across runs: provider, repository (else the provider's project) and name.

Results name their tests by name only; the same name in two repositories is two tests, and so is
the same name at two providers. ``stable_id`` is a short, stable digest of the three, safe in a URL
(``/tests/{test_id}``) and as a key: the triage history (receiver.store.test_history), the API
and the dashboard all name a test by it.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Final

import msgspec

from receiver.results import Result

# custom_data keys naming the provider's project, read when a result names no repository.
PROJECT_KEYS: Final = ("project", "project_id")
PROJECT_SCOPE: Final = "project:"


class TestIdentity(msgspec.Struct, frozen=True, kw_only=True):
    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name says

    provider: str
    scope: str  # the repository, else the provider's project, else "" (one history per provider)
    name: str

    @property
    def id(self) -> str:
        return stable_id(self.provider, self.scope, self.name)


def scope_of(result: Result) -> str:
    """Where a result's tests live: its repository, else its project, else ``""``."""
    if repository := result.repository:
        return repository
    for key in PROJECT_KEYS:
        value = result.custom_data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return f"{PROJECT_SCOPE}{value}"  # never the same as a repository's owner/name
    return ""


def identity(result: Result, name: str) -> TestIdentity:
    return TestIdentity(provider=result.provider, scope=scope_of(result), name=name)


def stable_id(provider: str, scope: str, name: str) -> str:
    """16 hex digits: a digest of the three parts, each length-prefixed so none can run into
    the next."""
    parts = (provider, scope, name)
    key = "".join(f"{len(part)}:{part}" for part in parts).encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()
