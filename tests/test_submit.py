"""``receiver submit``: through the running service, gating on the verdict (exit 0/1/2)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from receiver.cli import main
from receiver.process import ServiceProcess, free_port
from receiver.submit import Progress, SubmitError, Target, body_for
from tests.conftest import TOKEN

ARGS = ["--url", "https://preview-42.example.com", "--feature", "Users can log in"]
CLEAN_ENV: dict[str, str | None] = {"RECEIVER_PUBLIC_URL": None, "RECEIVER_API_TOKEN": None}


def run_submit(service: ServiceProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, as a CI job runs it (stdout is not a TTY)."""
    env = {**os.environ, "RECEIVER_PUBLIC_URL": service.url, "RECEIVER_API_TOKEN": TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "receiver", "submit", *ARGS, *args, "--interval", "0.1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_wait_exits_0_when_the_tests_pass(linked_service: ServiceProcess) -> None:
    done = run_submit(linked_service, "--custom-data", '{"branch": "main"}', "--wait")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("✅ passed: 3 of 3 tests passed · job 1 (pwj_")
    assert "waiting" in done.stderr  # plain progress lines, not a TTY


def test_wait_exits_1_and_names_the_failing_test(linked_service: ServiceProcess) -> None:
    done = run_submit(
        linked_service, "--custom-data", '{"simulate": "failed", "pr_number": 42}', "--wait"
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("❌ failed: 1 of 3 tests failed")
    assert lines[1].startswith("  ✗ Dashboard shows the task sections: Expected 4 task sections")
    assert any(line.startswith("  report: http://127.0.0.1:") for line in lines)


def test_wait_exits_1_on_an_error_result(linked_service: ServiceProcess) -> None:
    done = run_submit(linked_service, "--custom-data", '{"simulate": "error"}', "--wait")
    assert done.returncode == 1
    assert done.stdout.startswith("❌ error:")
    assert "Crawl failed" in done.stdout


def test_wait_exits_2_on_timeout(linked_service: ServiceProcess) -> None:
    done = run_submit(
        linked_service, "--custom-data", '{"simulate_delay": 60}', "--wait", "--timeout", "0.3"
    )
    assert done.returncode == 2
    assert "Timed out after 0s waiting for job 1" in done.stderr


def test_json_without_wait_prints_the_submitted_job(linked_service: ServiceProcess) -> None:
    done = run_submit(linked_service, "--json")
    assert done.returncode == 0
    job = json.loads(done.stdout)
    assert job["state"] == "submitted" and job["external_id"].startswith("pwj_")
    assert job["callback_url"].startswith(f"{linked_service.url}/callbacks/qualitymax/")


def test_json_with_wait_prints_the_job_with_its_result(linked_service: ServiceProcess) -> None:
    done = run_submit(linked_service, "--json", "--wait")
    assert done.returncode == 0
    job = json.loads(done.stdout)
    assert job["state"] == "passed" and job["result"]["total"] == 3


def test_a_refused_job_is_one_error_line(linked_service: ServiceProcess) -> None:
    done = run_submit(linked_service, "--custom-data", '{"k": "' + "x" * 5000 + '"}')
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: POST /api/jobs answered 400: custom_data: is 5008 bytes serialised; "
        "the limit is 4096"
    ]


# -- bad input: one line saying what to set ------------------------------------------------------


def invoke(*args: str, **env: str | None) -> Any:
    return CliRunner().invoke(main, ["submit", *ARGS, *args], env={**CLEAN_ENV, **env})


def test_custom_data_that_is_not_json() -> None:
    result = invoke(
        "--custom-data", "{branch: main}", RECEIVER_API_TOKEN="t", RECEIVER_PUBLIC_URL="http://x"
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: --custom-data is not JSON (Expecting property name")
    assert result.output.count("\n") == 1


def test_custom_data_that_is_not_an_object() -> None:
    result = invoke("--custom-data", "[1]", RECEIVER_API_TOKEN="t", RECEIVER_PUBLIC_URL="http://x")
    assert result.output.startswith("Error: --custom-data must be a JSON object")


def test_no_server() -> None:
    result = invoke(RECEIVER_API_TOKEN="t")
    assert result.exit_code == 1
    assert result.output == (
        "Error: No receiver to submit through: pass --server URL or set RECEIVER_PUBLIC_URL\n"
    )


def test_no_token() -> None:
    result = invoke("--server", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert result.output.startswith("Error: RECEIVER_API_TOKEN is not set")


def test_no_server_reachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke("--server", url, RECEIVER_API_TOKEN="t")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: No receiver answers at {url}")
    assert "start `receiver serve` there" in result.output
    assert result.output.count("\n") == 1


def test_wrong_token(linked_service: ServiceProcess) -> None:
    result = invoke("--server", linked_service.url, RECEIVER_API_TOKEN="wrong")
    assert result.exit_code == 1
    assert result.output.startswith("Error: POST /api/jobs answered 401: Missing or wrong bearer")


# -- progress ------------------------------------------------------------------------------------


def test_progress_in_a_ci_log_is_a_line_per_change() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=False)
    for elapsed, state in [(0, "submitted"), (1, "submitted"), (2, "submitted"), (3, "failed")]:
        progress.update(elapsed, state)
    progress.done()
    assert out.getvalue() == "waiting 0s: submitted\nwaiting 3s: failed\n"


def test_progress_shows_how_far_a_running_job_got() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=False)
    progress.update(0, "pending", 0.0)
    progress.update(4, "running", 45.0)
    progress.update(9, "passed", 100.0)  # a verdict shows no percentage
    assert out.getvalue() == "waiting 0s: pending 0%\nwaiting 4s: running 45%\nwaiting 9s: passed\n"


@pytest.mark.parametrize(
    ("options", "body"),
    [
        (
            {"kind": "sast", "repository_id": 42, "engines": "semgrep, bandit"},
            {"kind": "sast", "repository_id": 42, "engines": ["semgrep", "bandit"]},
        ),
        (
            {"kind": "gap_analysis", "repository_id": 42, "categories": "e2e", "max_tests": 3},
            {"kind": "gap_analysis", "repository_id": 42, "categories": ["e2e"],
             "max_tests_per_category": 3},
        ),
    ],
)  # fmt: skip
def test_submit_builds_sast_and_gap_analysis_bodies(
    options: dict[str, Any], body: dict[str, Any]
) -> None:
    assert body_for("qualitymax", Target(**options), {}) == {**body, "custom_data": {}}


def test_several_qualgent_test_cases_are_one_run_of_jobs() -> None:
    target = Target(
        test_case=("tc_a", "tc_b", "tc_c"), app="latest", device="Pixel 8", platform="android",
        os_version="14", orientation="landscape",
    )  # fmt: skip
    built = body_for("qualgent", target, {})
    device = {"name": "Pixel 8", "platform": "android", "os_version": "14",
              "orientation": "landscape"}  # fmt: skip
    assert built["jobs"] == [
        {"test_case_id": case, "app_file_id": "latest", "device": device}
        for case in ("tc_a", "tc_b", "tc_c")
    ]
    with pytest.raises(SubmitError, match="--kind sast needs --repository-id"):
        body_for("qualitymax", Target(kind="sast"), {})
    with pytest.raises(SubmitError, match="--repository-id is for --provider qualitymax"):
        body_for("qualgent", Target(repository_id=4, test_case=("tc",), platform="ios"), {})


def test_progress_on_a_terminal_is_rewritten_in_place() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    progress.update(1, "submitted")
    progress.update(2, "passed")
    progress.done()
    assert out.getvalue().count("\r") == 2 and out.getvalue().endswith("\n")
    assert "\n" not in out.getvalue()[:-1]


@pytest.mark.parametrize("state", ["passed", "failed", "error", "timeout", "canceled"])
def test_every_verdict_ends_the_wait(state: str) -> None:
    from receiver.submit import exit_code, is_verdict
    from receiver.views import JobView

    job = JobView(
        id=1,
        provider="qualitymax",
        job_key=None,
        external_id=None,
        state=state,
        url=None,
        callback_url=None,
        custom_data={},
        error=None,
        result_id=None,
        created_at="",
        updated_at="",
    )
    assert is_verdict(job)
    assert exit_code(job) == (0 if state == "passed" else 1)


def test_a_receiver_restart_during_wait_does_not_fail_the_job(
    linked_service: ServiceProcess,
) -> None:
    env = {**os.environ, "RECEIVER_PUBLIC_URL": linked_service.url, "RECEIVER_API_TOKEN": TOKEN}
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "receiver",
            "submit",
            *ARGS,
            "--wait",
            "--interval",
            "0.1",
            "--custom-data",
            '{"simulate_delay": 3}',
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stderr is not None
    assert waiting.stderr.readline().startswith("job 1 submitted")
    linked_service.stop()  # a redeploy: the service is gone for a moment, then back
    linked_service.start()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert out.startswith("✅ passed")
    assert "service unreachable, retrying" in err


# -- each provider's body from the command's options ------------------------------------------


def test_qualigate_options_make_a_trigger_request() -> None:
    target = Target(suite="s-1", browser="firefox", viewport="1280x720")
    assert body_for("qualigate", target, {"pr_number": 7}) == {
        "provider": "qualigate",
        "test_suite_id": "s-1",
        "browserType": "firefox",
        "viewportWidth": 1280,
        "viewportHeight": 720,
        "custom_data": {"pr_number": 7},
    }


def test_qualgent_options_make_a_run_request() -> None:
    device = Target(test_case=("tc",), app="latest", device="Pixel 8", platform="android")
    with pytest.raises(SubmitError, match="--device NAME needs --platform P and --os-version V"):
        body_for("qualgent", device, {})
    run_all = Target(run_all=True, category="cat", app="a1", platform="ios")
    assert body_for("qualgent", run_all, {}) == {
        "provider": "qualgent",
        "run_all": True,
        "category_id": "cat",
        "app_file_id": "a1",
        "platform": "ios",
        "custom_data": {},
    }


def test_qualitymax_options_keep_the_webhook_body() -> None:
    target = Target(url="https://e.com", feature="f", browser="webkit")
    assert body_for("qualitymax", target, {}) == {
        "url": "https://e.com",
        "feature_description": "f",
        "custom_data": {},
        "options": {"browser": "webkit"},
    }
