"""Matrix rows: the newest result of each job of a group (a pull request, a commit, a deploy).

Written in the result's own transaction, so the writer orders them: a row only ever moves to a
newer result, and a late retry of an older result renders the group as it is now.
"""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.clock import utcnow
from receiver.store.tx import Tx, rows_as


class MatrixRow(msgspec.Struct, kw_only=True):
    row_key: str
    label: str
    result_id: int
    sha: str | None


UPSERT: Final = """
INSERT INTO matrix_rows (group_key, row_key, label, result_id, first_result_id, sha, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (group_key, row_key) DO UPDATE SET
    label = excluded.label, result_id = excluded.result_id, sha = excluded.sha,
    updated_at = excluded.updated_at
WHERE excluded.result_id > matrix_rows.result_id
"""
ROWS: Final = """
SELECT row_key, label, result_id, sha FROM matrix_rows WHERE group_key = ?
ORDER BY first_result_id LIMIT ?
"""


def upsert(
    tx: Tx, *, group_key: str, row_key: str, label: str, result_id: int, sha: str | None
) -> None:
    tx.execute(UPSERT, [group_key, row_key, label, result_id, result_id, sha, utcnow()])


def rows(tx: Tx, group_key: str, *, limit: int = 500) -> list[MatrixRow]:
    """The group's rows in the order their jobs first reported."""
    return rows_as(tx.execute(ROWS, [group_key, limit]), MatrixRow)
