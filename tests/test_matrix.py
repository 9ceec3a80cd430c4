"""Matrix runs in one place: several jobs of one pull request (browsers, devices, providers)
render into one PR comment and one Slack message, a row per job, each showing its job's newest
result; one aggregate commit status per provider with the worst outcome; every medium's limits
kept however large the result."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from receiver import views
from receiver.notify import fit
from receiver.results import TestCase
from receiver.store import deliveries
from tests.notify_helpers import Harness, all_final, make_config, result, route
from tests.sinks import FakeGithub, FakeSlack

PR: dict[str, Any] = {"repository": "acme/shop", "pr_number": 42, "sha": "abc123def456"}
COMMENT_ID = 1001  # the stand-in's first comment
ALL = ("slackbot://#previews", "github://pr-comment", "github://commit-status")


def job_rows(body: str) -> list[str]:
    return [line for line in body.splitlines() if re.match(r"\| (✅|❌) \| qualitymax · ", line)]


def test_ten_concurrent_results_of_one_pr_leave_one_comment_and_one_message_with_ten_rows(
    github: FakeGithub, slack: FakeSlack, tmp_path: Path
) -> None:
    config = make_config(tmp_path, route("prs", *ALL), github_url=github.url, slack_url=slack.url)

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await asyncio.gather(
                *(
                    h.add(result("failed" if n % 3 == 0 else "passed", browser=f"b{n}", **PR))
                    for n in range(10)
                )
            )
            return await h.settle(lambda ds: len(ds) == 30 and all_final(ds))

    found = asyncio.run(run())
    assert {d.state for d in found} == {"sent"}
    (comment,) = github.markers("acme/shop", 42)
    rows = job_rows(comment.body)
    assert [row.split(" | ")[1] for row in rows] == [f"qualitymax · b{n}" for n in range(10)]
    assert sum(row.startswith("| ❌") for row in rows) == 4
    assert "### ❌ 4 of 10 jobs failed" in comment.body
    assert "<!-- receiver:result 10 -->" in comment.body
    (message,) = slack.top_level()
    text = message.blocks[1]["text"]["text"]
    assert [line.split("*")[1] for line in text.splitlines()] == [
        f"qualitymax · b{n}" for n in range(10)
    ]
    # The commit's one status for the provider says the worst of its rows, whatever came last.
    last = github.statuses[PR["sha"]][-1]
    assert last["context"] == "receiver/qualitymax"
    assert (last["state"], last["description"]) == (
        "failure",
        "4 of 10 jobs failed: b0, b3, b6, b9",
    )


def test_a_rerun_replaces_its_row_and_an_older_result_never_comes_back(
    github: FakeGithub, tmp_path: Path
) -> None:
    routes = route("prs", "github://pr-comment", "github://commit-status")
    config = make_config(tmp_path, routes, github_url=github.url)

    async def run() -> None:
        async with Harness(config) as h:
            for status, browser in [("failed", "chromium"), ("passed", "firefox")]:
                await h.add(result(status, browser=browser, **PR))
                await h.settle(all_final)
            first = h.deliveries()[0].id
            await h.add(result("passed", browser="chromium", **PR))  # the re-run went green
            await h.settle(lambda ds: len(ds) == 6 and all_final(ds))
            # A late retry of the first (red) result renders the group as it is now.
            edits = len(github.sink.to(f"/repos/acme/shop/issues/comments/{COMMENT_ID}"))
            await h.store.write(lambda tx: deliveries.redeliver(tx, first))
            h.worker.wake()
            await asyncio.to_thread(
                github.sink.wait_for,
                lambda: (
                    len(github.sink.to(f"/repos/acme/shop/issues/comments/{COMMENT_ID}")) > edits
                ),
            )
            await h.settle(all_final)

    asyncio.run(run())
    (comment,) = github.markers("acme/shop", 42)
    assert [r.split(" | ")[0] for r in job_rows(comment.body)] == ["| ✅", "| ✅"]
    assert "### ✅ 2 of 2 jobs passed" in comment.body
    states = [s["state"] for s in github.statuses[PR["sha"]]]
    assert states[:3] == ["failure", "failure", "success"]


def test_an_oversize_result_stays_under_every_medium_limit(
    github: FakeGithub, slack: FakeSlack, tmp_path: Path
) -> None:
    config = make_config(tmp_path, route("prs", *ALL), github_url=github.url, slack_url=slack.url)
    big = result("failed", **PR)
    long_url = "https://example.com/" + "x" * 1500
    big.tests = [
        TestCase(
            name=f"test {n} " + "n" * 190,
            status="failed",
            duration_ms=10,
            error="e" * 400,
            screenshot_url=long_url,
            video_url=long_url,
        )
        for n in range(3000)
    ]
    big.total, big.failed, big.passed = 3000, 3000, 0
    labels = [("m" * 40) + f" {n}" for n in range(12)]

    async def run() -> list[views.DeliveryView]:
        async with Harness(config) as h:
            await h.add(big)
            await h.settle(all_final)
            for label in labels:  # a matrix whose failing rows cannot all be named in 140
                await h.add(result("failed", matrix=label, **PR))
            return await h.settle(lambda ds: len(ds) == 39 and all_final(ds))

    found = asyncio.run(run())
    assert {d.state for d in found} == {"sent"}, [d.last_error for d in found]
    # The PR comment of the big result alone, then the matrix: each under 65,536 characters.
    sent = [r for r in github.sink.received if r.method in ("POST", "PATCH")]
    bodies = [r.json()["body"] for r in sent if "/comments" in r.path]
    assert max(len(b) for b in bodies) <= fit.GITHUB_COMMENT
    assert "more rows left out: see [the full report](https://app.qualitymax.io" in bodies[0]
    # Slack took every post and edit: its stand-in refuses text, blocks or sections over the limit
    assert all(c.ok for c in slack.calls)
    for call in slack.calls:
        for block in call.args.get("blocks", []):
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= fit.SLACK_SECTION
    first = slack.calls[0].args["blocks"]
    assert "more failing tests left out: <https://app.qualitymax.io" in first[2]["text"]["text"]
    descriptions = [s["description"] for s in github.statuses[PR["sha"]]]
    assert max(len(d) for d in descriptions) <= fit.GITHUB_DESCRIPTION
    assert re.fullmatch(r"13 of 13 jobs failed: .* \+\d+", descriptions[-1])
