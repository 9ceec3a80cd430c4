"""Matrix runs in one place: the groups a result belongs to, and its row in each.

A *group* is what one living message speaks for: a pull request (``pr:owner/name#42``), a commit
(``sha:owner/name@4b1e7c0``) or any custom_data value (``deploy_id:abc-123``). A route's
``thread_by`` lists the keys in order of preference; the first the result has wins.

A *row* is one job of the group: a browser, a device, a provider. Results of the same job (its
``running`` update, a late result after its timeout, a re-run of the same request) land on the
same row, newest result wins. A row is named by the custom_data keys that say which cell of a
matrix a job is (``matrix``, ``browser``, ``device``, ``os_version``, ``viewport``); without
them, by the request receiver submitted (a re-run of the same request is the same row); else
the provider's results share one row, as before matrix rows (the newest result speaks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Final, Protocol

import msgspec

from receiver import views
from receiver.results import TestCase
from receiver.store import jobs
from receiver.store import matrix as stored
from receiver.store.tx import Tx
from receiver.views import ResultDetail

PR_GROUP: Final = ("pr_number",)
COMMIT_GROUP: Final = ("sha",)
SHA_KEYS: Final = ("sha", "commit_sha", "head_sha")
LABEL_KEYS: Final = ("matrix", "browser", "device", "os_version", "viewport")
# Request fields that differ between runs of the same matrix cell: left out of its identity.
PER_RUN_FIELDS: Final = ("callback_url", "custom_data", "context", "url")
MAX_LABEL_CHARS: Final = 80
# Worst first: the status a group shows is its worst row's.
SEVERITY: Final = ("failed", "error", "timeout", "canceled", "running", "pending", "passed")


class Grouped(Protocol):
    """What grouping reads of a result (a Result being recorded, or a stored ResultDetail)."""

    @property
    def provider(self) -> str: ...

    @property
    def custom_data(self) -> dict[str, Any]: ...

    @property
    def repository(self) -> str | None: ...

    @property
    def pr_number(self) -> int | None: ...

    @property
    def sha(self) -> str | None: ...

    @property
    def kind(self) -> str: ...

    @property
    def tests(self) -> list[TestCase]: ...


def lane(result: Grouped) -> str:
    """Whose row and commit status a result takes: its provider's, or for a SAST scan or a gap
    analysis their own (``sast``: a scan's verdict never hides, or is hidden by, tests)."""
    return result.provider if result.kind == "tests" else result.kind


def group_of(keys: Iterable[str], result: Grouped) -> str | None:
    """The group ``result`` belongs to by the first of ``keys`` it has; None when it has none."""
    for key in keys:
        if key == "pr_number":
            if result.pr_number is not None:
                return f"pr:{result.repository or ''}#{result.pr_number}"
        elif key in SHA_KEYS:
            if result.sha:
                return f"sha:{result.repository or ''}@{result.sha}"
        else:
            value = result.custom_data.get(key)
            if value not in (None, "") and not isinstance(value, dict | list):
                return f"{key}:{value}"
    return None


def label_of(result: Grouped) -> str | None:
    """The matrix cell the custom_data names (``chromium``, ``Pixel 8 · 14``), if any."""
    values = [result.custom_data.get(key) for key in LABEL_KEYS]
    shown = [str(v) for v in values if v not in (None, "") and not isinstance(v, dict | list)]
    return " · ".join(shown)[:MAX_LABEL_CHARS] or None


def row_of(result: Grouped, *, request: str | None, job_id: int | None) -> Row:
    """The row (key and label) of ``result`` in any of its groups."""
    provider = lane(result)
    if label := label_of(result):
        return Row(key=f"{provider}|{label}", label=f"{provider} · {label}")
    if placed := _placed(result):  # one test on a named device: "Login · Pixel 8 · Android 14"
        return Row(key=f"{provider}|{placed}", label=f"{provider} · {placed}")
    if identity := _request_identity(request):
        return Row(key=f"{provider}|request:{identity}", label=f"{provider} · job {job_id}")
    return Row(key=f"{provider}|", label=provider)


def _placed(result: Grouped) -> str | None:
    if len(result.tests) != 1 or not result.tests[0].where:
        return None
    test = result.tests[0]
    return f"{test.name} · {test.where}"[:MAX_LABEL_CHARS]


class Row(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    label: str


def _request_identity(request: str | None) -> str | None:
    if not request:
        return None
    try:
        fields = msgspec.json.decode(request)
    except msgspec.DecodeError:
        return None
    if not isinstance(fields, dict):
        return None
    kept = {k: v for k, v in fields.items() if k not in PER_RUN_FIELDS}
    canonical = msgspec.json.encode(kept, order="sorted")
    return hashlib.sha256(canonical).hexdigest()[:16]


def record_rows(
    tx: Tx,
    groupings: Iterable[tuple[str, ...]],
    result: Grouped,
    *,
    result_id: int,
    job_id: int | None,
) -> None:
    """In the result's transaction: its row in each group the living targets use."""
    keys = {key for keys in groupings if (key := group_of(keys, result)) is not None}
    if not keys:
        return
    request = jobs.request_of(tx, job_id) if job_id is not None else None
    row = row_of(result, request=request, job_id=job_id)
    for group_key in sorted(keys):
        stored.upsert(
            tx,
            group_key=group_key,
            row_key=row.key,
            label=row.label,
            result_id=result_id,
            sha=result.sha,
        )


# -- reading a group back, for the targets that render it -------------------------------------


class Cell(msgspec.Struct, kw_only=True):
    label: str
    result: ResultDetail


class Group(msgspec.Struct, kw_only=True):
    key: str
    cells: list[Cell]
    earlier: int = 0  # rows of earlier commits, not shown

    @property
    def status(self) -> str:
        return worst(cell.result.status for cell in self.cells)

    @property
    def newest_id(self) -> int:
        return max((cell.result.id for cell in self.cells), default=0)


def worst(statuses: Iterable[str]) -> str:
    found = set(statuses)
    return next((s for s in SEVERITY if s in found), "passed")


def read_group(
    tx: Tx, group_key: str, current: ResultDetail, *, provider: str | None = None
) -> Group:
    """The group's rows as they are now, for the commit of its newest row (rows of earlier
    commits are counted in ``earlier``); ``current`` stands alone when no row was recorded."""
    rows = stored.rows(tx, group_key)
    if provider is not None:
        rows = [row for row in rows if row.row_key.startswith(f"{provider}|")]
    if not rows:
        return Group(key=group_key, cells=[Cell(label=current.provider, result=current)])
    newest = max(rows, key=lambda row: row.result_id)
    shown = [row for row in rows if newest.sha is None or row.sha == newest.sha]
    cells = [Cell(label=row.label, result=views.result_detail(tx, row.result_id)) for row in shown]
    return Group(key=group_key, cells=cells, earlier=len(rows) - len(shown))
