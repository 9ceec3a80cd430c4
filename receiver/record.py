"""One way in for a result: the result, its tests with their triage labels, its job's link and
the outbox rows its routes ask for, inside the caller's one transaction.

The callback intake and the poller call it the same way, from the function they hand the
store's writer. Nothing here has an effect outside the transaction (it may run twice, see
receiver.store.sqlite); what must follow the commit, waking the delivery worker, is the
caller's, with the ``Recorded`` this returns.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from receiver import artifacts, history, matrix
from receiver.config import TriageSettings
from receiver.ledger import Ledger
from receiver.results import Result
from receiver.routing import Router
from receiver.store import deliveries, jobs, results
from receiver.store.tx import Tx


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    result_id: int
    deliveries: int  # outbox rows written: the worker has work when this is not 0
    labels: dict[str, int] = msgspec.field(default_factory=dict)  # triage: count per label


# Called after the commit that holds the result (waking the worker is one).
RecordedHook = Callable[[Recorded], None]


class Recorder:
    """Stores results, labels their tests and routes them, with the config's routes."""

    def __init__(
        self, router: Router, triage: TriageSettings | None = None, *, fetch_logs: bool = False
    ) -> None:
        self.router = router
        self.triage = triage or TriageSettings()
        self.fetch_logs = fetch_logs  # queue failed tests' logs for the fetcher (artifacts.py)

    def record(
        self,
        tx: Tx,
        result: Result,
        *,
        job_id: int | None,
        callback_id: int | None = None,
        result_id: int | None = None,
        job_has_it: bool = False,
    ) -> Recorded:
        """Write ``result`` (under ``result_id`` if reserved) and route it. ``job_has_it``: the
        job was made for this result and points at it already.

        A result for a job that already ended in receiver's own ``timeout`` result replaces it:
        the job points at the real one, both are kept, and the real one says it came late.
        The labels come from the tests' history before this result (receiver.history), so the
        routes' ``new_failures`` and ``labels`` and the outbox rows written here see them.
        Every route's decision goes into the ledger (``receiver explain``), and the result
        takes its row in each group a living target renders (receiver.matrix).
        """
        triaged = history.triage(tx, result, self.triage)
        stored_id = results.insert(
            tx,
            result,
            callback_id=callback_id,
            job_id=job_id,
            result_id=result_id,
            verdicts=triaged.verdicts,
            labels=triaged.labels,
        )
        triaged.save(tx, stored_id)
        if self.fetch_logs:  # an insert for a failed QualityMax result's failing tests only
            artifacts.queue_for(tx, stored_id, result)
        if job_id is not None and not job_has_it:
            _replace_timeout(tx, job_id, stored_id)
            jobs.set_result(tx, job_id, result_id=stored_id, status=result.status)
        if self.router.groupings:
            matrix.record_rows(
                tx, self.router.groupings, result, result_id=stored_id, job_id=job_id
            )
        ledger = Ledger() if self.router.routes else None
        wanted = self.router.deliveries(tx, stored_id, result, ledger, labels=triaged.present)
        deliveries.insert_many(tx, wanted)
        if ledger is not None:
            ledger.write(tx, stored_id)
        return Recorded(result_id=stored_id, deliveries=len(wanted), labels=triaged.labels)


def _replace_timeout(tx: Tx, job_id: int, result_id: int) -> None:
    previous = jobs.result_id_of(tx, job_id)
    if previous is not None and results.status_of(tx, previous) == "timeout":
        results.mark_late(tx, result_id, replaces=previous)
