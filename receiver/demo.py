"""``receiver demo``: the whole loop on this machine, in seconds, on a throwaway database.

It starts the QualityMax simulator and the service on free loopback ports, submits one job that
passes and one that fails through ``POST /api/jobs``, waits for both signed callbacks, and prints
what people would receive: the chat message, the pull-request comment, the commit statuses.

The three renderers below are self-contained functions of a stored result, so the notify
module's own renderers can replace them one for one.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, Final

import click
import httpx
import msgspec

from receiver.process import ServiceProcess, StartError, free_port
from receiver.signatures import sign
from receiver.simulator.process import SimulatorProcess
from receiver.store import JobView, ResultDetail
from receiver.submit import ApiClient, SubmitError

DEMO_CONFIG: Final = """
[server]
max_body_bytes = 1048576
"""
WAIT_SECONDS: Final = 20.0
STATUS_CONTEXT: Final = "receiver/qualitymax"


class DemoJob(msgspec.Struct, kw_only=True):
    """One preview deploy, as a CI would describe it in custom_data."""

    url: str
    branch: str
    pr_number: int
    sha: str
    deploy_id: str
    simulate: str
    feature_description: str = "Users can log in and see their dashboard with 4 task sections"
    repository: str = "acme/shop"

    def body(self) -> dict[str, Any]:
        custom = {
            k: getattr(self, k)
            for k in ("simulate", "repository", "branch", "pr_number", "sha", "deploy_id")
        }
        return {
            "url": self.url,
            "feature_description": self.feature_description,
            "custom_data": custom,
        }


DEMO_JOBS: Final = (
    DemoJob(
        url="https://preview-41.example.com",
        branch="main",
        pr_number=41,
        sha="9f3c2a1d7e",
        deploy_id="abc-122",
        simulate="passed",
    ),
    DemoJob(
        url="https://preview-42.example.com",
        branch="feat/login",
        pr_number=42,
        sha="4b1e7c0a52",
        deploy_id="abc-123",
        simulate="failed",
    ),
)


def seed_callback() -> bytes:
    """The callback example of QualityMax's partner API document."""
    return resources.files("receiver.data").joinpath("seed_callback.json").read_bytes()


class DemoFailed(Exception):
    """A step of the demo went wrong; the message says which, with the end of the logs."""


def run_demo(_: Path) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="receiver-demo-") as tmp:
        folder = Path(tmp)
        key, secret, token = (
            f"qm-demo-{secrets.token_hex(8)}",
            secrets.token_hex(16),
            secrets.token_hex(16),
        )
        sim = SimulatorProcess(
            {
                "QUALITYMAX_API_KEY": key,
                "QUALITYMAX_WEBHOOK_SECRET": secret,
                "QUALITYMAX_PARTNER_SLUG": "demo",
                "RECEIVER_SIMULATOR_DELAY": "0.5",
            },
            folder / "simulate.log",
        )
        port = free_port()
        (folder / "receiver.toml").write_text(DEMO_CONFIG)
        env = {
            "QUALITYMAX_API_KEY": key,
            "QUALITYMAX_WEBHOOK_SECRET": secret,
            "QUALITYMAX_PARTNER_SLUG": "demo",
            "QUALITYMAX_BASE_URL": sim.url,
            "RECEIVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RECEIVER_API_TOKEN": token,
            "RECEIVER_DB": str(folder / "demo.db"),
        }
        service = ServiceProcess(folder / "receiver.toml", env, folder / "serve.log", port=port)
        click.secho("receiver demo: a QualityMax simulator and receiver on this machine", bold=True)
        try:
            sim.start()
            click.echo(f"  QualityMax simulator  {sim.url}")
            service.start()
            click.echo(f"  receiver              {service.url}  (throwaway database)")
            jobs = _exercise(service.url, token, secret)
        except (SubmitError, DemoFailed, StartError) as exc:
            click.echo(f"Error: the demo failed: {exc}", err=True)
            click.echo(f"--- receiver log ---\n{service.tail()}", err=True)
            return 1
        finally:
            service.stop()
            sim.stop()
    for job in jobs:
        _show(job)
    click.secho(f"\nDone in {time.monotonic() - started:.1f}s.", bold=True)
    click.echo("Next: deploy it (README, 'Deploy to fly.io') and point QualityMax at it.")
    return 0


def _exercise(url: str, token: str, secret: str) -> list[JobView]:
    with ApiClient(url, token) as api:
        click.secho("\nSubmitting two preview deploys through POST /api/jobs", bold=True)
        submitted = []
        for demo_job in DEMO_JOBS:
            job = api.submit(demo_job.body())
            click.echo(f"  job {job.id} {demo_job.branch:<10} -> QualityMax {job.external_id}")
            submitted.append(job.id)
        click.echo("  waiting for the signed callbacks ...")
        jobs = [_wait(api, job_id) for job_id in submitted]
    _forged(url)
    return jobs


def _wait(api: ApiClient, job_id: int) -> JobView:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        job = api.job(job_id)
        if job.result is not None:
            click.echo(f"  job {job_id}: callback taken, state {job.state}")
            return job
        time.sleep(0.1)
    raise DemoFailed(f"job {job_id} got no result within {WAIT_SECONDS:.0f}s")


def _forged(url: str) -> None:
    body = b'{"event": "test_results", "results": {"status": "passed"}}'
    forged = sign(body, "not-the-secret")
    answer = httpx.post(
        f"{url}/callbacks/qualitymax", content=body, headers={"X-QualityMax-Signature": forged}
    )
    click.echo(
        f"  a callback with a forged signature -> {answer.status_code} (refused, not stored)"
    )


def _show(job: JobView) -> None:
    result = job.result
    if result is None:  # pragma: no cover - _wait returns only jobs with a result
        return
    click.secho(f"\n━━ job {job.id}: {result.status} " + "━" * 50, bold=True)
    click.secho("Chat message (Slack, email, any Apprise target):", fg="cyan")
    click.echo(_indent(chat_message(result)))
    click.secho("Pull-request comment (Markdown):", fg="cyan")
    click.echo(_indent(pr_comment(result)))
    click.secho("Commit status:", fg="cyan")
    click.echo(_indent(commit_status(result).line()))


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


# ---------------------------------------------------------------------------------------------
# Renderers: what each kind of target shows for one result.


def title(result: ResultDetail) -> str:
    """``❌ 1 of 3 tests failed · feat/login · deploy abc-123``."""
    if result.status == "passed":
        head = f"✅ {result.passed} of {result.total} tests passed"
    elif result.failed:
        head = f"❌ {result.failed} of {result.total} tests failed"
    else:
        head = f"❌ {result.status}: {result.summary or 'no tests ran'}"
    parts = [head, result.branch, _deploy(result.custom_data)]
    return " · ".join(p for p in parts if p)


def chat_message(result: ResultDetail) -> str:
    lines = [title(result)]
    for test in result.tests:
        if test.status != "passed":
            lines.append(f"✗ {test.name}: {test.error or test.status}")
            if test.screenshot_url:
                lines.append(f"  screenshot: {test.screenshot_url}")
    if not result.tests:
        lines += [f"✗ {f.error}" for f in result.failures]
    if result.links.report:
        lines.append(f"Report: {result.links.report}")
    return "\n".join(lines)


def pr_comment(result: ResultDetail) -> str:
    lines = [
        "<!-- receiver:qualitymax -->",
        f"### {title(result)}",
        "",
        "| test | status | time | artifacts |",
        "| --- | --- | --- | --- |",
    ]
    for test in result.tests:
        mark = "✅" if test.status == "passed" else "❌"
        seconds = f"{test.duration_ms / 1000:.1f} s" if test.duration_ms is not None else ""
        links = [
            f"[{n}]({u})"
            for n, u in (("screenshot", test.screenshot_url), ("video", test.video_url))
            if u
        ]
        lines.append(f"| {test.name} | {mark} {test.status} | {seconds} | {' · '.join(links)} |")
    failures = result.failures
    if failures:
        lines += ["", "**Failures**", ""]
        lines += [f"- **{f.test}**: {f.error}" if f.test else f"- {f.error}" for f in failures]
    footer = [f"[Full report]({result.links.report})" if result.links.report else None]
    if result.sha:
        footer.append(f"commit `{result.sha[:7]}`")
    lines += ["", " · ".join(p for p in footer if p)]
    return "\n".join(lines)


class CommitStatus(msgspec.Struct, kw_only=True):
    repository: str | None
    sha: str | None
    state: str
    description: str
    context: str = STATUS_CONTEXT
    target_url: str | None = None

    def line(self) -> str:
        where = f"{self.repository or '?'}@{(self.sha or '?')[:7]}"
        return f"{where}  {self.state}  {self.context}: {self.description}"


# DESIGN.md: passed -> success, failed -> failure, error/timeout/canceled -> error, else pending.
GITHUB_STATES: Final = {"passed": "success", "failed": "failure", "error": "error"}


def commit_status(result: ResultDetail) -> CommitStatus:
    state = GITHUB_STATES.get(result.status)
    if state is None:
        state = "error" if result.status in ("timeout", "canceled") else "pending"
    return CommitStatus(
        repository=result.repository,
        sha=result.sha,
        state=state,
        description=title(result).split(" · ")[0][2:],
        target_url=result.links.report,
    )


def _deploy(custom_data: dict[str, Any]) -> str | None:
    deploy = custom_data.get("deploy_id")
    return f"deploy {deploy}" if deploy else None
