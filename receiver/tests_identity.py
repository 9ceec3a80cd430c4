"""What makes one test the same test across runs: its provider, its repository (else the
provider's project) and its name. ``test_id`` is that identity as 16 hex characters, stable
across databases and restarts: the dashboard's ``/tests/{test_id}``, the ``test_id`` column of
stored tests and the ``test_identities`` table all use it, and so should anything else that
keys on a test (per-test summaries, flakiness).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

from receiver.results import CustomData

LENGTH: Final = 16  # hex characters: 64 bits, no collision in any plausible number of tests
# custom_data keys naming the provider's project, for results that name no repository.
PROJECT_KEYS: Final = ("project_id", "project")
SEPARATOR: Final = "\x1f"  # the ASCII unit separator: in no provider, repository or test name


def scope(repository: str | None, custom_data: CustomData) -> str:
    """The repository, else the provider's project from custom_data, else empty."""
    if repository:
        return repository
    for key in PROJECT_KEYS:
        value = custom_data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


# The same tests come back run after run: their ids are worth keeping (a digest each).
@functools.lru_cache(maxsize=65_536)
def test_id(provider: str, scope: str, name: str) -> str:
    """The identity of the test ``name`` of ``provider`` in ``scope`` (see ``scope``)."""
    key = SEPARATOR.join((provider, scope, name)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:LENGTH]


test_id.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, whatever its name
