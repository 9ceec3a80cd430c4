"""Triage's decisions (receiver.triage), without a database: sequences of runs of one test on
main and a pull-request branch, same and different commits, and the label each run gets."""

from __future__ import annotations

import pytest

from receiver.config import TriageSettings
from receiver.triage import (
    ENTRY,
    FAILED,
    FAILING_ON_MAIN,
    FIXED,
    FLAKY,
    NEW,
    PASSED,
    STILL_FAILING,
    Known,
    Note,
    Streak,
    Verdict,
    commit_key,
    counts,
    judge,
    outcome_of,
    window_stats,
)

P, F = PASSED, FAILED


class Memory:
    """What the store keeps about one test, in memory: the window, the list state, a failing
    streak per branch where it failed last (written, like the store's rows, only on change)."""

    def __init__(self, settings: TriageSettings) -> None:
        self.settings = settings
        self.recent = ""
        self.flaky = False
        self.streaks: dict[str, Streak] = {}

    def run(self, branch: str, sha: str | None, outcome: str) -> Verdict:
        base = self.settings.base_branch
        known = Known(
            recent=self.recent,
            flaky=self.flaky,
            on_branch=self.streaks.get(branch),
            on_base=self.streaks.get(base),
        )
        verdict = judge(
            known,
            outcome,
            sha=sha,
            commit=commit_key(sha),
            settings=self.settings,
            on_base_branch=branch == base,
        )
        if verdict.window_changed:
            self.recent, self.flaky = verdict.recent, verdict.flaky
        if verdict.streak_changed and verdict.streak is None:
            del self.streaks[branch]
        elif verdict.streak_changed and verdict.streak is not None:
            self.streaks[branch] = verdict.streak
        return verdict


# Each case: runs of one test as (branch, commit, outcome, the label expected), in order.
Run = tuple[str, str | None, str, str | None]
SEQUENCES: dict[str, list[Run]] = {
    "a first failure on a branch is new": [
        ("main", "a1", P, None),
        ("feat", "b1", F, NEW),
    ],
    "a test that never ran before fails: new": [
        ("feat", "b1", F, NEW),
    ],
    "failing again on the next commit: still failing": [
        ("feat", "b1", F, NEW),
        ("feat", "b2", F, STILL_FAILING),
        ("feat", "b3", F, STILL_FAILING),
    ],
    "passing again: fixed; failing after that: new again": [
        ("feat", "b1", F, NEW),
        ("feat", "b2", P, FIXED),
        ("feat", "b3", P, None),
        ("feat", "b4", F, NEW),
    ],
    "failing on main first: the branch's failure is main's": [
        ("main", "a1", F, NEW),
        ("feat", "b1", F, FAILING_ON_MAIN),
        ("feat", "b2", F, FAILING_ON_MAIN),  # not "still failing": main's label comes first
    ],
    "main fixed since: the branch's failure is its own": [
        ("main", "a1", F, NEW),
        ("main", "a2", P, FIXED),
        ("feat", "b1", F, NEW),
    ],
    "on main itself, a repeated failure is failing on main": [
        ("main", "a1", P, None),
        ("main", "a2", F, NEW),
        ("main", "a3", F, FAILING_ON_MAIN),
    ],
    "branches are apart: main passing between the branch's failures changes nothing": [
        ("feat", "b1", F, NEW),
        ("main", "a1", P, None),
        ("feat", "b2", F, STILL_FAILING),
        ("main", "a2", P, None),
        ("feat", "b3", F, STILL_FAILING),
    ],
    "passed then failed on one commit: flaky": [
        ("feat", "b1", P, None),
        ("feat", "b1", F, FLAKY),
    ],
    "failed then passed on one commit, then failing elsewhere: still flaky, not new": [
        ("feat", "b1", F, NEW),
        ("feat", "b1", P, FIXED),
        ("feat", "b2", F, FLAKY),
    ],
    "the same commit on two branches counts as one commit": [
        ("main", "c0ffee1234", P, None),
        ("feat", "c0ffee1234", F, FLAKY),
    ],
    "a flaky test failing on main is failing on main": [
        ("main", "a1", P, None),
        ("main", "a1", F, FLAKY),
        ("feat", "b1", F, FAILING_ON_MAIN),
    ],
    "without a commit, a pass and a failure prove no flakiness": [
        ("feat", None, P, None),
        ("feat", None, F, NEW),
        ("feat", None, F, STILL_FAILING),
    ],
    "one flip in few runs is a change, not a pattern": [
        ("feat", "b1", P, None),
        ("feat", "b2", F, NEW),
        ("feat", "b3", P, FIXED),
        ("feat", "b4", F, NEW),
    ],
    "flipping in more than the threshold of its runs: flaky": [
        *[("feat", f"b{n}", P, None) for n in range(6)],
        ("feat", "c1", F, NEW),
        ("feat", "c2", P, FIXED),
        ("feat", "c3", F, NEW),  # 3 flips in 9 runs: fewer runs than MIN_FLIP_RUNS
        ("feat", "c4", P, FIXED),
        ("feat", "c5", F, FLAKY),  # 5 flips in 11 runs: 0.45 > 0.2
    ],
}


@pytest.mark.parametrize("runs", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_each_run_gets_its_label(runs: list[Run]) -> None:
    memory = Memory(TriageSettings())
    for n, (branch, sha, outcome, expected) in enumerate(runs):
        verdict = memory.run(branch, sha, outcome)
        assert verdict.label == expected, f"run {n + 1}: {branch}@{sha} {outcome}"


def test_still_failing_says_since_which_commit_and_for_how_many_runs() -> None:
    memory = Memory(TriageSettings())
    memory.run("feat", "b1", P)
    memory.run("feat", "b2", F)
    memory.run("feat", "b3", F)
    verdict = memory.run("feat", "b4", F)
    assert verdict.label == STILL_FAILING
    assert verdict.note == Note(since="b2", runs=3)
    fixed = memory.run("feat", "b5", P)
    assert (fixed.label, fixed.note) == (FIXED, Note(since="b2", runs=3))


def test_failing_on_main_names_the_configured_base_branch_and_its_streak() -> None:
    memory = Memory(TriageSettings(base_branch="develop"))
    memory.run("develop", "a1", F)
    memory.run("develop", "a2", F)
    verdict = memory.run("feat", "b1", F)
    assert verdict.label == FAILING_ON_MAIN
    assert verdict.note == Note(base_branch="develop", since="a1", runs=2)
    on_base = memory.run("develop", "a3", F)  # on the base branch, this run counts too
    assert on_base.note == Note(base_branch="develop", since="a1", runs=3)


def test_flaky_says_what_it_rests_on() -> None:
    memory = Memory(TriageSettings())
    for outcome, sha in [(P, "a1"), (F, "a1"), (P, "a2"), (F, "a3"), (P, "a3")]:
        memory.run("feat", sha, outcome)
    verdict = memory.run("feat", "a3", F)
    # Runs: P F P F P F; failures on a1 and twice on a3, where it also passed; 5 flips in 6.
    assert verdict.label == FLAKY
    assert verdict.note == Note(
        failures=3, window_runs=6, same_commit=3, flake_rate=round(5 / 6, 3)
    )


def test_the_quarantine_list_keeps_a_test_until_a_window_of_clean_runs() -> None:
    memory = Memory(TriageSettings(window=5))
    memory.run("feat", "a1", F)
    assert memory.run("feat", "a1", P).flaky  # on the list from its first clean run on
    for n in range(2, 5):  # clean runs 2, 3 and 4 of 5: the failure is still in the window
        assert memory.run("feat", f"a{n}", P).flaky, n
    assert not memory.run("feat", "a5", P).flaky  # 5 clean runs: off the list
    assert memory.run("feat", "a6", F).label == NEW  # and its next failure is new again


def test_the_window_holds_the_last_window_runs_and_no_more() -> None:
    settings = TriageSettings(window=4)
    memory = Memory(settings)
    for n in range(10):
        memory.run("feat", f"{n:08x}", P if n % 3 else F)
    assert len(memory.recent) == 4 * ENTRY
    assert window_stats(memory.recent).runs == 4
    assert memory.recent[1:ENTRY] == "00000006"  # the oldest kept: the 7th run


def test_a_test_passing_again_and_again_changes_no_row() -> None:
    """The steady state costs a read and no write: the window's string and the streak stay."""
    memory = Memory(TriageSettings(window=3))
    first = memory.run("feat", None, P)
    assert first.window_changed and not first.streak_changed  # passing: no streak to keep
    memory.run("feat", None, P)
    memory.run("feat", None, P)  # the window is full
    again = memory.run("feat", None, P)
    assert not again.window_changed and not again.streak_changed
    moved = memory.run("feat", "a1", P)  # a new commit moves the window
    assert moved.window_changed and not moved.streak_changed
    failed = memory.run("feat", "a2", F)
    assert failed.window_changed and failed.streak == Streak(runs=1, since="a2")
    assert memory.run("feat", "a3", F).streak == Streak(runs=2, since="a2")  # counting on
    fixed = memory.run("feat", "a4", P)
    assert fixed.streak_changed and fixed.streak is None  # its row goes


LABEL_ORDER = [
    # (failing on main, flaky, failed before on the branch) -> label
    ((True, True, True), FAILING_ON_MAIN),
    ((False, True, True), FLAKY),
    ((False, False, True), STILL_FAILING),
    ((False, False, False), NEW),
    ((True, False, False), FAILING_ON_MAIN),
    ((False, True, False), FLAKY),
]


@pytest.mark.parametrize(("holds", "expected"), LABEL_ORDER)
def test_where_several_hold_the_first_in_order_wins(
    holds: tuple[bool, bool, bool], expected: str
) -> None:
    on_main, flaky, before = holds
    known = Known(
        recent="",
        flaky=flaky,
        on_branch=Streak(runs=1, since="b0") if before else None,
        on_base=Streak(runs=1, since="a0") if on_main else None,
    )
    verdict = judge(known, F, sha="b1", commit=commit_key("b1"), settings=TriageSettings())
    assert verdict.label == expected


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("passed", P), ("failed", F), ("error", F), ("timeout", F), ("skipped", None), ("", None)],
)
def test_only_passed_and_failing_tests_have_an_outcome(status: str, outcome: str | None) -> None:
    assert outcome_of(status) == outcome


def test_commit_keys_name_a_commit_in_eight_characters() -> None:
    assert commit_key("C0FFEE1234abcdef") == commit_key("c0ffee12") == "c0ffee12"
    assert len(commit_key("not-a-sha")) == 8 and commit_key("not-a-sha") != commit_key("other")
    assert commit_key(None) == commit_key("") == "-" * 8


def test_counts_follow_the_reading_order() -> None:
    found = counts([FLAKY, None, NEW, FIXED, NEW, FAILING_ON_MAIN])
    assert list(found.items()) == [(NEW, 2), (FAILING_ON_MAIN, 1), (FLAKY, 1), (FIXED, 1)]
