"""The words of a notification: a title that says it all, a Markdown body worth opening.

Apprise turns Markdown into HTML for email and keeps it for chat targets that render it; the
GitHub comment builds on the same pieces.
"""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.results import TestCase
from receiver.views import ResultDetail

ICONS: Final = {
    "passed": "✅",
    "failed": "❌",
    "error": "⚠️",
    "timeout": "⏱️",
    "canceled": "🚫",
    "pending": "⏳",
    "running": "⏳",
}
FAILING: Final = ("failed", "error", "timeout")
MAX_FAILURES: Final = 10
MAX_ERROR_CHARS: Final = 400


class Message(msgspec.Struct, kw_only=True):
    title: str
    body: str
    kind: str  # Apprise's notify type: success, failure, warning, info


def icon(status: str) -> str:
    return ICONS.get(status, "•")


def headline(result: ResultDetail) -> str:
    """``2 of 14 tests failed``, ``14 of 14 tests passed``, or what happened to the run."""
    if result.status == "failed":
        return f"{result.failed} of {result.total} tests failed"
    if result.status == "passed":
        return f"{result.passed} of {result.total} tests passed"
    words = {"timeout": "timed out", "canceled": "was canceled", "error": "errored"}
    if result.status in words:
        return f"test run {words[result.status]}"
    return f"tests {result.status}"


def context(result: ResultDetail) -> list[str]:
    """Where it happened: branch, deploy, environment (each only when known)."""
    parts = []
    if result.branch:
        parts.append(result.branch)
    if deploy := result.custom_data.get("deploy_id"):
        parts.append(f"deploy {deploy}")
    if environment := result.custom_data.get("environment"):
        parts.append(str(environment))
    return parts


def title(result: ResultDetail) -> str:
    """``❌ 2 of 14 tests failed · feat/login · deploy abc-123``."""
    return " · ".join([f"{icon(result.status)} {headline(result)}", *context(result)])


def duration(ms: int | None) -> str:
    if ms is None:
        return "–"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def failing(result: ResultDetail) -> list[TestCase]:
    """The failing tests, each with its error (the test's own, else its failure's); failures
    not tied to a listed test come last, as tests named by the failure (or ``(run)``)."""
    errors = {f.test: f.error for f in result.failures if f.test}
    found = [
        msgspec.structs.replace(t, error=t.error or errors.get(t.name))
        for t in result.tests
        if t.status in FAILING
    ]
    named = {t.name for t in found}
    found += [
        TestCase(name=f.test or "(run)", status="failed", error=f.error)
        for f in result.failures
        if f.test is None or f.test not in named
    ]
    return found


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def links(test: TestCase) -> str:
    """``[screenshot](…) · [video](…) · [run](…)``, each only when the test has one."""
    found = [("screenshot", test.screenshot_url), ("video", test.video_url), ("run", test.url)]
    return " · ".join(f"[{label}]({link})" for label, link in found if link)


def failure_lines(result: ResultDetail) -> list[str]:
    items = failing(result)
    lines = []
    for item in items[:MAX_FAILURES]:
        line = f"- **{item.name}** ({duration(item.duration_ms)})"
        if item.error:
            line += f": {clip(item.error)}"
        if evidence := links(item):
            line += f" — {evidence}"
        lines.append(line)
    if len(items) > MAX_FAILURES:
        lines.append(f"- … and {len(items) - MAX_FAILURES} more in the report")
    return lines


def body(result: ResultDetail) -> str:
    where = ", ".join(context(result))
    first = f"**{headline(result)}**" + (f" on {where}" if where else "")
    first += f" in {duration(result.duration_ms)}" if result.duration_ms is not None else ""
    lines = [first]
    if result.summary:
        lines += ["", clip(result.summary)]
    if failures := failure_lines(result):
        lines += ["", "Failing tests:", *failures]
    evidence = [f"[Full report]({result.links.report})"] if result.links.report else []
    if not failures:  # the failing lines already link their own evidence
        evidence += [f"[screenshot]({u})" for u in result.links.screenshots[:3]]
        evidence += [f"[video]({u})" for u in result.links.videos[:3]]
    if evidence:
        lines += ["", " · ".join(evidence)]
    lines += ["", f"_{result.provider} result #{result.id}_"]
    return "\n".join(lines)


def notify_kind(status: str) -> str:
    return {"passed": "success", "failed": "failure", "error": "failure"}.get(status, "warning")


def message(result: ResultDetail) -> Message:
    return Message(title=title(result), body=body(result), kind=notify_kind(result.status))
