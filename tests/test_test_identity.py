"""A test's identity: the same provider, repository (else project) and name, the same id; the
id is issue 20's (receiver.tests_identity), so triage and the dashboard name a test alike."""

from __future__ import annotations

import hashlib

import pytest

from receiver.results import Result
from receiver.test_identity import identity, scope_of, stable_id


def result(**custom: object) -> Result:
    return Result(provider="qualitymax", event="test_results", status="passed", custom_data=custom)


def test_the_id_is_sha256_of_the_three_parts_joined_by_the_unit_separator() -> None:
    expected = hashlib.sha256(b"qualitymax\x1facme/shop\x1fLogin").hexdigest()[:16]
    assert stable_id("qualitymax", "acme/shop", "Login") == expected
    assert identity(result(repository="acme/shop"), "Login").id == expected


@pytest.mark.parametrize(
    ("custom", "scope"),
    [
        ({"repository": "acme/shop", "project_id": "9"}, "acme/shop"),
        ({"repo": "acme/web"}, "acme/web"),
        ({"project_id": 137, "project": "other"}, "137"),
        ({"project": "shop"}, "shop"),
        ({"project": True}, ""),  # not a name
        ({"project": ""}, ""),
        ({}, ""),
    ],
)
def test_the_scope_is_the_repository_else_the_project(
    custom: dict[str, object], scope: str
) -> None:
    assert scope_of(result(**custom)) == scope


def test_no_part_can_run_into_the_next() -> None:
    assert stable_id("a", "b/c", "d") != stable_id("a", "b", "c/d")
    assert stable_id("qualitymax", "", "x") != stable_id("qualigate", "", "x")
