"""Triage: what a test's outcome in a new result means, judged from the test's own history.

Pure decisions, without a database (receiver.history reads and writes what they need). A test is
one test across runs (receiver.tests_identity). For each, the store keeps its window, the last
``[triage] window`` runs on any branch, and per branch where it is failing its failing streak:
for how many runs in a row it has failed there, since which commit. From those and the test's
outcome in the result, ``judge`` gives the label, what it rests on, and what to keep next.

A failed test gets exactly one label, the first of these that holds:

- ``failing on main``: its latest run on the base branch (``[triage] base_branch``) failed;
- ``flaky``: within the window it both passed and failed on one commit, or its flips exceed
  ``[triage] flaky_threshold`` of its runs there (a flip: an outcome other than the test's
  previous one on the same branch, a branch without runs of it counting as its base branch;
  judged from ``MIN_FLIP_RUNS`` runs on, as two runs that differ are a change, not a pattern),
  or it is still on the quarantine list;
- ``still failing``: its previous run on the result's branch failed too;
- ``new``: none of those (it passed, or never ran, on the branch before).

A passed test whose previous run on the branch failed is ``fixed``. The group of "previous" is
the result's provider, repository and branch, whatever the routes say: the test's streak on the
branch is exactly that group's latest result that ran the test.

The quarantine list (``flaky``) holds a test from the run its window first shows it flaky until
a full window of clean runs: then the window holds no failure, so nothing can hold it there.

The window is one string of fixed-width entries, oldest first: a letter for the outcome (``P``
passed, ``F`` failed; lower case ``p``/``f`` for a flip) and 8 characters naming the commit (its
sha's first 8 hex digits, a digest of a sha that is not hex, ``-`` x 8 without one). Appending,
cutting and counting it are string operations. A test off the list can only become flaky by its
newest run (the rest of its window showed nothing), so ``judge`` looks for the other half of a
same-commit pair of that run alone; a result costs O(its tests), each test a few string
operations.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from receiver.config import TriageSettings

NEW: Final = "new"
FAILING_ON_MAIN: Final = "failing on main"
FLAKY: Final = "flaky"
STILL_FAILING: Final = "still failing"
FIXED: Final = "fixed"
# What a failed test can be, in precedence: the first that holds wins.
FAILURE_LABELS: Final = (FAILING_ON_MAIN, FLAKY, STILL_FAILING, NEW)
# Every label, in the order people read them (counts in titles, the API, config validation).
LABELS: Final = (NEW, STILL_FAILING, FAILING_ON_MAIN, FLAKY, FIXED)

PASSED: Final = "passed"
FAILED: Final = "failed"
FAILING_STATUSES: Final = frozenset({"failed", "error", "timeout"})
MIN_FLIP_RUNS: Final = 10

ENTRY: Final = 9  # one run in the window: its letter and its commit key
NO_COMMIT: Final = "-" * 8
HEX_SHA: Final = re.compile(r"[0-9a-fA-F]{8,64}")


class Streak(msgspec.Struct, frozen=True, kw_only=True):
    """A test failing on one branch: for how many runs in a row, since which commit. A branch
    where the test passed last has none."""

    runs: int
    since: str | None  # the commit of the streak's first run


class Note(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a label rests on, kept with the test's row, for the words of the messages."""

    base_branch: str | None = None  # failing on main: the base branch's name
    since: str | None = None  # the commit the failing streak started at
    runs: int | None = None  # the failing streak's runs (fixed: how long it had failed)
    failures: int | None = None  # flaky: failures among the window's runs
    window_runs: int | None = None  # flaky: runs in the window
    same_commit: int | None = None  # flaky: failures on a commit where it also passed
    flake_rate: float | None = None  # flaky: flips / runs in the window


class Known(msgspec.Struct, frozen=True, kw_only=True):
    """What the store holds about a test before a result."""

    recent: str = ""  # the window, encoded (see the module's docstring)
    flaky: bool = False  # on the quarantine list
    on_branch: Streak | None = None  # failing on the result's branch
    on_base: Streak | None = None  # failing on the base branch (the same, on the base)


UNKNOWN: Final = Known()


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """A test's label in one result, and what to keep about the test after it."""

    outcome: str
    label: str | None
    note: Note | None
    recent: str
    flaky: bool
    streak: Streak | None  # failing on the result's branch after this run, or not
    # What changed, so only that is written: a test passing again and again on commits its
    # window holds already changes nothing.
    window_changed: bool = True
    streak_changed: bool = True


class WindowStats(msgspec.Struct, frozen=True, kw_only=True):
    runs: int
    failures: int
    flips: int
    same_commit: int  # failures on a commit where the test also passed

    @property
    def flake_rate(self) -> float:
        return self.flips / self.runs if self.runs else 0.0


def outcome_of(status: str) -> str | None:
    """PASSED, FAILED, or None for a test that did not run to an outcome (skipped, …)."""
    if status == PASSED:
        return PASSED
    return FAILED if status in FAILING_STATUSES else None


def commit_key(sha: str | None) -> str:
    """The 8 characters naming a commit in the window."""
    if not sha:
        return NO_COMMIT
    if HEX_SHA.fullmatch(sha):
        return sha[:8].lower()
    return hashlib.blake2b(sha.encode(), digest_size=4).hexdigest()


def window_stats(recent: str) -> WindowStats:
    codes = recent[::ENTRY]
    runs = len(codes)
    failures = codes.count("F") + codes.count("f")
    flips = codes.count("p") + codes.count("f")
    same_commit = 0
    if 0 < failures < runs:  # only then can one commit have both
        commits = [recent[i + 1 : i + ENTRY] for i in range(0, len(recent), ENTRY)]
        passed = {c for code, c in zip(codes, commits, strict=True) if code in "Pp"}
        passed.discard(NO_COMMIT)
        same_commit = sum(
            1 for code, c in zip(codes, commits, strict=True) if code in "Ff" and c in passed
        )
    return WindowStats(runs=runs, failures=failures, flips=flips, same_commit=same_commit)


def shows_flaky(stats: WindowStats, threshold: float) -> bool:
    """The window holds a same-commit pair, or flips more than ``threshold`` of its runs."""
    if stats.same_commit:
        return True
    return flips_too_often(stats.runs, stats.flips, threshold)


def flips_too_often(runs: int, flips: int, threshold: float) -> bool:
    return runs >= MIN_FLIP_RUNS and flips / runs > threshold


def pairs(recent: str, outcome: str, commit: str) -> bool:
    """The window holds a run on ``commit`` with the other outcome than ``outcome``."""
    if commit == NO_COMMIT:
        return False
    for letter in "Ff" if outcome == PASSED else "Pp":
        found = recent.find(letter + commit)
        while found != -1:
            if found % ENTRY == 0:  # an entry's start: a commit key can hold "f" too
                return True
            found = recent.find(letter + commit, found + 1)
    return False


def extend(recent: str, outcome: str, *, flip: bool, commit: str, window: int) -> str:
    """The window with one more run, its oldest dropped past ``window`` runs."""
    letter = "P" if outcome == PASSED else "F"
    recent += (letter.lower() if flip else letter) + commit
    excess = len(recent) - window * ENTRY
    return recent[excess:] if excess > 0 else recent


def judge(
    known: Known,
    outcome: str,
    *,
    sha: str | None,
    commit: str,
    settings: TriageSettings,
    on_base_branch: bool = False,
) -> Verdict:
    """The test's label for ``outcome`` in a result at ``sha`` (``commit`` = commit_key(sha)),
    and what to keep. ``on_base_branch``: the result is of the base branch itself."""
    previous = known.on_branch
    base = known.on_branch if on_base_branch else known.on_base
    # A branch where the test has not failed last starts from its base branch's state.
    before = FAILED if previous is not None or base is not None else PASSED
    recent = extend(
        known.recent, outcome, flip=outcome != before, commit=commit, window=settings.window
    )
    codes = recent[::ENTRY]
    runs, failures = len(codes), codes.count("F") + codes.count("f")
    if known.flaky:  # listed until a full window of clean runs
        flaky = runs < settings.window or failures > 0
    else:
        flips = codes.count("p") + codes.count("f")
        flaky = flips_too_often(runs, flips, settings.flaky_threshold) or pairs(
            recent, outcome, commit
        )
    streak: Streak | None = None  # a pass ends the branch's failing streak
    label: str | None
    note: Note | None
    if outcome == FAILED:
        streak = Streak(runs=previous.runs + 1, since=previous.since) if previous else None
        streak = streak or Streak(runs=1, since=sha)
        label, note = _failure(known, recent, flaky, streak, settings.base_branch, on_base_branch)
    else:
        label, note = _passed(previous)
    return Verdict(
        outcome=outcome,
        label=label,
        note=note,
        recent=recent,
        flaky=flaky,
        streak=streak,
        window_changed=recent != known.recent or flaky != known.flaky,
        streak_changed=streak != previous,
    )


def _failure(
    known: Known,
    recent: str,
    flaky: bool,
    streak: Streak,
    base_branch: str,
    on_base_branch: bool,
) -> tuple[str, Note | None]:
    if known.on_base is not None:
        base = streak if on_base_branch else known.on_base  # on the base, this run counts
        return FAILING_ON_MAIN, Note(base_branch=base_branch, since=base.since, runs=base.runs)
    if flaky:
        stats = window_stats(recent)
        return FLAKY, Note(
            failures=stats.failures,
            window_runs=stats.runs,
            same_commit=stats.same_commit,
            flake_rate=round(stats.flake_rate, 3),
        )
    if known.on_branch is not None:
        return STILL_FAILING, Note(since=streak.since, runs=streak.runs)
    return NEW, None


def _passed(previous: Streak | None) -> tuple[str | None, Note | None]:
    if previous is not None:
        return FIXED, Note(since=previous.since, runs=previous.runs)
    return None, None


def counts(labels: Iterable[str | None]) -> dict[str, int]:
    """How many of each label, in LABELS order, only those present."""
    found: dict[str, int] = {}
    for label in labels:
        if label is not None:
            found[label] = found.get(label, 0) + 1
    return {label: found[label] for label in LABELS if label in found}
