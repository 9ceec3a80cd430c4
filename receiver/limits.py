"""What a number or a nesting from outside may be before it reaches the store.

SQLite's INTEGER is a signed 64-bit integer: a larger Python int makes the INSERT raise, which
would lose the whole write. Counts are bounded where they are decoded (``Count``, checked by
msgspec while decoding, at no extra cost); values merely derived from ``custom_data`` are
dropped when they cannot be what they claim (``pr_number_of``); nesting is bounded so that no
decoder or encoder ever runs out of stack (``too_deep``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final, NamedTuple

import msgspec

INT64_MAX: Final = 2**63 - 1
# The custom_data object itself is level 1; routing, grouping and messages read only its top
# level, so 32 leaves CI metadata plenty of room while no decoder nears Python's stack limit.
MAX_CUSTOM_DATA_DEPTH: Final = 32

# A number of tests: what the results table's INTEGER columns can hold, and never negative.
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


def duration_ms(value: float | None) -> int | None:
    """Milliseconds for an INTEGER column; None for a duration no run can have (negative, or
    beyond 64 bits). A duration is shown, never routed on, so it is dropped, not refused."""
    if value is None or not 0 <= value <= INT64_MAX:
        return None
    return int(value)


def pr_number_of(value: object) -> int | None:
    """The pull request a ``custom_data.pr_number`` names: a whole number from 1 to INT64_MAX,
    or such a number written in ASCII digits; anything else names none."""
    if isinstance(value, str):
        text = value.strip()
        # isdigit() alone takes "²" and "٣"; 19 digits bound int()'s work before the range check.
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            return None
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= INT64_MAX else None


def pr_number_problem(value: object) -> str | None:
    """Why a ``pr_number`` meant as a number cannot be one, for a job submitted with it.

    Numbers and numeric text must name a pull request; other values (null, "", a word) are
    simply no pull request, as on the callback path.
    """
    if value is None or isinstance(value, bool) or pr_number_of(value) is not None:
        return None
    numeric = isinstance(value, int | float) or (
        isinstance(value, str) and value.strip().lstrip("+-").isdigit()
    )
    if not numeric:
        return None
    shown = value if len(str(value)) <= 40 else f"{str(value)[:40]}…"
    return f"{shown!r} is not a pull request number: give a whole number from 1 to {INT64_MAX}"


def too_deep(value: object, levels: int) -> bool:
    """Does ``value`` (decoded JSON) nest more than ``levels`` arrays or objects, itself
    counted? Recursion goes at most ``levels`` deep, whatever the input.

    Runs for every callback's custom_data, so scalars are passed over without a call and
    without a generator (measured: 0.31 us for the seed callback's, 0.55 us with ``any()``;
    counting the body's brackets first, to skip the walk, cost 0.64 us).
    """
    if isinstance(value, dict):
        children: Iterable[object] = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    if levels <= 0:
        return True
    for child in children:  # noqa: SIM110 (see above: no any())
        if isinstance(child, dict | list) and too_deep(child, levels - 1):
            return True
    return False


def custom_data_problem(custom_data: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, problem) for custom_data that receiver could not keep, route and echo; else None."""
    if too_deep(custom_data, MAX_CUSTOM_DATA_DEPTH):
        return "custom_data", f"nests deeper than {MAX_CUSTOM_DATA_DEPTH} levels"
    problem = pr_number_problem(custom_data.get("pr_number"))
    if problem is not None:
        return "custom_data.pr_number", problem
    return None


# A JSON string as one token (so brackets inside it are skipped at C speed), or one bracket.
_JSON_TOKEN: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class Nesting(NamedTuple):
    depth: int  # of the field's value (itself 1), else of the whole body
    field: str | None  # the top-level key holding the deepest point, if the body is an object


def nesting(body: bytes) -> Nesting:
    """How deep ``body`` nests, and under which top-level key: for a body no decoder could
    take (a RecursionError), so that the answer names the field. One pass, no recursion."""
    depth = deepest = 0
    key = field = None
    in_object = body.lstrip()[:1] == b"{"
    for match in _JSON_TOKEN.finditer(body):
        token = match.group()
        if token[0] == 0x22:  # '"': at depth 1 the last string before a bracket is its key
            if depth == 1 and in_object:
                key = token
        elif token in (b"{", b"["):
            depth += 1
            if depth > deepest:
                deepest, field = depth, key
        else:
            depth -= 1
    if field is None:
        return Nesting(deepest, None)
    return Nesting(deepest - 1, _key_text(field))  # counted from the field's own value


def _key_text(token: bytes) -> str:
    try:
        return msgspec.json.decode(token, type=str)
    except msgspec.DecodeError:
        return token[1:-1].decode("utf-8", "replace")
