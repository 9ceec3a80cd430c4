"""A group's living Slack message in Block Kit: status, counts, a row per job, the failing tests
with their errors, links; within Slack's limits (receiver.notify.fit).

Every piece of partner text goes through ``escape.mrkdwn`` (sections) or ``escape.plain`` (the
header, plain text), every link through ``escape.link``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from receiver.matrix import Cell, Group
from receiver.notify import escape, fit
from receiver.notify.message import (
    clip,
    context,
    duration,
    failing,
    headline,
    icon,
    title,
)

MAX_ROWS: Final = 200
MAX_FAILING: Final = 300  # lines considered; fit.lines_within cuts them to the section
MAX_NAME_CHARS: Final = 200
MAX_ERROR_CHARS: Final = 300


def link(label: str, url: str | None) -> str | None:
    safe = escape.link(url)
    return None if safe is None else f"<{safe}|{escape.mrkdwn(label)}>"


def group_title(group: Group, text: Callable[[str], str] = escape.plain) -> str:
    """One result's title, or the matrix's (``❌ 2 of 3 jobs failed · PR #42 · …``); partner
    text escaped by ``text``, our own words bare."""
    if len(group.cells) == 1:
        return title(group.cells[0].result, text)
    cells = group.cells
    bad = [c for c in cells if c.result.status not in ("passed", "pending", "running")]
    waiting = [c for c in cells if c.result.status in ("pending", "running")]
    if bad:
        words = f"{len(bad)} of {len(cells)} jobs failed"
    elif waiting:
        words = f"{len(cells) - len(waiting)} of {len(cells)} jobs done, all passed so far"
    else:
        words = f"{len(cells)} of {len(cells)} jobs passed"
    newest = max(cells, key=lambda c: c.result.id).result
    pr = [f"PR #{newest.pr_number}"] if newest.pr_number is not None else []
    return " · ".join([f"{icon(group.status)} {words}", *pr, *context(newest, text)])


def row_line(cell: Cell) -> str:
    result = cell.result
    line = f"{icon(result.status)} *{escape.mrkdwn(clip(cell.label, 80))}* — {headline(result)}"
    if result.duration_ms is not None:
        line += f" in {duration(result.duration_ms)}"
    if report := link("report", result.links.report):
        line += f" · {report}"
    if result.replaces is not None:
        line += f" · came late, after the timeout (result #{result.replaces})"
    return line


def failing_lines(group: Group) -> list[str]:
    lines = []
    matrix = len(group.cells) > 1
    for cell in group.cells:
        for test in failing(cell.result):
            name = escape.mrkdwn(clip(test.name, MAX_NAME_CHARS))
            prefix = f"{escape.mrkdwn(clip(cell.label, 40))} › " if matrix else ""
            line = f"• {prefix}*{name}*"
            if test.error:
                line += f": {escape.mrkdwn(clip(test.error, MAX_ERROR_CHARS))}"
            found = (("screenshot", test.screenshot_url), ("video", test.video_url))
            evidence = [a for label, url in (*found, ("run", test.url)) if (a := link(label, url))]
            if evidence:
                line += " — " + " · ".join(evidence)
            lines.append(line)
    return lines


def _more(what: str, full: str | None) -> fit.Note:
    where = f": {full}" if full else " in the report"
    return lambda count: f"… {count} more {what} left out{where}"


def blocks(group: Group) -> tuple[str, list[dict[str, Any]]]:
    """(the notification text, the blocks) of the group's message."""
    newest = max(group.cells, key=lambda c: c.result.id).result
    full = link("full result", newest.links.report)
    title_text = group_title(group)
    heading = clip(title_text, fit.SLACK_HEADER)
    found: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": heading, "emoji": True}}
    ]
    rows = [row_line(cell) for cell in group.cells[:MAX_ROWS]]
    if len(group.cells) == 1:
        first = newest
        where = ", ".join(context(first, escape.mrkdwn))
        summary = f"*{headline(first)}*" + (f" on {where}" if where else "")
        if first.duration_ms is not None:
            summary += f" in {duration(first.duration_ms)}"
        rows = [summary]
        if first.summary:
            rows.append(escape.mrkdwn(clip(first.summary)))
        if first.replaces is not None:
            rows.append(f"_Came late, after the timeout (result #{first.replaces}); replaces it._")
    found.append(_section(rows, _more("jobs", full)))
    if failures := failing_lines(group)[:MAX_FAILING]:
        note = _more("failing tests", full)
        found.append(_section(["*Failing tests*", *failures], note))
    found.append(_context(group, newest))
    return escape.plain(title_text)[: fit.SLACK_TEXT], found[: fit.SLACK_BLOCKS]


def _section(lines: list[str], note: fit.Note) -> dict[str, Any]:
    text = fit.lines_within(lines, fit.SLACK_SECTION, note)
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(group: Group, newest: Any) -> dict[str, Any]:
    words = []
    if report := link("Full report", newest.links.report):
        words.append(report)
    if newest.sha:
        words.append(f"commit {escape.mrkdwn(clip(newest.sha, 12))}")
    if group.earlier:
        words.append(f"{group.earlier} job(s) of earlier commits not shown")
    words.append(f"{escape.mrkdwn(newest.provider)} result #{newest.id}, {newest.created_at[:19]}Z")
    text = fit.lines_within(words, fit.SLACK_SECTION, lambda n: f"… {n} more", sep=" · ")
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def reply(before: str, group: Group) -> str:
    """The short threaded reply when the group's status changes."""
    return f"{icon(before)} → {group_title(group, escape.mrkdwn)}"
