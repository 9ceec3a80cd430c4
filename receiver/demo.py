"""``receiver demo``: the whole loop on this machine, in seconds, on a throwaway database.

It starts the QualityMax, Qualigate and QualGent simulators, a chat webhook and a GitHub stand-in,
and the service on free loopback ports, with routes to the chat webhook (``json://``) and to
``github://pr-comment`` and ``github://commit-status`` (``GITHUB_API_URL`` pointed at the
stand-in). It first gives the pull request ``feat/login`` a history (a run where logout failed,
then a re-run of the same commit where it passed: flaky), then submits a passing and a failing
QualityMax job, a Qualigate suite and a QualGent test case through ``POST /api/jobs``, waits for
their results (callbacks, polls) and their deliveries, and prints what the targets really
received: the chat message, the pull-request comment's Markdown as GitHub holds it, the commit
statuses. The failing job's failures are labelled by triage: one ``new``, one ``flaky``.

Then a matrix: one pull request tested on three browsers at once, whose results edit one living
Slack message (``slackbot://#previews``, through the Slack Web API stand-in) and share one PR
comment; and a nightly run that no route takes, with ``explain`` saying why it stayed silent.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import click
import httpx
import msgspec

from receiver.explain import Explanation, lines
from receiver.process import ServiceProcess, StartError, free_port
from receiver.signatures import sign
from receiver.simulator import qualgent as qualgent_sim
from receiver.simulator import qualigate as qualigate_sim
from receiver.simulator.common import Served
from receiver.simulator.github import GithubApi
from receiver.simulator.process import SimulatorProcess
from receiver.simulator.slack import SlackApi
from receiver.simulator.standin import StandIn
from receiver.submit import ApiClient, SubmitError
from receiver.views import JobView

DEMO_CONFIG: Final = """
[server]
max_body_bytes = 1048576

[delivery]
backoff = [0.5]
timeout_seconds = 5

[qualigate]
base_url = "{qualigate}"
poll_seconds = 0.2

[qualgent]
base_url = "{qualgent}"
poll_seconds = 0.2

[[routes]]
name = "team-chat"
when = {{ has = ["deploy_id"] }}
notify = ["{chat}"]

[[routes]]
name = "pull-requests"
when = {{ has = ["pr_number"] }}
notify = ["github://pr-comment", "github://commit-status"]

[[routes]]
name = "previews"
when = {{ has = ["browser"] }}
notify = ["slackbot://#previews"]
"""
CHAT_PATH: Final = "/chat"
DEMO_REPOSITORY: Final = "acme/shop"
WAIT_SECONDS: Final = 20.0
Found = TypeVar("Found")


class DemoJob(msgspec.Struct, kw_only=True):
    """One preview deploy, as a CI would describe it in custom_data, and what to run on it."""

    provider: str
    fields: dict[str, Any]  # the provider's own part of the POST /api/jobs body
    branch: str
    pr_number: int
    sha: str
    deploy_id: str
    simulate: str | None = None  # the QualityMax simulator's outcome
    simulate_failing: list[str] | None = None  # the QualityMax simulator's tests to fail
    simulate_delay: float | None = None
    repository: str = DEMO_REPOSITORY

    def body(self) -> dict[str, Any]:
        keys = (
            "simulate",
            "simulate_failing",
            "simulate_delay",
            "repository",
            "branch",
            "pr_number",
            "sha",
            "deploy_id",
        )
        custom = {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, "")}
        if browser := self.fields.get("options", {}).get("browser"):
            custom["browser"] = browser  # the matrix cell, for the living message's rows
        return {"provider": self.provider, **self.fields, "custom_data": custom}


def _preview(number: int) -> dict[str, Any]:
    return {
        "url": f"https://preview-{number}.example.com",
        "feature_description": "Users can log in and see their dashboard with 4 task sections",
    }


DASHBOARD: Final = "Dashboard shows the task sections"
LOGOUT: Final = "Logout returns to the sign-in page"
# The pull request's earlier runs, one after the other: logout failed on a commit, then passed on
# a re-run of that same commit. Triage keeps that; the demo's failing job then shows it.


def _login_pr(sha: str, deploy_id: str, **outcome: Any) -> DemoJob:
    """A QualityMax run on pull request 42 (feat/login); ``outcome``: the simulator's fields."""
    return DemoJob(
        provider="qualitymax",
        fields=_preview(42),
        branch="feat/login",
        pr_number=42,
        sha=sha,
        deploy_id=deploy_id,
        **outcome,
    )


HISTORY_JOBS: Final = (
    _login_pr("4b1e7c0a52", "abc-120", simulate_failing=[LOGOUT], simulate_delay=0.1),
    _login_pr("4b1e7c0a52", "abc-121", simulate="passed", simulate_delay=0.1),
)
DEMO_JOBS: Final = (
    DemoJob(
        provider="qualitymax",
        fields=_preview(41),
        branch="main",
        pr_number=41,
        sha="9f3c2a1d7e",
        deploy_id="abc-122",
        simulate="passed",
    ),
    # The dashboard's failure is new, logout's flaky.
    _login_pr("e5a8d3f961", "abc-123", simulate_failing=[DASHBOARD, LOGOUT]),
    DemoJob(
        provider="qualigate",
        fields={"test_suite_id": qualigate_sim.MIXED_SUITE},
        branch="feat/checkout",
        pr_number=43,
        sha="7d2e9b4c11",
        deploy_id="abc-124",
    ),
    DemoJob(
        provider="qualgent",
        fields={"test_case_id": "tc_pass", "app_file_id": "latest", "device": qualgent_sim.DEVICE},
        branch="feat/mobile",
        pr_number=44,
        sha="c0ffee1234",
        deploy_id="abc-125",
    ),
)


MATRIX_PR: Final = 45
MATRIX: Final = (("chromium", "passed"), ("firefox", "failed"), ("webkit", "passed"))


def matrix_jobs() -> list[DemoJob]:
    """One pull request, three browsers: each job's custom_data names its matrix cell."""
    return [
        DemoJob(
            provider="qualitymax",
            fields={**_preview(MATRIX_PR), "options": {"browser": browser}},
            branch="feat/search",
            pr_number=MATRIX_PR,
            sha="5e1f0c9a2b",
            deploy_id="",
            simulate=outcome,
        )
        for browser, outcome in MATRIX
    ]


def seed_callback() -> bytes:
    """The callback example of QualityMax's partner API document."""
    return resources.files("receiver.data").joinpath("seed_callback.json").read_bytes()


class DemoFailed(Exception):
    """A step of the demo went wrong; the message says which, with the end of the logs."""


class StandIns:
    """The places notifications go, on loopback: a chat webhook and GitHub's REST API."""

    def __init__(self) -> None:
        self.github_token = f"ghp_demo{secrets.token_hex(8)}"
        self.slack_token = f"xoxb-demo-{secrets.token_hex(8)}"
        self.slack = SlackApi(self.slack_token)
        self.slack_server = StandIn(self.slack.answer, nodelay=True)
        self.chat = StandIn()
        self.github = GithubApi(self.github_token)
        self.github_server = StandIn(self.github.answer)
        self.github.base_url = self.github_server.base_url

    @property
    def chat_url(self) -> str:
        # A json:// target sends plain text unless asked; the demo shows the Markdown a chat
        # service renders.
        return f"json://127.0.0.1:{self.chat.port}{CHAT_PATH}?format=markdown"

    def delivered(self, jobs: list[JobView]) -> bool:
        """Every job's chat message, PR comment and commit status has arrived."""
        return all(self._chat(job) and self._comment(job) and self._statuses(job) for job in jobs)

    def _chat(self, job: JobView) -> str | None:
        tag = f"result #{job.result_id}_"
        for request in self.chat.delivered(CHAT_PATH):
            message = ChatMessage.decode(request.body)
            if message.message.endswith(tag):
                return f"{message.title}\n\n{message.message}"
        return None

    def chat_message(self, job: JobView) -> str:
        return self._chat(job) or "(none arrived)"

    def _comment(self, job: JobView) -> str | None:
        """The pull request's sticky comment, once it shows this job's result."""
        pr = job.custom_data.get("pr_number")
        marker = f"<!-- receiver:result {job.result_id} -->"
        found = [c.body for c in self.github.comments.get(DEMO_REPOSITORY, []) if c.issue == pr]
        return found[-1] if found and marker in found[-1] else None

    def pr_comment(self, job: JobView) -> str:
        return self._comment(job) or "(none arrived)"

    def _statuses(self, job: JobView) -> list[dict[str, Any]]:
        return self.github.statuses.get(str(job.custom_data.get("sha")), [])

    def commit_statuses(self, job: JobView) -> str:
        lines = [
            f"{s['state']:<8} {s['context']}: {s['description']}  {s.get('target_url', '')}"
            for s in self._statuses(job)
        ]
        return "\n".join(line.rstrip() for line in lines) or "(none arrived)"

    def wait(self, jobs: list[JobView]) -> None:
        failure = f"the notifications did not all arrive within {WAIT_SECONDS:.0f}s"
        _until(lambda: self.delivered(jobs) or None, failure, every=0.05)

    @property
    def slack_url(self) -> str:
        return f"{self.slack_server.base_url}/api"

    def close(self) -> None:
        self.chat.close()
        self.github_server.close()
        self.slack_server.close()


class ChatMessage(msgspec.Struct):
    """What Apprise's ``json://`` posts."""

    title: str
    message: str

    @classmethod
    def decode(cls, body: bytes) -> ChatMessage:
        return msgspec.json.decode(body, type=cls)


def run_demo(_: Path, *, keep: bool = False) -> int:
    """The whole loop; with ``keep``, the service (and its dashboard) serves on until Ctrl-C."""
    started = time.monotonic()
    targets = StandIns()
    with tempfile.TemporaryDirectory(prefix="receiver-demo-") as tmp:
        folder = Path(tmp)
        key, secret, token = (
            f"qm-demo-{secrets.token_hex(8)}",
            secrets.token_hex(16),
            secrets.token_hex(16),
        )
        partner = {
            "QUALITYMAX_API_KEY": key,
            "QUALITYMAX_WEBHOOK_SECRET": secret,
            "QUALITYMAX_PARTNER_SLUG": "demo",
        }
        sim = SimulatorProcess(
            {**partner, "RECEIVER_SIMULATOR_DELAY": "0.5"}, folder / "simulate.log"
        )
        port = free_port()
        gate, gent = Served(qualigate_sim.create_app()), Served(qualgent_sim.create_app())
        config = DEMO_CONFIG.format(chat=targets.chat_url, qualigate=gate.url, qualgent=gent.url)
        (folder / "receiver.toml").write_text(config)
        env = {
            **partner,
            "QUALITYMAX_BASE_URL": sim.url,
            "RECEIVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RECEIVER_API_TOKEN": token,
            "RECEIVER_DB": str(folder / "demo.db"),
            "GITHUB_TOKEN": targets.github_token,
            "GITHUB_API_URL": targets.github.base_url,
            "QUALIGATE_API_KEY": qualigate_sim.API_KEY,
            "QUALGENT_API_KEY": qualgent_sim.API_KEY,
            "SLACK_BOT_TOKEN": targets.slack_token,
            "SLACK_API_URL": targets.slack_url,
        }
        service = ServiceProcess(folder / "receiver.toml", env, folder / "serve.log", port=port)
        click.secho("receiver demo: provider simulators and receiver on this machine", bold=True)
        try:
            sim.start()
            gate.start()
            gent.start()
            click.echo(f"  QualityMax simulator  {sim.url}  (calls back)")
            click.echo(f"  Qualigate simulator   {gate.url}  (polled)")
            click.echo(f"  QualGent simulator    {gent.url}  (polled)")
            click.echo(f"  chat webhook          {targets.chat_url}  (route team-chat)")
            click.echo(f"  GitHub stand-in       {targets.github.base_url}  (route pull-requests)")
            click.echo(f"  Slack API stand-in    {targets.slack_url}  (route previews)")
            service.start()
            click.echo(f"  receiver              {service.url}  (throwaway database)")
            jobs = _exercise(service.url, token)
            click.echo("  waiting for the deliveries ...")
            targets.wait(jobs)
            matrix = _exercise_matrix(service.url, token)
            silent = _silent(service.url, token)
            for job in jobs:
                _show(job, targets)
            _show_matrix(matrix, targets)
            _show_explain(silent)
            click.secho(f"\nDone in {time.monotonic() - started:.1f}s.", bold=True)
            click.echo("Next: deploy it (README, 'Deploy to fly.io') and point QualityMax at it.")
            _dashboard(service.url, token, keep=keep)
        except (SubmitError, DemoFailed, StartError) as exc:
            click.echo(f"Error: the demo failed: {exc}", err=True)
            click.echo(f"--- receiver log ---\n{service.tail()}", err=True)
            return 1
        finally:
            service.stop()
            sim.stop()
            for served in (gate, gent):
                served.stop()
            targets.close()
    return 0


def _dashboard(url: str, token: str, *, keep: bool) -> None:
    """The dashboard's address and the demo's throwaway token; with ``keep``, serve on."""
    click.secho(f"\nDashboard: {url}/", bold=True)
    click.echo(f"  sign in with the demo's API token: {token}")
    if not keep:
        click.echo("  (the demo has stopped; `receiver demo --keep` keeps it serving)")
        return
    click.echo("  serving until Ctrl-C ...")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("\nstopping", err=True)


def _exercise(url: str, token: str) -> list[JobView]:
    with ApiClient(url, token) as api:
        click.secho("\nThe pull request's history: two earlier runs of feat/login", bold=True)
        for demo_job in HISTORY_JOBS:
            earlier = _wait(api, api.submit(demo_job.body()).id, quiet=True)
            labels = earlier.result.labels if earlier.result else {}
            said = ", ".join(f"{n} {label}" for label, n in labels.items()) or "no labels"
            click.echo(
                f"  job {earlier.id} {demo_job.branch} at {demo_job.sha}: {earlier.state} ({said})"
            )
        click.secho("\nSubmitting four preview deploys through POST /api/jobs", bold=True)
        submitted = []
        for demo_job in DEMO_JOBS:
            job = api.submit(demo_job.body())
            where = f"{job.provider} {job.external_id}"
            click.echo(f"  job {job.id} {demo_job.branch:<13} -> {where}")
            submitted.append(job.id)
        click.echo("  waiting for the signed callbacks (QualityMax) and the polls (the others) ...")
        jobs = [_wait(api, job_id) for job_id in submitted]
    _forged(url)
    return jobs


def _wait(api: ApiClient, job_id: int, *, quiet: bool = False) -> JobView:
    failure = f"job {job_id} got no result within {WAIT_SECONDS:.0f}s"
    job = _until(lambda: _with_result(api.job(job_id)), failure, every=0.1)
    if not quiet:
        how = "callback taken" if job.provider == "qualitymax" else "polled to its end"
        click.echo(f"  job {job_id}: {how}, state {job.state}")
    return job


def _until(check: Callable[[], Found | None], failure: str, *, every: float) -> Found:
    """What ``check`` finds, asked every ``every`` seconds; DemoFailed(``failure``) when it
    has found nothing within WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while (found := check()) is None:
        if time.monotonic() > deadline:
            raise DemoFailed(failure)
        time.sleep(every)
    return found


def _with_result(job: JobView) -> JobView | None:
    return job if job.result is not None else None


def _forged(url: str) -> None:
    body = b'{"event": "test_results", "results": {"status": "passed"}}'
    forged = sign(body, "not-the-secret")
    answer = httpx.post(
        f"{url}/callbacks/qualitymax", content=body, headers={"X-QualityMax-Signature": forged}
    )
    click.echo(
        f"  a callback with a forged signature -> {answer.status_code} (refused, not stored)"
    )


def _show(job: JobView, targets: StandIns) -> None:
    status = job.result.status if job.result else job.state
    click.secho(f"\n━━ job {job.id}: {status} " + "━" * 50, bold=True)
    click.secho("Chat message, as the json:// webhook received it (as Markdown):", fg="cyan")
    click.echo(_indent(targets.chat_message(job)))
    pr = f"{DEMO_REPOSITORY}#{job.custom_data.get('pr_number')}"
    click.secho(f"Pull-request comment on {pr}, as GitHub holds it (Markdown):", fg="cyan")
    click.echo(_indent(targets.pr_comment(job)))
    click.secho("Commit status, as GitHub received it:", fg="cyan")
    click.echo(_indent(targets.commit_statuses(job)))


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.splitlines())


def _exercise_matrix(url: str, token: str) -> list[JobView]:
    """Three browsers of one pull request, one after the other, as a CI matrix finishes."""
    with ApiClient(url, token) as api:
        click.secho(f"\nA matrix: PR #{MATRIX_PR} on {len(MATRIX)} browsers", bold=True)
        jobs = []
        for job in matrix_jobs():
            job_id = _wait(api, api.submit(job.body()).id).id
            failure = "the matrix's Slack and GitHub deliveries did not arrive"
            # Asked before the loop goes on: the job id is this turn's.
            delivered = _until(lambda: _delivered(api.job(job_id)), failure, every=0.05)  # noqa: B023
            jobs.append(delivered)
        return jobs


def _delivered(job: JobView) -> JobView | None:
    """The job once each of its deliveries was tried."""
    found = job.result.deliveries if job.result else []
    return job if found and all(d.state != "pending" for d in found) else None


def _silent(url: str, token: str) -> dict[str, Any]:
    """A nightly run on main that no route takes, and why."""
    nightly = {
        **_preview(46),
        "custom_data": {"branch": "main", "simulate": "passed"},
    }
    with ApiClient(url, token) as api:
        click.secho("\nA nightly run on main (no pull request, no deploy)", bold=True)
        job = _wait(api, api.submit(nightly).id)
    answer = httpx.get(
        f"{url}/api/results/{job.result_id}/explain",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    answer.raise_for_status()
    explained: dict[str, Any] = answer.json()
    return explained


def _show_matrix(jobs: list[JobView], targets: StandIns) -> None:
    click.secho(f"\n━━ matrix: PR #{MATRIX_PR} on {len(jobs)} browsers " + "━" * 40, bold=True)
    messages = targets.slack.top_level()
    edits = sum(m.edits for m in messages)
    calls = targets.slack.calls
    click.secho(
        f"Slack #previews, as the Web API stand-in holds it: {len(messages)} message, edited "
        f"{edits} time(s); {len(calls)} API calls for {len(jobs)} results:",
        fg="cyan",
    )
    for call in calls:
        where = " (threaded reply)" if call.args.get("thread_ts") else ""
        click.echo(f"    {call.method}{where} -> {'ok' if call.ok else call.error}")
    for message in messages:
        click.echo("")
        for block in message.blocks:
            text = block.get("text", {}).get("text") or " ".join(
                e.get("text", "") for e in block.get("elements", [])
            )
            click.echo(_indent(text))
        for reply in targets.slack.replies(message):
            click.echo(_indent(f"  ↳ {reply.text}"))
    pr = f"{DEMO_REPOSITORY}#{MATRIX_PR}"
    click.secho(f"Pull-request comment on {pr}, a row per job (Markdown):", fg="cyan")
    click.echo(_indent(targets.pr_comment(jobs[-1])))  # the newest result's rendering
    click.secho("Commit status (one per provider: the worst of its jobs):", fg="cyan")
    for status in targets._statuses(jobs[0])[-1:]:
        click.echo(_indent(f"{status['state']:<8} {status['context']}: {status['description']}"))


def _show_explain(explained: dict[str, Any]) -> None:
    result_id = explained["result"]["id"]
    heading = f"\n━━ receiver explain {result_id}: why the nightly run stayed silent "
    click.secho(heading + "━" * 16, bold=True)
    click.echo(_indent("\n".join(lines(msgspec.convert(explained, Explanation)))))
