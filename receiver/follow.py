"""Following new results from the store, for ``receiver tail``: the CLI reads the service's
database (as ``receiver deliveries`` does), so it polls for ids past the last it printed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Final

from receiver import views
from receiver.store import Store, results

BATCH: Final = 100


def follow(
    database: Store, *, interval: float, since: int | None = None
) -> Iterator[views.ResultSummary]:
    """Each result stored after ``since`` (default: now), oldest first, forever."""
    last = database.read(results.newest_id) if since is None else since
    while True:
        found = database.read(partial(results.after, last_id=last, limit=BATCH))
        for row in found:
            yield views.summary(row)
            last = row.id
        if len(found) < BATCH:
            time.sleep(interval)
