"""GitHub targets over its REST API: one sticky pull-request comment, and commit statuses.

``github://pr-comment`` keeps exactly one comment per pull request, found again by a hidden
marker and rewritten for each new result; a late retry of an older result never overwrites a
newer one. ``github://commit-status`` sets the status of the result's commit. The HTTP status
GitHub answers decides the retry: 429 and rate limits wait (``Retry-After``), 5xx and network
errors retry, 401/403/404/422 are permanent.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

import httpx
import msgspec

from receiver.notify import escape
from receiver.notify.message import (
    MARKDOWN,
    MAX_FAILURES,
    clip,
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
    title,
)
from receiver.notify.retry import Outcome, parse_retry_after
from receiver.results import TestCase
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
SHA: Final = re.compile(r"[0-9a-fA-F]{7,64}")
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
        self, *, api_url: str, token: str | None, timeout: float, flaky_is_green: bool = False
    ) -> None:
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
        text = comment_body(result)
        if existing is None:
            path = f"/repos/{repository}/issues/{result.pr_number}/comments"
            await self.call("POST", path, {"body": text})
            return
        if _result_id(existing.body) > result.id:
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

    async def commit_status(self, result: ResultDetail) -> None:
        repository, sha = _repository(result), _sha(result)
        green = self.flaky_is_green and only_flaky(result)
        payload: dict[str, Any] = {
            "state": "success" if green else COMMIT_STATES.get(result.status, "error"),
            "description": status_description(result),
            "context": f"receiver/{result.provider}",
        }
        if report := escape.link(result.links.report):  # never a javascript: link
            payload["target_url"] = report
        await self.call("POST", f"/repos/{repository}/statuses/{sha}", payload)

    # -- HTTP ----------------------------------------------------------------------------

    async def call(self, method: str, url: str, payload: Any = None) -> httpx.Response:
        response = await self.client.request(method, url, json=payload)
        if response.is_success:
            return response
        raise Refused(_refusal(method, response))


def status_description(result: ResultDetail) -> str:
    """``12/14 passed``, ``12/14 passed, 2 flaky``; GitHub cuts descriptions at 140
    characters."""
    if result.status in ("pending", "running"):
        return f"tests {result.status}"
    flaky = f", {result.labels[FLAKY]} flaky" if result.labels.get(FLAKY) else ""
    return f"{result.passed}/{result.total} passed{flaky}"[:140]


def only_flaky(result: ResultDetail) -> bool:
    """The result failed, and each of its failures is a test labelled flaky ([triage]
    flaky_is_green makes its commit status green)."""
    if result.status != "failed":
        return False
    items = failing(result)
    return bool(items) and all(t.label == FLAKY for t in items)


def comment_body(result: ResultDetail) -> str:
    """The comment's Markdown: every piece of partner text escaped by ``escape.markdown``, so it
    can neither mention anyone nor close our ``<details>``."""
    lines = [
        MARKER,
        f"<!-- receiver:result {result.id} -->",
        f"### {title(result, escape.markdown)}",
        "",
        f"**{headline(result, escape.markdown)}** in {duration(result.duration_ms)}",
    ]
    if result.tests:
        lines += ["", "| | test | duration | links |", "| --- | --- | --- | --- |"]
        lines += [_row(t) for t in result.tests[:MAX_TABLE_ROWS]]
        if len(result.tests) > MAX_TABLE_ROWS:
            lines.append(f"| | … {len(result.tests) - MAX_TABLE_ROWS} more in the report | | |")
    if grouped := triage_groups(result):
        lines += ["", "<details open><summary>Failures</summary>", *grouped, "", "</details>"]
    elif failures := failure_lines(result, MARKDOWN):
        details = ["<details open><summary>Failures</summary>", "", MARKDOWN.bullets(failures)]
        lines += ["", *details, "", "</details>"]
    footer = [report] if (report := MARKDOWN.link("Full report", result.links.report)) else []
    if result.sha:
        footer.append(f"commit {_commit(result.sha)}")
    footer.append(f"{result.provider} result #{result.id}, {result.created_at}")
    lines += ["", " · ".join(footer)]
    return "\n".join(lines)


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
    cell = escape.markdown(clip(test.name, MAX_TABLE_NAME_CHARS))  # "|" escaped: one cell
    return f"| {icon(test.status)} | {cell} | {duration(test.duration_ms)} | {links(test)} |"


def _commit(sha: str) -> str:
    """A hex sha in a code span (backslashes would show there), anything else escaped."""
    if SHA.fullmatch(sha):
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
