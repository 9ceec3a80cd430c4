"""GitHub targets over its REST API: one sticky pull-request comment, and commit statuses.

``github://pr-comment`` keeps exactly one comment per pull request, found again by a hidden
marker and rewritten for each new result; a late retry of an older result never overwrites a
newer one. Several jobs of one pull request (browsers, devices, providers: receiver.matrix)
share the comment, a row each, each row showing its job's newest result.
``github://commit-status`` sets the status of the result's commit: one per provider (context
``receiver/{provider}``), the worst outcome of that provider's jobs on the commit, so a green
matrix job never hides a red one (see README, "Matrix runs"). Both stay within GitHub's limits
(receiver.notify.fit). The HTTP status
GitHub answers decides the retry: 429 and rate limits wait (``Retry-After``), 5xx and network
errors retry, 401/403/404/422 are permanent.
"""

from __future__ import annotations

import asyncio
import re
import time
from functools import partial
from typing import Any, Final

import httpx
import msgspec

from receiver import matrix
from receiver.matrix import Group
from receiver.notify import escape, fit
from receiver.notify.message import (
    MARKDOWN,
    MAX_FAILURES,
    clip,
    counts,
    duration,
    failing,
    failure_items,
    failure_lines,
    fixed_tests,
    headline,
    icon,
    label_detail,
    label_name,
    links,
    placed_at,
    title,
)
from receiver.notify.retry import Outcome, parse_retry_after
from receiver.notify.slack_render import group_title  # the same words as the Slack message
from receiver.results import TestCase
from receiver.store import Store
from receiver.triage import FIXED, FLAKY, LABELS
from receiver.views import ResultDetail

MARKER: Final = "<!-- receiver:pr-comment -->"
RESULT_MARKER: Final = re.compile(r"<!-- receiver:result (\d+) -->")
COMMIT_STATES: Final = {
    "passed": "success",
    "failed": "failure",
    "error": "error",
    "timeout": "error",
    "canceled": "error",
    "pending": "pending",
    "running": "pending",
}
# Letters, digits, '-', '_' and '.', but never a path segment of dots only.
REPOSITORY_PART: Final = re.compile(r"(?!\.+$)[A-Za-z0-9_.-]{1,100}")
COMMIT_SHA: Final = re.compile(r"[0-9a-fA-F]{7,64}")
MAX_TABLE_ROWS: Final = 100
MAX_TABLE_NAME_CHARS: Final = 120
MAX_FINDING_ROWS: Final = 50  # a SAST result's findings table, worst first
MAX_LOGS: Final = 10  # failing tests whose logs the comment folds in
API_VERSION: Final = "2022-11-28"


class Refused(Exception):
    """GitHub answered, and not with success: the outcome says whether to try again."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class Comment(msgspec.Struct):
    id: int
    body: str | None = None


class GithubSender:
    """Both GitHub kinds, on one pooled HTTP client."""

    def __init__(
        self,
        *,
        api_url: str,
        token: str | None,
        timeout: float,
        store: Store | None = None,
        flaky_is_green: bool = False,
    ) -> None:
        self.store = store  # where a pull request's or commit's other jobs are read
        self.api_url = api_url.rstrip("/")
        self.flaky_is_green = flaky_is_green  # [triage] flaky_is_green
        self.client = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {token or ''}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "receiver",
            },
        )

    def serial_key(self, target: str, result: ResultDetail) -> str | None:
        if target.endswith("pr-comment"):
            return f"pr-comment:{result.repository}#{result.pr_number}"
        return f"commit-status:{result.repository}@{result.sha}"

    async def send(self, target: str, result: ResultDetail) -> Outcome:
        try:
            if target.endswith("pr-comment"):
                await self.pr_comment(result)
            else:
                await self.commit_status(result)
        except Refused as refused:
            return refused.outcome
        except httpx.TimeoutException:
            return Outcome(ok=False, error=f"GitHub at {self.api_url} did not answer in time")
        except httpx.TransportError as exc:
            return Outcome(ok=False, error=f"Cannot reach GitHub at {self.api_url}: {exc!r}")
        return Outcome(ok=True)

    async def close(self) -> None:
        await self.client.aclose()

    # -- pull-request comment ------------------------------------------------------------

    async def pr_comment(self, result: ResultDetail) -> None:
        repository = _repository(result)
        if result.pr_number is None:
            raise _missing("pr_number", "the pull request to comment on")
        existing = await self.find_comment(repository, result.pr_number)
        group = await self.group(matrix.PR_GROUP, result)
        text = comment_body(result, group)
        if existing is None:
            path = f"/repos/{repository}/issues/{result.pr_number}/comments"
            await self.call("POST", path, {"body": text})
            return
        if _result_id(existing.body) > max(result.id, group.newest_id if group else 0):
            return  # a newer result already speaks there; a late retry must not roll it back
        await self.call(
            "PATCH", f"/repos/{repository}/issues/comments/{existing.id}", {"body": text}
        )

    async def find_comment(self, repository: str, pr_number: int) -> Comment | None:
        url: str | None = f"/repos/{repository}/issues/{pr_number}/comments?per_page=100"
        while url:
            response = await self.call("GET", url)
            for comment in msgspec.convert(response.json(), list[Comment]):
                if comment.body and MARKER in comment.body:
                    return comment
            url = response.links.get("next", {}).get("url")
        return None

    # -- commit status -------------------------------------------------------------------

    async def group(
        self, keys: tuple[str, ...], result: ResultDetail, provider: str | None = None
    ) -> Group | None:
        """The result's group as it is now, when it has more than one job (else None)."""
        key = matrix.group_of(keys, result)
        if self.store is None or key is None:
            return None
        read = partial(_read_group, key, result, provider)
        group = await asyncio.to_thread(self.store.read, read)
        return group if len(group.cells) > 1 else None

    async def commit_status(self, result: ResultDetail) -> None:
        repository, sha = _repository(result), _sha(result)
        lane = matrix.lane(result)  # a SAST scan has its own status: receiver/sast
        group = await self.group(matrix.COMMIT_GROUP, result, provider=lane)
        shown = result if group is None else _worst_cell(group).result
        state = COMMIT_STATES.get(group.status if group else result.status, "error")
        jobs = [c.result for c in group.cells] if group else [result]
        if state == "failure" and self.flaky_is_green and _only_flaky_failed(jobs):
            state = "success"
        payload: dict[str, Any] = {
            "state": state,
            "description": status_description(result, group),
            "context": f"receiver/{lane}",
        }
        # The provider's report, else the result's page on the dashboard; never a javascript: one.
        if report := escape.link(shown.links.report) or escape.link(shown.links.dashboard):
            payload["target_url"] = report
        await self.call("POST", f"/repos/{repository}/statuses/{sha}", payload)

    # -- HTTP ----------------------------------------------------------------------------

    async def call(self, method: str, url: str, payload: Any = None) -> httpx.Response:
        response = await self.client.request(method, url, json=payload)
        if response.is_success:
            return response
        raise Refused(_refusal(method, response))


def status_description(result: ResultDetail, group: Group | None = None) -> str:
    """``12/14 passed``, ``12/14 passed, 2 flaky``, or for a matrix ``2 of 3 jobs failed:
    firefox, webkit``; within GitHub's 140 characters (the jobs that do not fit are counted:
    ``+4``)."""
    if group is not None:
        bad = [c for c in group.cells if c.result.status not in ("passed", "pending", "running")]
        if not bad:
            return f"{len(group.cells)} jobs: " + (
                "all passed" if group.status == "passed" else f"tests {group.status}"
            )
        head = f"{len(bad)} of {len(group.cells)} jobs failed: "
        names = [_cell_name(c.label) for c in bad]
        return head + fit.words_within(names, fit.GITHUB_DESCRIPTION - len(head))
    if result.status in ("pending", "running"):
        return f"tests {result.status}"
    if result.kind != "tests":  # "SAST failed: 1 critical, 2 high", "15 tests generated"
        return fit.words_within([headline(result)], fit.GITHUB_DESCRIPTION)
    flaky = f", {result.labels[FLAKY]} flaky" if result.labels.get(FLAKY) else ""
    return f"{result.passed}/{result.total} passed{flaky}"[: fit.GITHUB_DESCRIPTION]


def only_flaky(result: ResultDetail) -> bool:
    """The result failed, and each of its failures is a test labelled flaky ([triage]
    flaky_is_green makes its commit status green)."""
    if result.status != "failed":
        return False
    items = failing(result)
    return bool(items) and all(t.label == FLAKY for t in items)


def _only_flaky_failed(jobs: list[ResultDetail]) -> bool:
    """Every job that did not pass failed on flaky tests alone."""
    return all(only_flaky(job) for job in jobs if job.status != "passed")


def _cell_name(label: str) -> str:
    """A row's label without its provider (the context names it), on one line."""
    return escape.one_line(label.split(" · ", 1)[-1])


def _worst_cell(group: Group) -> matrix.Cell:
    order = {status: rank for rank, status in enumerate(matrix.SEVERITY)}
    return min(group.cells, key=lambda c: (order.get(c.result.status, 0), -c.result.id))


def comment_body(result: ResultDetail, group: Group | None = None) -> str:
    """The comment's Markdown: every piece of partner text escaped by ``escape.markdown``, so it
    can neither mention anyone nor close our ``<details>``. A matrix (``group``) gets a row per
    job. Within GitHub's 65,536 characters: the longest part is cut, saying what was left out."""
    if group is not None:
        return _matrix_body(group)
    lines = [
        MARKER,
        f"<!-- receiver:result {result.id} -->",
        f"### {title(result, escape.markdown)}",
        "",
        f"**{headline(result, escape.markdown)}** in {duration(result.duration_ms)}",
    ]
    if result.replaces is not None:
        lines += ["", f"_Came late, after the timeout (result #{result.replaces}); replaces it._"]
    full = MARKDOWN.link("the full report", result.links.report)
    table = fit.Part(lines=[_row(t) for t in result.tests[:MAX_TABLE_ROWS]], note=_table_note(full))
    if len(result.tests) > MAX_TABLE_ROWS:
        table.cut = len(result.tests) - MAX_TABLE_ROWS
    # With triage labels the failures come under a heading per label; else one plain list.
    grouped = triage_groups(result)
    failures = fit.Part(lines=grouped or failure_lines(result, MARKDOWN), note=_list_note(full))
    findings = fit.Part(lines=finding_rows(result), note=_findings_note(full))
    logs = fit.Part(lines=log_blocks(result), note=_list_note(full))
    footer = _footer(result)
    fit.fit([table, failures, findings, logs], fit.GITHUB_COMMENT, _size(lines, footer) + 400)
    if table.shown:
        lines += ["", "| | test | duration | links |", "| --- | --- | --- | --- |", *table.shown]
    if findings.shown:
        lines += [
            "",
            f"**Findings** ({counts(result)}), worst first:",
            "",
            "| severity | rule | file | line | CWE | message |",
            "| --- | --- | --- | --- | --- | --- |",
            *findings.shown,
        ]
    if failures.shown and grouped:
        lines += ["", "<details open><summary>Failures</summary>", *failures.shown]
        lines += ["", "</details>"]
    elif failures.shown:
        details = ["<details open><summary>Failures</summary>", "", _bullets(failures)]
        lines += ["", *details, "", "</details>"]
    if logs.shown:
        lines += ["", *logs.shown]
    lines += ["", footer]
    return "\n".join(lines)


def finding_rows(result: ResultDetail) -> list[str]:
    """A SAST result's findings as table rows, worst first, at most MAX_FINDING_ROWS."""
    if result.security is None:
        return []
    rows = []
    for finding in result.security.findings[:MAX_FINDING_ROWS]:
        cells = [
            finding.severity,
            finding.rule_id or "",
            finding.file or "",
            "" if finding.line is None else str(finding.line),
            finding.cwe or "",
            finding.message or "",
        ]
        rows.append("| " + " | ".join(escape.markdown(clip(c, 120)) for c in cells) + " |")
    return rows


def log_blocks(result: ResultDetail) -> list[str]:
    """Each failing test's fetched logs, folded (``<details>``), in a code block long enough
    that nothing in the logs can close it."""
    blocks = []
    for test in [t for t in failing(result) if t.logs][:MAX_LOGS]:
        fence = "`" * max(3, _longest_backticks(test.logs or "") + 1)
        name = escape.markdown(clip(test.name, MAX_TABLE_NAME_CHARS))
        blocks.append(
            f"<details><summary>Logs: {name}</summary>\n\n{fence}text\n{test.logs}\n{fence}"
            "\n\n</details>"
        )
    return blocks


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _findings_note(full: str | None) -> fit.Note:
    where = full or "the report"
    return lambda count: f"| | … {count} more findings left out: see {where} | | | | |"


def _matrix_body(group: Group) -> str:
    newest = max(group.cells, key=lambda c: c.result.id).result
    lines = [
        MARKER,
        f"<!-- receiver:result {group.newest_id} -->",
        f"### {group_title(group, escape.markdown)}",
    ]
    full = MARKDOWN.link("the full report", newest.links.report)
    jobs = fit.Part(lines=[_job_row(c) for c in group.cells], note=_table_note(full))
    failed = [
        f"{escape.markdown(clip(c.label, 60))} › {line}"
        for c in group.cells
        for line in failure_lines(c.result, MARKDOWN)
    ]
    failures = fit.Part(lines=failed, note=_list_note(full))
    footer = _footer(newest)
    if group.earlier:
        footer = f"{group.earlier} job(s) of earlier commits not shown · {footer}"
    fit.fit([jobs, failures], fit.GITHUB_COMMENT, _size(lines, footer) + 200)
    lines += ["", "| | job | result | duration | links |", "| --- | --- | --- | --- | --- |"]
    lines += jobs.shown
    if failures.shown:
        details = ["<details open><summary>Failures</summary>", "", _bullets(failures)]
        lines += ["", *details, "", "</details>"]
    lines += ["", footer]
    return "\n".join(lines)


def _job_row(cell: matrix.Cell) -> str:
    result = cell.result
    name = escape.markdown(clip(cell.label, MAX_TABLE_NAME_CHARS))
    late = f" (came late, after timeout #{result.replaces})" if result.replaces else ""
    report = MARKDOWN.link("report", result.links.report) or ""
    return (
        f"| {icon(result.status)} | {name} | {headline(result)}{late} | "
        f"{duration(result.duration_ms)} | {report} |"
    )


def _footer(result: ResultDetail) -> str:
    footer = [report] if (report := MARKDOWN.link("Full report", result.links.report)) else []
    if page := MARKDOWN.link("Open in receiver", result.links.dashboard):
        footer.append(page)
    if result.sha:
        footer.append(f"commit {_commit(result.sha)}")
    footer.append(f"{result.provider} result #{result.id}, {result.created_at}")
    return " · ".join(footer)


def _bullets(part: fit.Part) -> str:
    return MARKDOWN.bullets(part.shown)


def _size(lines: list[str], footer: str) -> int:
    return sum(len(line) + 1 for line in lines) + len(footer)


def _table_note(full: str | None) -> fit.Note:
    where = full or "the report"
    return lambda count: f"| | … {count} more rows left out: see {where} | | |"


def _list_note(full: str | None) -> fit.Note:
    where = full or "the report"
    return lambda count: f"… {count} more left out: see {where}"


def _read_group(key: str, result: ResultDetail, provider: str | None, tx: Any) -> Group:
    return matrix.read_group(tx, key, result, provider=provider)


def triage_groups(result: ResultDetail) -> list[str]:
    """The failures under a heading per triage label, what each label rests on below each
    failure, then the fixed tests; nothing when no test carries a label."""
    items, fixed = failing(result), fixed_tests(result)
    if not fixed and not any(t.label for t in items):
        return []
    lines = []
    for label in (*[label for label in LABELS if label != FIXED], None):
        group = [t for t in items if t.label == label]
        if group:
            lines += _group(label, group)
    if fixed:
        lines += _group(FIXED, fixed)
    return lines


def _group(label: str | None, tests: list[TestCase]) -> list[str]:
    """``#### Flaky (2)`` and a list item per test (what the label rests on, in italics, on
    the item's second line)."""
    if label is None:
        heading = "Other failures"
    else:
        name = label_name(label, tests[0].triage, escape.markdown)
        heading = name[0].upper() + name[1:]
    items = failure_items(tests, MARKDOWN, labels=False)
    for index, test in enumerate(tests[:MAX_FAILURES]):
        detail = label_detail(test, MARKDOWN)
        if detail and detail != label_name(label or "", test.triage, escape.markdown):
            items[index] += f"<br>\n  _{detail}_"
    return ["", f"#### {heading} ({len(tests)})", "", MARKDOWN.bullets(items)]


def _row(test: TestCase) -> str:
    # "|" escaped: one cell; where it ran after its name ("Login · Pixel 8 · Android 14")
    cell = escape.markdown(clip(test.name, MAX_TABLE_NAME_CHARS)) + placed_at(test)
    return f"| {icon(test.status)} | {cell} | {duration(test.duration_ms)} | {links(test)} |"


def _commit(sha: str) -> str:
    """A hex sha in a code span (backslashes would show there), anything else escaped."""
    if COMMIT_SHA.fullmatch(sha):
        return f"`{sha[:12]}`"
    return escape.markdown(clip(sha, 12))


def _repository(result: ResultDetail) -> str:
    repository = result.repository
    if not repository:
        raise _missing("repository", "owner/name of the GitHub repository (also read: repo)")
    owner, _, name = repository.partition("/")
    if not (REPOSITORY_PART.fullmatch(owner) and REPOSITORY_PART.fullmatch(name)):
        # It lands in the API path with our token: "../" must not reach another endpoint.
        raise _refused(f"custom_data.repository is {repository!r}; it must be owner/name")
    return repository


def _sha(result: ResultDetail) -> str:
    if not result.sha:
        raise _missing("sha", "the commit to set the status of (also read: commit_sha, head_sha)")
    if not COMMIT_SHA.fullmatch(result.sha):
        raise _refused(f"custom_data.sha is {result.sha[:80]!r}; it must be a commit's hex SHA")
    return result.sha


def _refused(error: str) -> Refused:
    return Refused(Outcome(ok=False, permanent=True, error=error))


def _missing(key: str, meaning: str) -> Refused:
    return Refused(
        Outcome(
            ok=False,
            permanent=True,
            error=f"custom_data has no {key!r} ({meaning}); send it in the job's custom_data",
        )
    )


def _result_id(body: str | None) -> int:
    match = RESULT_MARKER.search(body or "")
    return int(match.group(1)) if match else 0


def _refusal(method: str, response: httpx.Response) -> Outcome:
    code = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if code == 403 and (
        retry_after is not None or response.headers.get("x-ratelimit-remaining") == "0"
    ):
        # GitHub's rate limits answer 403: a wait, not a refusal.
        code = 429
        if retry_after is None:
            retry_after = _until_reset(response.headers.get("x-ratelimit-reset"))
    try:
        data = response.json()
    except ValueError:
        data = None
    detail = str(data.get("message", "")) if isinstance(data, dict) else response.text[:200]
    error = f"GitHub answered {response.status_code} to {method} {response.url.path}"
    error += f": {detail}" if detail else ""
    return Outcome(ok=False, status_code=code, retry_after=retry_after, error=error)


def _until_reset(reset: str | None) -> float | None:
    if not reset or not reset.isdigit():
        return None
    return max(0.0, int(reset) - time.time())
