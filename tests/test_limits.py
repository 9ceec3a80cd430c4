"""receiver.limits: which numbers and nestings from outside may reach the store."""

from __future__ import annotations

import pytest

from receiver.limits import (
    INT64_MAX,
    MAX_CUSTOM_DATA_DEPTH,
    Nesting,
    custom_data_problem,
    duration_ms,
    nesting,
    pr_number_of,
    too_deep,
)
from receiver.results import Result


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (42, 42),
        ("42", 42),
        (" 42 ", 42),
        (INT64_MAX, INT64_MAX),
        (str(INT64_MAX), INT64_MAX),
        (INT64_MAX + 1, None),
        (str(INT64_MAX + 1), None),
        ("9" * 5000, None),  # int() would refuse it, past Python's digit limit
        (0, None),
        (-7, None),
        ("-7", None),
        ("²", None),  # isdigit() says yes, int() says no
        ("٣", None),  # an Arabic-Indic three: not how a PR number is written
        (42.0, None),
        (True, None),
        (None, None),
        ({"n": 42}, None),
    ],
)
def test_a_pr_number_is_a_whole_number_that_fits_in_64_bits(
    value: object, number: int | None
) -> None:
    assert pr_number_of(value) == number
    result = Result(provider="p", event="e", status="passed", custom_data={"pr_number": value})
    assert result.pr_number == number


@pytest.mark.parametrize(
    ("value", "kept"),
    [(54600, 54600), (4200.7, 4200), (0, 0), (-0.0, 0), (-1, None), (1e19, None),
     (INT64_MAX, INT64_MAX), (INT64_MAX + 1, None), (float(INT64_MAX), None), (None, None)],
)  # fmt: skip
def test_a_duration_beyond_an_integer_column_is_dropped(
    value: float | None, kept: int | None
) -> None:
    assert duration_ms(value) == kept


def nested(levels: int) -> object:
    value: object = 1
    for level in range(levels):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("levels", [0, 1, 2, MAX_CUSTOM_DATA_DEPTH, MAX_CUSTOM_DATA_DEPTH + 1])
def test_too_deep_counts_arrays_and_objects_including_the_outer_one(levels: int) -> None:
    assert too_deep(nested(levels), MAX_CUSTOM_DATA_DEPTH) is (levels > MAX_CUSTOM_DATA_DEPTH)


def test_too_deep_finds_the_one_deep_branch_among_flat_ones() -> None:
    data = {"a": 1, "b": [1, 2, {"c": 3}], "z": nested(MAX_CUSTOM_DATA_DEPTH)}
    assert too_deep(data, MAX_CUSTOM_DATA_DEPTH)
    assert not too_deep(data, MAX_CUSTOM_DATA_DEPTH + 1)


@pytest.mark.parametrize(
    ("custom_data", "problem"),
    [
        ({"branch": "main", "pr_number": 42}, None),
        ({"pr_number": None}, None),
        ({"pr_number": ""}, None),  # no pull request, as a CI template writes it on a push
        ({"pr_number": "none"}, None),
        ({"pr_number": 2**63}, ("custom_data.pr_number", "9223372036854775808 is not a pull")),
        ({"pr_number": "9223372036854775808"}, ("custom_data.pr_number", "'92233720368547")),
        ({"pr_number": -1}, ("custom_data.pr_number", "-1 is not a pull request number")),
        ({"pr_number": "-1"}, ("custom_data.pr_number", "'-1' is not a pull request number")),
        ({"pr_number": 4.5}, ("custom_data.pr_number", "4.5 is not a pull request number")),
        ({"deep": nested(MAX_CUSTOM_DATA_DEPTH)}, ("custom_data", "nests deeper than 32 levels")),
    ],
)
def test_custom_data_problems_name_the_field(
    custom_data: dict[str, object], problem: tuple[str, str] | None
) -> None:
    found = custom_data_problem(custom_data)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found[0] == problem[0] and found[1].startswith(problem[1])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{}", Nesting(1, None)),
        (b'{"a": 1, "b": [[2]]}', Nesting(2, "b")),
        (b'{"a": "[[[[", "b": {}}', Nesting(1, "b")),  # brackets in strings do not count
        (b'{"a\\"": [[1]], "b": 2}', Nesting(2, 'a"')),
        (b'{"a": "\\\\", "b": [1]}', Nesting(1, "b")),
        (b'{"custom_data": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001, Nesting(1000, "custom_data")),
        (b"[" * 1000 + b"]" * 1000, Nesting(1000, None)),
        (b'["key-like", [[1]]]', Nesting(3, None)),
    ],
)
def test_nesting_names_the_top_level_field_of_the_deepest_point(
    body: bytes, expected: Nesting
) -> None:
    assert nesting(body) == expected
