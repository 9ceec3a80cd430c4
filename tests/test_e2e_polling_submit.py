"""Issue 7's "done when", as a user runs it: ``receiver submit --provider qualigate|qualgent
--wait`` against a real ``receiver serve`` polling the simulators ends with a routed chat
notification and one sticky PR comment with the per-test table (links included), across a
restart of the service, and the simulators count no request over their rate limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from receiver.process import ServiceProcess
from receiver.simulator import qualgent as gent_sim
from receiver.simulator import qualigate as gate_sim
from receiver.simulator.common import Served
from tests.conftest import TOKEN
from tests.sims import POLLING_KEYS, polling_config, qualgent_sim, qualigate_sim, stats
from tests.sinks import GITHUB_TOKEN, FakeGithub, HttpSink

__all__ = ["qualgent_sim", "qualigate_sim"]

REPO = "acme/shop"


def pr(number: int) -> str:
    return json.dumps(
        {"repository": REPO, "pr_number": number, "sha": f"{number:040x}", "branch": "feat/x"}
    )


@pytest.fixture
def polling_service(
    tmp_path: Path,
    write_config: Callable[[str], Path],
    env: dict[str, str],
    qualigate_sim: Served,
    qualgent_sim: Served,
    sink: HttpSink,
    github: FakeGithub,
) -> Iterator[ServiceProcess]:
    routes = (
        "[delivery]\nbackoff = [0.1]\n"
        f'[[routes]]\nname = "team"\nnotify = ["{sink.url("/chat")}", "github://pr-comment"]\n'
    )
    config = write_config(polling_config(qualigate_sim, qualgent_sim, gate_poll=0.5) + routes)
    keys = {**POLLING_KEYS, "GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": github.url}
    process = ServiceProcess(config, {**env, **keys}, tmp_path / "serve.log").start()
    yield process
    process.kill()


def submit(service: ServiceProcess, *args: str) -> subprocess.Popen[str]:
    """The real command in a child process, as a CI job runs it."""
    env = {**os.environ, "RECEIVER_PUBLIC_URL": service.url, "RECEIVER_API_TOKEN": TOKEN}
    command = [sys.executable, "-m", "receiver", "submit", *args, "--wait", "--interval", "0.1"]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def comment_of(github: FakeGithub, number: int) -> str:
    comments = github.markers(REPO, number)
    assert len(comments) == 1, comments
    return comments[0].body


def test_qualigate_suite_and_qualgent_job_end_in_notifications_and_pr_comments(
    polling_service: ServiceProcess,
    qualigate_sim: Served,
    qualgent_sim: Served,
    sink: HttpSink,
    github: FakeGithub,
) -> None:
    suite = submit(
        polling_service,
        *("--provider", "qualigate", "--suite", gate_sim.MIXED_SUITE),
        *("--browser", "chromium", "--viewport", "desktop", "--custom-data", pr(41)),
    )
    mobile = submit(
        polling_service,
        *("--provider", "qualgent", "--test-case", "tc_pass", "--app", "latest"),
        *("--device", "Pixel 7", "--platform", "Android", "--os-version", "14"),
        *("--custom-data", pr(42)),
    )
    for waiting in (suite, mobile):  # both submitted: only --wait's polling meets the restart
        assert waiting.stderr is not None
        assert waiting.stderr.readline().startswith("job ")
    polling_service.stop()  # a redeploy while both are polled: the new process resumes them
    polling_service.start()

    out, err = suite.communicate(timeout=90)
    assert suite.returncode == 1, err + polling_service.tail(40)
    assert out.startswith("❌ failed: 1 of 2 tests failed")
    assert "✗ Checkout Process: Element not found" in out
    out, err = mobile.communicate(timeout=90)
    assert mobile.returncode == 0, err + polling_service.tail(40)
    assert out.startswith("✅ passed: 1 of 1 tests passed")

    sink.wait_for(lambda: len(sink.delivered("/chat")) == 2)
    titles = sorted(r.json()["title"] for r in sink.delivered("/chat"))
    assert titles == ["✅ 1 of 1 tests passed · feat/x", "❌ 1 of 2 tests failed: 1 new · feat/x"]
    sink.wait_for(lambda: len(github.markers(REPO, 41)) == len(github.markers(REPO, 42)) == 1)
    web = comment_of(github, 41)
    assert "| ❌ | Checkout Process |" in web
    assert f"[run]({gate_sim.LINK}" in web  # the per-test link polled from Qualigate
    app = comment_of(github, 42)
    assert "| ✅ | Login Flow Test · Pixel 7 · Android 14 |" in app  # where it ran
    assert f"[run]({gent_sim.LINK}" in app

    log = (polling_service.log_file).read_text()
    second_run = log.split('"poll.started"')[2]  # the suite needs 1.5 s of polls: it ends here
    assert '"poll.result"' in second_run

    for served in (qualigate_sim, qualgent_sim):
        counters = stats(served)
        assert counters["limited"] == 0, counters


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--provider", "qualigate"], "needs exactly one of --test-case ID, --suite ID"),
        (["--provider", "qualigate", "--suite", "s", "--app", "latest"], "--app is for"),
        (["--provider", "qualgent", "--test-case", "t"], "--provider qualgent needs --app"),
        (["--provider", "qualgent", "--run-all", "--test-case", "t"], "--test-case ID or --run"),
        (["--suite", "s"], "--suite is for --provider qualigate, not qualitymax"),
        (["--feature", "x"], "--provider qualitymax needs --url URL and --feature TEXT"),
        (["--provider", "qualigate", "--test-case", "t", "--viewport", "big"], "--viewport"),
    ],
)
def test_submit_options_that_do_not_fit_the_provider_are_one_error_line(
    args: list[str], error: str
) -> None:
    env = {**os.environ, "RECEIVER_PUBLIC_URL": "http://127.0.0.1:9", "RECEIVER_API_TOKEN": "t"}
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "submit", *args],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and error in done.stderr, done.stderr
