"""A result, normalised across providers: the shape routing, the store and messages share."""

from __future__ import annotations

from typing import Any, ClassVar, Final

import msgspec

from receiver.limits import pr_number_of
from receiver.triage import Note

# Providers hand custom_data back untouched; it is the user's own JSON, so its values stay open.
CustomData = dict[str, Any]

TERMINAL_STATUSES: Final = ("passed", "failed", "error", "timeout", "canceled")
STATUSES: Final = (*TERMINAL_STATUSES, "pending", "running")
KINDS: Final = ("tests", "sast", "gap_analysis")  # what a result is of (DESIGN.md)
SEVERITIES: Final = ("low", "medium", "high", "critical")  # a SAST finding's, mildest first

_ALIASES: Final = {
    "pass": "passed",
    "success": "passed",
    "succeeded": "passed",
    "fail": "failed",
    "failure": "failed",
    "errored": "error",
    "timed_out": "timeout",
    "timedout": "timeout",
    "cancelled": "canceled",
    "queued": "pending",
    "in_progress": "running",
}


def normalise_status(raw: str | None) -> str:
    """One of STATUSES; anything a provider invents is an ``error`` (the raw value is kept)."""
    value = (raw or "").strip().lower().replace("-", "_")
    value = _ALIASES.get(value, value)
    return value if value in STATUSES else "error"


class TestCase(msgspec.Struct, kw_only=True):
    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name says

    name: str
    status: str
    duration_ms: int | None = None
    error: str | None = None
    screenshot_url: str | None = None
    video_url: str | None = None
    execution_id: str | None = None
    url: str | None = None  # the test's own page at the provider (Qualigate, QualGent)
    device: str | None = None  # where it ran (QualGent): "Pixel 8"
    platform: str | None = None  # with its OS version: "Android 14"
    progress: float | None = None  # 0-100, as the provider last said
    logs: str | None = None  # its execution logs, fetched after the result arrived (QualityMax)
    # Set by the store, never by a provider: the test's triage label and what it rests on.
    label: str | None = None
    triage: Note | None = None

    @property
    def where(self) -> str:
        """``Pixel 8 · Android 14``, or "" when the provider did not say."""
        return " · ".join(p for p in (self.device, self.platform) if p)


class Failure(msgspec.Struct, kw_only=True):
    test: str | None = None
    error: str


class Finding(msgspec.Struct, kw_only=True):
    """One SAST finding."""

    severity: str  # one of SEVERITIES, or what the provider said
    rule_id: str | None = None
    file: str | None = None
    line: int | None = None
    message: str | None = None
    cwe: str | None = None


class Security(msgspec.Struct, kw_only=True):
    """What a SAST scan found: its verdict, counts by severity, the findings worst first."""

    verdict: str | None = None
    findings_count: int = 0
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    findings: list[Finding] = msgspec.field(default_factory=list)

    @property
    def worst(self) -> str | None:
        """The most severe level with a finding, if any."""
        return next((s for s in reversed(SEVERITIES) if self.counts.get(s)), None)


class Coverage(msgspec.Struct, kw_only=True):
    """What a gap analysis generated: tests per category."""

    tests_generated: int = 0
    categories: dict[str, int] = msgspec.field(default_factory=dict)


def severity_rank(severity: str | None) -> int:
    """-1 for a severity not in SEVERITIES, else its place (low 0 ... critical 3)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


class Result(msgspec.Struct, kw_only=True):
    provider: str
    event: str
    status: str
    raw_status: str | None = None
    total: int = 0
    passed: int = 0
    failed: int = 0
    duration_ms: int | None = None
    report_url: str | None = None
    summary: str | None = None
    external_job_id: str | None = None
    custom_data: CustomData = msgspec.field(default_factory=dict)
    tests: list[TestCase] = msgspec.field(default_factory=list)
    failures: list[Failure] = msgspec.field(default_factory=list)
    kind: str = "tests"  # one of KINDS
    security: Security | None = None  # kind sast
    coverage: Coverage | None = None  # kind gap_analysis

    @property
    def branch(self) -> str | None:
        return _text(self.custom_data.get("branch"))

    @property
    def repository(self) -> str | None:
        return _text(self.custom_data.get("repository") or self.custom_data.get("repo"))

    @property
    def sha(self) -> str | None:
        for key in ("sha", "commit_sha", "head_sha"):
            if value := _text(self.custom_data.get(key)):
                return value
        return None

    @property
    def pr_number(self) -> int | None:
        """A number that cannot name a pull request (0, negative, beyond 64 bits) names none."""
        return pr_number_of(self.custom_data.get("pr_number"))


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value) or None
