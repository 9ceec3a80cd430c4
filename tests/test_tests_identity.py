"""A test's identity: the same provider, repository (else project) and name, the same id; triage,
the stored tests and the dashboard all name a test by it."""

from __future__ import annotations

import hashlib

import pytest

from receiver.tests_identity import scope, test_id


def test_the_id_is_sha256_of_the_three_parts_joined_by_the_unit_separator() -> None:
    expected = hashlib.sha256(b"qualitymax\x1facme/shop\x1fLogin").hexdigest()[:16]
    assert test_id("qualitymax", "acme/shop", "Login") == expected


@pytest.mark.parametrize(
    ("repository", "custom", "expected"),
    [
        ("acme/shop", {"project_id": "9"}, "acme/shop"),
        (None, {"project_id": 137, "project": "other"}, "137"),
        (None, {"project": "shop"}, "shop"),
        (None, {"project": True}, ""),  # not a name
        (None, {"project": ""}, ""),
        (None, {}, ""),
    ],
)
def test_the_scope_is_the_repository_else_the_project(
    repository: str | None, custom: dict[str, object], expected: str
) -> None:
    assert scope(repository, custom) == expected


def test_no_part_can_run_into_the_next() -> None:
    assert test_id("a", "b/c", "d") != test_id("a", "b", "c/d")
    assert test_id("qualitymax", "", "x") != test_id("qualigate", "", "x")
