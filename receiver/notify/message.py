"""The words of a notification: a title that says it all, a body worth opening, in the markup of
the medium it goes to.

The same words are written four ways: Markdown (GitHub comments, Markdown services), Slack (the
Markdown Apprise's Slack plugin turns into mrkdwn), HTML (email) and plain text (JSON, text
services); receiver.notify.apprise_target picks one per target. Every piece of partner text goes
through the medium's escape function and every link through ``escape.link`` (receiver.notify.escape
says why each is what it is); only our own words are written bare.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import msgspec

from receiver.notify import escape
from receiver.results import Finding, TestCase
from receiver.triage import FAILING_ON_MAIN, FIXED, FLAKY, LABELS, STILL_FAILING, Note
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
MAX_NAME_CHARS: Final = 200
MAX_CONTEXT_CHARS: Final = 100
MAX_FINDINGS: Final = 5  # in a chat message, worst first


@dataclass(frozen=True)
class Markup:
    """How one medium writes around escaped partner text: emphasis, links, paragraphs, lists."""

    escape: Callable[[str], str]
    strong: Callable[[str], str]
    emphasis: Callable[[str], str]
    anchor: Callable[[str, str], str]  # (escaped label, safe URL)
    paragraph: Callable[[str], str]
    bullets: Callable[[list[str]], str]
    separator: str  # between blocks

    def link(self, label: str, url: str | None) -> str | None:
        """A link to ``url``, or None when it is not an http(s) URL (it is then left out)."""
        safe = escape.link(url)
        return None if safe is None else self.anchor(self.escape(label), safe)


def _same(text: str) -> str:
    return text


MARKDOWN: Final = Markup(
    escape=escape.markdown,
    strong=lambda text: f"**{text}**",
    emphasis=lambda text: f"_{text}_",
    anchor=lambda label, url: f"[{label}]({url})",
    paragraph=_same,
    bullets=lambda items: "\n".join(f"- {item}" for item in items),
    separator="\n\n",
)
SLACK: Final = replace(MARKDOWN, escape=escape.slack)
HTML: Final = Markup(
    escape=escape.html,
    strong=lambda text: f"<strong>{text}</strong>",
    emphasis=lambda text: f"<em>{text}</em>",
    anchor=lambda label, url: f'<a href="{html.escape(url, quote=True)}">{label}</a>',
    paragraph=lambda text: f"<p>{text}</p>",
    bullets=lambda items: "<ul>\n" + "".join(f"<li>{item}</li>\n" for item in items) + "</ul>",
    separator="\n",
)
PLAIN: Final = Markup(
    escape=escape.plain,
    strong=_same,
    emphasis=_same,
    anchor=lambda label, url: f"{label}: {url}",
    paragraph=_same,
    bullets=MARKDOWN.bullets,
    separator="\n\n",
)


class Message(msgspec.Struct, kw_only=True):
    title: str
    body: str
    kind: str  # Apprise's notify type: success, failure, warning, info


def icon(status: str) -> str:
    return ICONS.get(status, "•")


def headline(result: ResultDetail, text: Callable[[str], str] = escape.plain) -> str:
    """``2 of 14 tests failed``, ``14 of 14 tests passed``, or what happened to the run; with
    triage labels ``3 of 14 tests failed: 1 new, 1 flaky, 1 failing on main; 1 fixed``
    (``text`` escapes the base branch's name); for a SAST scan ``SAST failed: 1 critical, 2
    high``, for a gap analysis ``15 tests generated``."""
    if result.kind == "sast" and result.security is not None and result.status in FINAL_SAST:
        return f"SAST {result.status}: {counts(result)}"
    if result.kind == "gap_analysis" and result.coverage is not None:
        return f"{result.coverage.tests_generated} tests generated"
    said = run_headline(result.status, result.total, result.passed, result.failed)
    if result.status not in ("failed", "passed"):
        return said
    fixed = result.labels.get(FIXED, 0)
    if result.status == "failed" and (labelled := label_counts(result, text)):
        said += ": " + ", ".join(f"{n} {name}" for name, n in labelled)
        return said + (f"; {fixed} fixed" if fixed else "")
    return said + (f", {fixed} fixed" if fixed else "")


def run_headline(status: str, total: int, passed: int, failed: int) -> str:
    """``2 of 14 tests failed``, ``14 of 14 tests passed``, or what happened to the run (the
    dashboard's words too)."""
    if status == "failed":
        return f"{failed} of {total} tests failed"
    if status == "passed":
        return f"{passed} of {total} tests passed"
    words = {"timeout": "timed out", "canceled": "was canceled", "error": "errored"}
    if status in words:
        return f"test run {words[status]}"
    return f"tests {status}"


def context(result: ResultDetail, text: Callable[[str], str] = escape.plain) -> list[str]:
    """Where it happened: branch, deploy, environment (each only when known), escaped by
    ``text``."""
    found = [
        (None, result.branch),
        ("deploy", result.custom_data.get("deploy_id")),
        (None, result.custom_data.get("environment")),
    ]
    return [
        (f"{label} " if label else "") + text(clip(str(value), MAX_CONTEXT_CHARS))
        for label, value in found
        if value
    ]


def title(result: ResultDetail, text: Callable[[str], str] = escape.plain) -> str:
    """``❌ 2 of 14 tests failed · feat/login · deploy abc-123``; plain text unless told."""
    return " · ".join([f"{icon(result.status)} {headline(result, text)}", *context(result, text)])


# -- triage labels (receiver.triage) ----------------------------------------------------------


def label_name(label: str, note: Note | None, text: Callable[[str], str] = escape.plain) -> str:
    """A label as people read it: ``failing on main`` names the configured base branch."""
    if label == FAILING_ON_MAIN and note is not None and note.base_branch:
        return f"failing on {text(clip(note.base_branch, MAX_CONTEXT_CHARS))}"
    return label


def label_counts(
    result: ResultDetail, text: Callable[[str], str] = escape.plain
) -> list[tuple[str, int]]:
    """The failed tests' labels as people read them, with how many carry each."""
    notes = {t.label: t.triage for t in result.tests if t.label}
    return [
        (label_name(label, notes.get(label), text), result.labels[label])
        for label in LABELS
        if label != FIXED and result.labels.get(label)
    ]


def times(count: int, what: str) -> str:
    return f"{count} {what}" if count == 1 else f"{count} {what}s"


def label_detail(test: TestCase, markup: Markup = MARKDOWN) -> str:
    """What a test's label rests on: ``still failing since 4b1e7c0a (3 runs)``, ``flaky:
    failed 7 of its last 50 runs, 3 times on a commit where it also passed``."""
    label, note = test.label, test.triage
    if label is None:
        return ""
    name = label_name(label, note, markup.escape)
    if note is None:
        return name
    if label == FLAKY and note.window_runs:
        detail = f"{name}: failed {note.failures} of its last {times(note.window_runs, 'run')}"
        if note.same_commit:
            return detail + f", {times(note.same_commit, 'time')} on a commit where it also passed"
        return detail + f", its outcome flipping in {note.flake_rate or 0:.0%} of them"
    if label == FIXED and note.runs:
        return f"{name} after failing {times(note.runs, 'run')}"
    if label in (STILL_FAILING, FAILING_ON_MAIN) and note.runs:
        since = f" since {markup.escape(clip(note.since, 12))}" if note.since else ""
        return f"{name}{since} ({times(note.runs, 'run')})"
    return name


def fixed_tests(result: ResultDetail) -> list[TestCase]:
    return [t for t in result.tests if t.label == FIXED]


FINAL_SAST: Final = ("passed", "failed")


def counts(result: ResultDetail) -> str:
    """A scan's findings by severity: ``1 critical, 2 high`` (``no findings``)."""
    security = result.security
    found = security.counts if security is not None else {}
    shown = [f"{found[s]} {s}" for s in ("critical", "high", "medium", "low") if found.get(s)]
    return ", ".join(shown) or "no findings"


def finding_line(finding: Finding, markup: Markup = MARKDOWN) -> str:
    """``**high** sql-injection in src/db.py:42 (CWE-89): Possible SQL injection``."""
    where = finding.file or ""
    if where and finding.line is not None:
        where += f":{finding.line}"
    text = markup.strong(markup.escape(clip(finding.severity, 20)))
    if finding.rule_id:
        text += f" {markup.escape(clip(finding.rule_id, 80))}"
    if where:
        text += f" in {markup.escape(clip(where, 120))}"
    if finding.cwe:
        text += f" ({markup.escape(clip(finding.cwe, 20))})"
    if finding.message:
        text += f": {markup.escape(clip(finding.message, 200))}"
    return text


def placed_at(test: TestCase, markup: Markup = MARKDOWN) -> str:
    """`` · Pixel 8 · Android 14`` for a test whose device the provider named, else ""."""
    return f" · {markup.escape(clip(test.where, MAX_CONTEXT_CHARS))}" if test.where else ""


def duration(ms: float | None) -> str:
    """``12.3s``, ``2m 05s`` (the dashboard's too)."""
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
    """On one line, at most ``limit`` characters; cut before escaping, so no escape is cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def links(test: TestCase, markup: Markup = MARKDOWN) -> str:
    """``[screenshot](…) · [video](…) · [run](…)``, each only when the test has an http(s) one."""
    found = [("screenshot", test.screenshot_url), ("video", test.video_url), ("run", test.url)]
    return " · ".join(a for label, url in found if (a := markup.link(label, url)))


def failure_lines(result: ResultDetail, markup: Markup = MARKDOWN) -> list[str]:
    """One list item per failing test (without the list's bullet), at most ``MAX_FAILURES``."""
    return failure_items(failing(result), markup)


def failure_items(
    items: list[TestCase], markup: Markup = MARKDOWN, *, labels: bool = True
) -> list[str]:
    """One list item per test of ``items``, at most ``MAX_FAILURES``: name, duration (and
    label), error, evidence."""
    lines = []
    for item in items[:MAX_FAILURES]:
        name = markup.strong(markup.escape(clip(item.name, MAX_NAME_CHARS)))
        line = f"{name}{placed_at(item, markup)} ({duration(item.duration_ms)})"
        if labels and item.label:
            line = (
                markup.emphasis(label_name(item.label, item.triage, markup.escape)) + " · " + line
            )
        if item.error:
            line += f": {markup.escape(clip(item.error))}"
        if evidence := links(item, markup):
            line += f" — {evidence}"
        lines.append(line)
    if len(items) > MAX_FAILURES:
        lines.append(f"… and {len(items) - MAX_FAILURES} more in the report")
    return lines


def fixed_line(result: ResultDetail, markup: Markup = MARKDOWN) -> str | None:
    """``Fixed: **Login**, **Search**``, or None when no test was fixed."""
    fixed = fixed_tests(result)
    if not fixed:
        return None
    names = [markup.strong(markup.escape(clip(t.name, MAX_NAME_CHARS))) for t in fixed]
    more = f" and {len(names) - MAX_FAILURES} more" if len(names) > MAX_FAILURES else ""
    return "Fixed: " + ", ".join(names[:MAX_FAILURES]) + more


def body(result: ResultDetail, markup: Markup = MARKDOWN) -> str:
    where = ", ".join(context(result, markup.escape))
    first = markup.strong(headline(result, markup.escape)) + (f" on {where}" if where else "")
    first += f" in {duration(result.duration_ms)}" if result.duration_ms is not None else ""
    blocks = [markup.paragraph(first)]
    if result.replaces is not None:
        late = f"Came late, after the timeout (result #{result.replaces}); replaces it."
        blocks.append(markup.paragraph(markup.emphasis(late)))
    if result.summary:
        blocks.append(markup.paragraph(markup.escape(clip(result.summary))))
    if failures := failure_lines(result, markup):
        blocks += [markup.paragraph("Failing tests:"), markup.bullets(failures)]
    elif placed := [t for t in result.tests if t.where][:MAX_FAILURES]:  # where each ran
        lines = [
            f"{icon(t.status)} {markup.escape(clip(t.name, MAX_NAME_CHARS))}{placed_at(t, markup)}"
            for t in placed
        ]
        blocks += [markup.paragraph("Tests:"), markup.bullets(lines)]
    if fixed := fixed_line(result, markup):
        blocks.append(markup.paragraph(fixed))
    if result.security is not None and result.security.findings:
        worst = result.security.findings[:MAX_FINDINGS]
        more = result.security.findings_count - len(worst)
        lines = [finding_line(f, markup) for f in worst]
        if more > 0:
            lines.append(f"… and {more} more in the report")
        blocks += [markup.paragraph("Worst findings:"), markup.bullets(lines)]
    if result.coverage is not None and result.coverage.categories:
        lines = [
            f"{markup.escape(clip(name, 80))}: {count}"
            for name, count in list(result.coverage.categories.items())[:MAX_FAILURES]
        ]
        blocks += [markup.paragraph("Tests generated per category:"), markup.bullets(lines)]
    evidence = [markup.link("Full report", result.links.report)]
    evidence.append(markup.link("Open in receiver", result.links.dashboard))
    if not failures:  # the failing lines already link their own evidence
        evidence += [markup.link("screenshot", u) for u in result.links.screenshots[:3]]
        evidence += [markup.link("video", u) for u in result.links.videos[:3]]
    if shown := [e for e in evidence if e]:
        blocks.append(markup.paragraph(" · ".join(shown)))
    blocks.append(markup.paragraph(markup.emphasis(f"{result.provider} result #{result.id}")))
    return markup.separator.join(blocks)


def notify_kind(status: str) -> str:
    return {"passed": "success", "failed": "failure", "error": "failure"}.get(status, "warning")


def message(
    result: ResultDetail, markup: Markup = MARKDOWN, title_text: Callable[[str], str] = escape.plain
) -> Message:
    """The message in ``markup``; its title in plain text unless the target writes it into the
    body (then ``title_text`` is the body's escape)."""
    return Message(
        title=title(result, title_text), body=body(result, markup), kind=notify_kind(result.status)
    )
