"""Signed callbacks with hostile content: never answered 5xx, and their raw body always kept.

Each body is either taken (200, stored ``accepted``) or refused (400 naming what was wrong,
stored ``rejected``); the callbacks table is read from the SQLite file itself.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.callbacks import CallbackIntake
from receiver.config import load_config
from receiver.demo import seed_callback
from receiver.limits import INT64_MAX, MAX_CUSTOM_DATA_DEPTH
from receiver.process import ServiceProcess
from receiver.record import Recorded, Recorder
from receiver.results import Result
from receiver.routing import Router
from tests.conftest import callback_body, signed

URL = "/callbacks/qualitymax"
MARK = "deep nesting goes here"  # a placeholder, replaced by bytes json.dumps cannot write
DEEP = json.dumps(MARK).encode()


def with_results(**changes: Any) -> bytes:
    """The seed callback with fields of its ``results`` changed."""
    document = json.loads(seed_callback())
    document["results"].update(changes)
    return json.dumps(document).encode()


def nested_bytes(levels: int, opener: bytes = b'{"a":') -> bytes:
    closer = b"}" if opener.startswith(b"{") else b"]"
    return opener * levels + b"1" + closer * levels


def kept(db_path: str, body: bytes) -> dict[str, Any] | None:
    """The callbacks row holding ``body``, read from the database file."""
    digest = hashlib.sha256(body).digest()
    with closing(sqlite3.connect(db_path)) as db:
        db.row_factory = sqlite3.Row
        row = db.execute(
            "SELECT c.* FROM callbacks c JOIN callback_digests d ON d.id = c.id WHERE d.digest = ?",
            [digest],
        ).fetchone()
    return None if row is None else dict(row)


def query(db_path: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db_path)) as db:
        return db.execute(sql, args).fetchall()


def assert_kept(db_path: str, body: bytes, status: int) -> dict[str, Any]:
    """The one promise: 200 and stored accepted, or 400 and stored rejected; never 5xx."""
    assert status in (200, 400), status
    row = kept(db_path, body)
    assert row is not None, "the raw body was not kept"
    assert row["body"] == body
    assert row["outcome"] == ("accepted" if status == 200 else "rejected")
    return row


# -- each reproduced defect, against a real `receiver serve` -------------------------------------

DEEP_CUSTOM_DATA = callback_body(custom_data=MARK).replace(DEEP, nested_bytes(1000))


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        pytest.param(
            b'{"results":{"status":"passed","total_tests":9223372036854775808}}',
            400,
            "Expected `int` <= 9223372036854775807 - at `$.results.total_tests`",
            id="total_tests-over-int64",
        ),
        pytest.param(with_results(duration_ms=1e19), 200, None, id="result-duration-1e19"),
        pytest.param(
            with_results(tests=[{"test": "t", "status": "passed", "duration_ms": 1e19}]),
            200,
            None,
            id="test-duration-1e19",
        ),
        pytest.param(
            callback_body(custom_data={"pr_number": "9223372036854775808"}),
            200,
            None,
            id="pr_number-text-over-int64",
        ),
        pytest.param(
            DEEP_CUSTOM_DATA,
            400,
            "Nested 1000 levels deep, too deep to decode - at `$.custom_data`",
            id="custom_data-1000-deep",
        ),
    ],
)
def test_a_reproduced_defect_is_answered_and_kept_by_the_served_process(
    service: ServiceProcess,
    http: httpx.Client,
    env: dict[str, str],
    body: bytes,
    status: int,
    detail: str | None,
) -> None:
    answer = http.post(URL, content=body, headers=signed(body))
    assert answer.status_code == status, answer.text
    row = assert_kept(env["RECEIVER_DB"], body, answer.status_code)
    if detail is not None:
        assert detail in answer.json()["detail"]
        assert detail in row["error"]
        return
    # Taken: what cannot be an INTEGER was left out of the derived columns, nothing else.
    db = env["RECEIVER_DB"]
    ((duration, pr_number, custom_data),) = query(
        db, "SELECT duration_ms, pr_number, custom_data FROM results WHERE id = ?",
        answer.json()["result_id"],
    )  # fmt: skip
    assert duration in (None, 54600) and pr_number is None
    assert query(db, "SELECT duration_ms FROM tests WHERE duration_ms > 10000000") == []
    if b"pr_number" in body:
        assert json.loads(custom_data)["pr_number"] == "9223372036854775808"


# -- the rest of each field's range, in process --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (with_results(passed=-1), "Expected `int` >= 0 - at `$.results.passed`"),
        (callback_body(custom_data=[1]), "Expected `object`, got `array` - at `$.custom_data`"),
        (with_results(failed=2**64), "<= 9223372036854775807 - at `$.results.failed`"),
        (with_results(total_tests=1e3), "got `float` - at `$.results.total_tests`"),
        (
            with_results(duration_ms=MARK).replace(DEEP, b"1e400"),
            "Number out of range - at `$.results.duration_ms`",
        ),
        (
            callback_body(custom_data=MARK).replace(
                DEEP, nested_bytes(MAX_CUSTOM_DATA_DEPTH + 1)
            ),
            "Nested deeper than 32 levels, the most custom_data may have - at `$.custom_data`",
        ),
        (
            callback_body(brand_new=MARK).replace(DEEP, nested_bytes(5000)),
            "Nested 5000 levels deep, too deep to decode - at `$.brand_new`",
        ),
        (
            with_results(tests=[{"test": "t", "extra": MARK}]).replace(
                DEEP, nested_bytes(2000, b"[")
            ),
            "Nested 2003 levels deep, too deep to decode - at `$.results`",
        ),
    ],
)  # fmt: skip
def test_a_value_that_cannot_be_normalised_is_a_400_naming_it(
    client: TestClient[Any], env: dict[str, str], body: bytes, detail: str
) -> None:
    answer = client.post(URL, content=body, headers=signed(body))
    assert answer.status_code == 400
    assert detail in answer.json()["detail"]
    assert_kept(env["RECEIVER_DB"], body, 400)


@pytest.mark.parametrize(
    "custom_data",
    [
        {"pr_number": 2**63},
        {"pr_number": -5},
        {"pr_number": "²"},
        {"pr_number": "9" * 4000},
        {"deep": json.loads(nested_bytes(MAX_CUSTOM_DATA_DEPTH - 1))},
        {"n": 10**300, "f": 1e308, "z": -0.0, "text": "a\u0000b\u202e\U0001f600"},
    ],
)
def test_custom_data_that_names_no_pr_is_taken_and_kept_whole(
    client: TestClient[Any], env: dict[str, str], auth: dict[str, str], custom_data: dict[str, Any]
) -> None:
    body = callback_body(custom_data=custom_data)
    answer = client.post(URL, content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    assert_kept(env["RECEIVER_DB"], body, 200)
    shown = client.get(f"/api/results/{answer.json()['result_id']}", headers=auth).json()
    assert shown["pr_number"] is None
    assert shown["custom_data"] == custom_data


class ExplodingRecorder(Recorder):
    """Routing that breaks on one branch name: a bug no test foresaw, set off by content."""

    def record(self, tx: Any, result: Result, **where: Any) -> Recorded:
        if result.branch == "boom":
            raise ValueError("unforeseen")
        return super().record(tx, result, **where)


def test_content_that_breaks_storing_unforeseen_is_kept_as_rejected(
    client: TestClient[Any], env: dict[str, str]
) -> None:
    services = client.app.state.services
    services.intake = CallbackIntake(
        services.store, services.intake.secrets, ExplodingRecorder(Router([]))
    )
    body = callback_body(custom_data={"branch": "boom"})
    answer = client.post(URL, content=body, headers=signed(body))
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        "The callback could not be normalised (ValueError); its raw body is kept and the "
        "service log has the cause"
    )
    row = assert_kept(env["RECEIVER_DB"], body, 400)
    assert row["result_id"] is None
    assert query(env["RECEIVER_DB"], "SELECT count(*) FROM results") == [(0,)]
    fine = callback_body(custom_data={"branch": "fine"})
    assert client.post(URL, content=fine, headers=signed(fine)).status_code == 200


# -- property: any signed body of the callback's shape, any value in any field -------------------

EXTREME_INTS = st.sampled_from(
    [0, 1, -1, 2**31, INT64_MAX, INT64_MAX + 1, -INT64_MAX - 2, 2**64, 10**30, 10**300]
)
BIG_FLOATS = st.sampled_from([1e308, -1e308, 1e19, 9.2e18, 5e-324, -0.0, 0.5, 4200.7])
ODD_TEXT = st.sampled_from(
    ["\u0000", "a\u0000b", "\u202eevil", "\u200f", "\U0001f600", "", "\ufeff", "²", "٣",
     str(INT64_MAX + 1), "-1", "passed", "FAILED", "feat/x"]
)  # fmt: skip
INTS = EXTREME_INTS | st.integers(min_value=0) | st.integers()
NUMBERS = INTS | BIG_FLOATS | st.floats(allow_nan=False, allow_infinity=False)
TEXT = ODD_TEXT | st.text(max_size=20)  # st.text() has no lone surrogates: see NOT_JSON
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=3),
    max_leaves=8,
)
# Values only a hostile sender writes: json.dumps gives NaN and Infinity (not JSON), and a
# lone surrogate escaped (\ud800, which msgspec refuses) or raw (bytes that are not UTF-8).
NOT_JSON = st.sampled_from([math.nan, math.inf, -math.inf, "\ud800", "x\udfff", "\udc00\ud800"])
CUSTOM_KEYS = st.sampled_from(
    ["branch", "repository", "repo", "pr_number", "sha", "commit_sha", "head_sha", "deploy_id",
     "environment"]
) | TEXT  # fmt: skip

# The documented shape with the documented types, each value as odd as its type allows.
TEST_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        key: NUMBERS if key == "duration_ms" else TEXT
        for key in ("test", "name", "status", "duration_ms", "screenshot_url", "video_url",
                    "execution_id", "error", "error_message")
    },
)  # fmt: skip
FAILURE = TEXT | st.fixed_dictionaries(
    {}, optional={key: TEXT for key in ("test", "name", "error", "message", "error_message")}
)
RESULTS = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["passed", "failed", "error", "cancelled"]) | TEXT,
        "total_tests": INTS,
        "passed": INTS,
        "failed": INTS,
        "duration_ms": NUMBERS,
        "report_app_url": TEXT,
        "report_url": TEXT,
        "tests": st.lists(TEST_ENTRY, max_size=3),
        "failures": st.lists(FAILURE, max_size=3),
        "unknown": VALUES,
    },
)
CALLBACK = st.fixed_dictionaries(
    {"results": RESULTS},
    optional={
        "event": TEXT,
        "job_id": TEXT,
        "custom_data": st.dictionaries(CUSTOM_KEYS, VALUES, max_size=6),
        "workflow_summary": TEXT,
        "brand_new": VALUES,
    },
)
# Where an unexpected type may go: every field of the shape (at most one per body, so that
# most bodies still reach normalising and the store).
FIELDS = [
    ("event",), ("job_id",), ("custom_data",), ("workflow_summary",), ("results",),
    *(("results", key) for key in ("status", "total_tests", "passed", "failed", "duration_ms",
                                   "report_app_url", "report_url", "tests", "failures")),
    *(("results", "tests", 0, key) for key in ("test", "name", "status", "duration_ms",
                                               "screenshot_url", "execution_id", "error")),
    ("results", "failures", 0), ("results", "failures", 0, "error"),
]  # fmt: skip
# Where a deep nesting may go; its depth reaches past the recursion limit Hypothesis raises.
DEEP_PLACES = [("custom_data", "deep"), ("brand_new",), ("results", "tests", 0, "extra")]
DEPTHS = [MAX_CUSTOM_DATA_DEPTH, MAX_CUSTOM_DATA_DEPTH + 1, 1000, 5000, 50_000]


def put(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Set ``value`` at ``path``, making (or replacing) the objects and lists on the way."""
    here: Any = document
    for step, after in itertools.pairwise(path):
        want = list if isinstance(after, int) else dict
        child = here[int(step)] if isinstance(here, list) else here.get(step)
        if not isinstance(child, want) or (want is list and not child):
            child = [{}] if want is list else {}
            here[step] = child
        here = child
    here[path[-1]] = value


@st.composite
def signed_bodies(draw: st.DrawFn) -> bytes:
    """A JSON body of the callback's shape; maybe one field of an unexpected type; strings
    with lone surrogates (escaped, or raw and so not UTF-8); maybe one value nested deep."""
    document = draw(CALLBACK)
    if draw(st.booleans()):
        put(document, draw(st.sampled_from(FIELDS)), draw(VALUES | NOT_JSON))
    deep = draw(st.none() | st.sampled_from(DEEP_PLACES))
    if deep is not None:
        put(document, deep, MARK)
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    body = text.encode("utf-8", "surrogatepass")
    if deep is not None and DEEP in body:  # an unexpected type may have replaced its parent
        opener = draw(st.sampled_from([b"[", b'{"k":']))
        body = body.replace(DEEP, nested_bytes(draw(st.sampled_from(DEPTHS)), opener))
    return body


ROUTES = """
[[routes]]
name = "changes"
notify = ["json://127.0.0.1:9/"]
on_change = true
group_by = ["branch", "pr_number", "deploy_id"]

[[routes]]
name = "pull requests"
notify = ["json://127.0.0.1:9/"]
[routes.when]
has = ["pr_number"]
branch = ["feat/*", "main"]
custom_data = { environment = "preview" }
"""


@pytest.fixture
def routed(write_config: Callable[[str], Path], env: dict[str, str]) -> Iterator[TestClient[Any]]:
    """The app with routes, so that routing (inside the callback's transaction) sees it all."""
    with TestClient(create_app(load_config(write_config(ROUTES), env))) as client:
        # The failing deliveries' retry jitter, drawn on the worker's thread from the global
        # random while Hypothesis draws the next body, would make it warn; any fixed draw will do.
        client.app.state.services.worker.draw = lambda: 0.5
        yield client


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=signed_bodies())
def test_any_signed_body_is_taken_or_refused_and_always_kept(
    routed: TestClient[Any], env: dict[str, str], body: bytes
) -> None:
    answer = routed.post(URL, content=body, headers=signed(body))
    event(f"answered {answer.status_code}")  # --hypothesis-show-statistics: how many got through
    assert_kept(env["RECEIVER_DB"], body, answer.status_code)
    if answer.status_code == 400:
        assert answer.json()["detail"]


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=signed_bodies())
def test_any_signed_body_is_taken_or_refused_and_kept_by_the_served_process(
    service: ServiceProcess, http: httpx.Client, env: dict[str, str], body: bytes
) -> None:
    answer = http.post(URL, content=body, headers=signed(body))
    assert_kept(env["RECEIVER_DB"], body, answer.status_code)
