"""A result's triage inside the writer's transaction: its tests' history read, each judged
(receiver.triage), the history advanced.

``triage`` reads; ``Triaged.save`` writes, once the result has its id. Both touch only the rows
of the result's own tests (receiver.store.test_history), so the cost is O(tests in the result)
whatever the history's length, and a row is written only when it changes. Triaged: a result
with a final status (a ``running`` update's tests are not yet outcomes) that says where its
tests live, its repository or project (receiver.tests_identity): without either, the same test
name in two applications would be one test.
"""

from __future__ import annotations

from typing import Final

import msgspec

from receiver import matrix, tests_identity
from receiver.clock import utcnow
from receiver.config import TriageSettings
from receiver.results import TERMINAL_STATUSES, Result
from receiver.store import test_history
from receiver.store.test_history import Advance
from receiver.store.tx import Tx
from receiver.triage import FAILED, UNKNOWN, Verdict, commit_key, counts, judge, outcome_of


class Triaged(msgspec.Struct, frozen=True, kw_only=True):
    verdicts: list[Verdict | None]  # one per test of the result, in its order
    labels: dict[str, int]  # how many tests carry each label
    advances: list[Advance]  # one per distinct test whose rows change

    @property
    def present(self) -> frozenset[str]:
        """The labels the result carries, for the routes' ``labels`` and ``new_failures``."""
        return frozenset(self.labels)

    def save(self, tx: Tx, result_id: int) -> None:
        test_history.advance(tx, self.advances, result_id=result_id, now=utcnow)


NOTHING: Final = Triaged(verdicts=[], labels={}, advances=[])


def triage(tx: Tx, result: Result, settings: TriageSettings) -> Triaged:
    """Each test's label in ``result``, from the history as it stands before it."""
    if result.status not in TERMINAL_STATUSES or not result.tests:
        return NOTHING
    scope = tests_identity.scope(result.repository, result.custom_data)
    outcomes = _outcomes(result) if scope else None
    if not outcomes:
        return NOTHING
    provider, branch, cell = result.provider, result.branch or "", matrix.label_of(result) or ""
    ids = {name: _cell_id(provider, scope, name, cell) for name in outcomes}
    kept = test_history.known(tx, list(ids.values()), branch=branch, base=settings.base_branch)
    sha, commit = result.sha, commit_key(result.sha)
    on_base = branch == settings.base_branch
    judged: dict[str, Verdict] = {}
    advances = []
    for name, outcome in outcomes.items():
        test_id = ids[name]
        verdict = judge(
            kept.get(test_id, UNKNOWN),
            outcome,
            sha=sha,
            commit=commit,
            settings=settings,
            on_base_branch=on_base,
        )
        judged[name] = verdict
        if not (verdict.window_changed or verdict.streak_changed):
            continue  # passing again on a commit its window holds: nothing to write
        advances.append(
            Advance(
                test_id=test_id,
                provider=provider,
                scope=scope,
                name=name,
                cell=cell,
                branch=branch,
                recent=verdict.recent,
                flaky=verdict.flaky,
                failed=outcome == FAILED,
                streak=verdict.streak,
                window_changed=verdict.window_changed,
                streak_changed=verdict.streak_changed,
            )
        )
    verdicts = [_verdict_of(judged, t.name, t.status) for t in result.tests]
    return Triaged(
        verdicts=verdicts,
        labels=counts(v.label for v in verdicts if v is not None),
        advances=advances,
    )


def _outcomes(result: Result) -> dict[str, str]:
    """Each distinct test's outcome: a name listed twice failed if either run failed."""
    found: dict[str, str] = {}
    for test in result.tests:
        outcome = outcome_of(test.status)
        if outcome is not None and found.get(test.name) != FAILED:
            found[test.name] = outcome
    return found


def _verdict_of(judged: dict[str, Verdict], name: str, status: str) -> Verdict | None:
    """The test's verdict on the row whose own outcome it is (a passed row of a name that also
    failed carries none)."""
    verdict = judged.get(name)
    if verdict is None or outcome_of(status) != verdict.outcome:
        return None
    return verdict


def _cell_id(provider: str, scope: str, name: str, cell: str) -> str:
    """The test's id in its matrix cell: each cell has its own history, so a test failing on
    firefox and passing on chromium is two steady tests, not one flaky one."""
    where = f"{scope}{tests_identity.SEPARATOR}{cell}" if cell else scope
    return tests_identity.test_id(provider, where, name)
