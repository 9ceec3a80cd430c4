"""``receiver demo``: the README's first command shows the whole loop and exits 0, printing what
the notification targets really received through the delivery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx


def test_the_demo_runs_from_any_folder_and_shows_what_people_receive(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECEIVER_", "QUALITYMAX_", "GITHUB_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    jobs, matrix, silent = (
        done.stdout.split("━━ matrix: ")[0],
        *done.stdout.split("━━ matrix: ")[1].split("━━ receiver explain "),
    )
    passed, failed, suite, mobile = jobs.split("━━ job ")[1:]
    # The chat webhook's JSON (Apprise json://): the title, then the Markdown body.
    assert "\n    ✅ 3 of 3 tests passed · main · deploy abc-122\n" in passed
    # Its history (a failure, then a pass on the same commit) makes triage label the failing
    # job's two failures: the dashboard's is new, logout's flaky.
    assert "job 1 feat/login at 4b1e7c0a52: failed (1 new)" in done.stdout
    assert "job 2 feat/login at 4b1e7c0a52: passed (1 fixed)" in done.stdout
    assert "\n    ❌ 2 of 3 tests failed: 1 new, 1 flaky · feat/login · deploy abc-123\n" in failed
    assert "- _new_ · **Dashboard shows the task sections** (3.0s): Expected 4 task" in failed
    assert "- _flaky_ · **Logout returns to the sign-in page** (3.9s): Expected the sign" in failed
    assert "    #### New (1)\n\n    - **Dashboard shows the task sections** (3.0s)" in failed
    assert "    #### Flaky (1)\n\n    - **Logout returns to the sign-in page** (3.9s)" in failed
    assert "      _flaky: failed 2 of its last " in failed
    assert " runs, 1 time on a commit where it also passed_" in failed
    # The sticky comment as the GitHub stand-in holds it, one per pull request.
    assert "on acme/shop#41, as GitHub holds it" in passed
    assert "on acme/shop#42, as GitHub holds it" in failed
    for shown in (passed, failed, suite, mobile):
        assert "    <!-- receiver:pr-comment -->" in shown
        assert "(none arrived)" not in shown
    assert "| ❌ | Dashboard shows the task sections | 3.0s | [screenshot](" in failed
    # The commit statuses GitHub received.
    assert "    success  receiver/qualitymax: 3/3 passed  http://127.0.0.1:" in passed
    assert "    failure  receiver/qualitymax: 1/3 passed, 1 flaky  http://127.0.0.1:" in failed
    # Qualigate and QualGent: triggered, polled from their simulators, routed the same way,
    # their per-test links in the table.
    assert "\n    ❌ 1 of 2 tests failed: 1 new · feat/checkout · deploy abc-124\n" in suite
    assert "| ❌ | Checkout Process | 45.0s | [run](https://qualigate.app/test-runs/" in suite
    # No report link of its own: the commit status points at the result's page.
    assert "    failure  receiver/qualigate: 1/2 passed  http://127.0.0.1:" in suite
    assert "[Open in receiver](http://127.0.0.1:" in failed
    where = "Login Flow Test · Pixel 7 · Android 14"  # where it ran
    assert f"| ✅ | {where} | – | [run](https://app.qualgent.ai/test-runs/" in mobile
    assert "    success  receiver/qualgent: 1/1 passed  https://app.qualgent.ai/" in mobile
    assert "forged signature -> 401" in done.stdout
    # The matrix: three browsers of PR 45, one Slack message edited as their results arrived
    # (through the Slack Web API stand-in), one PR comment with a row each, one status.
    assert (
        "Slack #previews, as the Web API stand-in holds it: 1 message, edited 2 time(s)" in matrix
    )
    assert (
        "    chat.postMessage -> ok\n    chat.update -> ok\n"
        "    chat.postMessage (threaded reply) -> ok\n    chat.update -> ok\n"
    ) in matrix
    assert "      ↳ ✅ → ❌ 1 of 2 jobs failed · PR #45 · feat/search" in matrix
    assert "    ❌ 1 of 3 jobs failed · PR #45 · feat/search\n" in matrix
    for browser in ("chromium", "firefox", "webkit"):
        assert f"*qualitymax · {browser}* —" in matrix
        assert f"| qualitymax · {browser} |" in matrix
    assert "    failure  receiver/qualitymax: 1 of 3 jobs failed: firefox\n" in matrix
    # explain of the nightly run that no route took
    assert "    Silent: none of the 3 route(s) matched\n" in silent
    assert '      team-chat: did not match: when.has wants "deploy_id", the result has' in silent
    assert "\nDashboard: http://127.0.0.1:" in done.stdout
    assert "sign in with the demo's API token: " in done.stdout
    assert list(tmp_path.iterdir()) == []  # the throwaway database went with its folder


def test_the_demo_with_keep_serves_its_dashboard_until_ctrl_c(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECEIVER_", "QUALITYMAX_", "GITHUB_"))
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "receiver", "demo", "--keep"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "serving until Ctrl-C" in line:
                break
        url = next(x for x in lines if x.startswith("Dashboard: ")).split()[1]
        token = next(x for x in lines if "API token: " in x).split()[-1]
        with httpx.Client(base_url=url, follow_redirects=True) as client:
            assert client.get("/").url.path == "/login"  # serving, signed out
            client.get("/login")
            signed_in = client.post(
                "/login",
                data={"token": token, "_csrf_token": client.cookies["receiver_csrf"]},
            )
            assert signed_in.status_code == 200
            # the pull request's two earlier runs, the four jobs, the three browsers of the
            # matrix, the nightly run no route takes
            assert signed_in.text.count('<tr id="result-') == 10
        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    assert list(tmp_path.iterdir()) == []
