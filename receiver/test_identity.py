"""A test's identity across runs: provider, repository (else the provider's project) and name.

Results name their tests by name only; the same name in two repositories is two tests, and so is
the same name at two providers. ``stable_id`` is a short, stable digest of the three, safe in a URL
(``/tests/{test_id}``) and as a key: the triage history (receiver.store.test_history), the API
and the dashboard all name a test by it.

It is computed exactly as issue 20's ``receiver.tests_identity.test_id`` (sha256 of the three
joined by the ASCII unit separator, 16 hex characters; the scope the repository, else
custom_data's ``project_id`` or ``project``), so the two modules give every test the same id and
one can replace the other.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Final

import msgspec

from receiver.results import Result

LENGTH: Final = 16  # hex characters: 64 bits
# custom_data keys naming the provider's project, read when a result names no repository.
PROJECT_KEYS: Final = ("project_id", "project")
SEPARATOR: Final = "\x1f"  # the ASCII unit separator: in no provider, repository or test name


class TestIdentity(msgspec.Struct, frozen=True, kw_only=True):
    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name says

    provider: str
    scope: str  # the repository, else the provider's project, else ""
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
            return str(value)
    return ""


def identity(result: Result, name: str) -> TestIdentity:
    return TestIdentity(provider=result.provider, scope=scope_of(result), name=name)


def stable_id(provider: str, scope: str, name: str) -> str:
    """The identity of the test ``name`` of ``provider`` in ``scope`` (see ``scope_of``)."""
    key = SEPARATOR.join((provider, scope, name)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:LENGTH]
