"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against
one real ``receiver serve`` on loopback (both shared by this module's tests, to keep the suite
fast: every browser test is here). Each test saves a screenshot of the pages it visits
(``RECEIVER_SCREENSHOTS``: a folder to copy them to, such as docs/screenshots)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from receiver.process import ServiceProcess
from receiver.simulator.standin import StandIn
from tests.conftest import SECRET, callback_body, signed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-token"
PHONE: ViewportSize = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (no browser can be downloaded here), for this module's tests.

    Not pytest-playwright's session-wide browser: Playwright's sync API keeps an event loop
    running in the main thread while it is open, and the tests after these call asyncio.run().
    """
    if not Path(CHROMIUM).exists():
        # A newcomer's machine may have only Python: the other tests still say something there.
        # .ci/run installs chromium first (and stops if it cannot), so CI always runs these.
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium to run the browser tests")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def png(width: int = 64, height: int = 40) -> bytes:
    """A small red PNG: the screenshot a provider would link to."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Files:
    """A static web server on loopback: the providers' screenshots, and another site's page."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


FAILING_TEST = "Dashboard shows the task sections"
ERROR = "Expected 4 task sections, found 3"


def failing_tests(files: Files) -> list[dict[str, Any]]:
    return [
        {"test": "Login works", "status": "passed", "duration_ms": 2100},
        {
            "test": FAILING_TEST,
            "status": "failed",
            "duration_ms": 3000,
            "error": ERROR,
            "screenshot_url": files.url("shot.png"),
        },
        {"test": "Sign out works", "status": "passed", "duration_ms": 900},
    ]


class Dashboard:
    """The served service and what the tests post to it."""

    def __init__(self, service: ServiceProcess, files: Files, shots: Path) -> None:
        self.service = service
        self.files = files
        self.shots = shots
        self.url = service.url
        self.api = httpx.Client(
            base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    def post_result(self, **custom: Any) -> int:
        """A signed failed callback: 1 of 3 tests failed, with its screenshot; the result id."""
        document = json.loads(callback_body())
        document["custom_data"] = {
            "branch": "feat/login",
            "repository": "acme/shop",
            "pr_number": 42,
            "sha": "4b1e7c0a52d1",
            **custom,
        }
        document["results"].update(
            status="failed", total_tests=3, passed=2, failed=1, tests=failing_tests(self.files)
        )
        body = json.dumps(document).encode()
        answer = self.api.post("/callbacks/qualitymax", content=body, headers=signed(body, SECRET))
        assert answer.status_code == 200, answer.text
        result_id: int = answer.json()["result_id"]
        return result_id

    def dead_delivery(self, result_id: int) -> int:
        """The result's delivery, once it is dead (the target never answers, one attempt)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = self.api.get(f"/api/results/{result_id}").json()["deliveries"]
            if found and found[0]["state"] == "dead":
                delivery_id: int = found[0]["id"]
                return delivery_id
            time.sleep(0.1)
        raise AssertionError(f"result {result_id}'s delivery did not go dead")

    def shoot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        if wanted := os.environ.get("RECEIVER_SCREENSHOTS"):
            Path(wanted).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.shots / f"{name}.png", Path(wanted) / f"{name}.png")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    folder = tmp_path_factory.mktemp("dashboard")
    (folder / "files").mkdir()
    (folder / "files" / "shot.png").write_bytes(png())
    (folder / "shots").mkdir()
    files = Files(folder / "files")
    hanging = StandIn(lambda request: None)  # takes the request, never answers
    config = folder / "receiver.toml"
    config.write_text(
        "[delivery]\nmax_attempts = 1\ntimeout_seconds = 3\n\n"
        f'[[routes]]\nname = "team-chat"\nnotify = ["json://127.0.0.1:{hanging.port}/hook"]\n'
    )
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": TOKEN,
        "RECEIVER_DB": str(folder / "receiver.db"),
    }
    service = ServiceProcess(config, env, folder / "serve.log").start()
    served = Dashboard(service, files, folder / "shots")
    yield served
    served.api.close()
    service.kill()
    hanging.close()
    files.close()


def sign_in(page: Page, dashboard: Dashboard, token: str = TOKEN) -> None:
    page.goto(f"{dashboard.url}/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def signed_in(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, dashboard)
    expect(page).to_have_url(f"{dashboard.url}/")
    yield page
    context.close()


def test_a_wrong_token_is_refused_and_the_right_one_signs_in(
    browser: Browser, dashboard: Dashboard
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{dashboard.url}/deliveries")
    expect(page).to_have_url(f"{dashboard.url}/login?next=%2Fdeliveries")
    dashboard.shoot(page, "login")
    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong token")
    assert not [c for c in context.cookies() if c["name"] == "receiver_session"]
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{dashboard.url}/deliveries")  # back where it was headed
    session = next(c for c in context.cookies() if c["name"] == "receiver_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    context.close()


def test_a_failed_callback_appears_live_and_opens_with_its_error_and_screenshot(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    expect(page.get_by_text("Live: new results appear at the top")).to_be_visible()
    page.wait_for_timeout(300)  # the event stream is open
    before = page.locator("#rows tr").count()
    result_id = dashboard.post_result(deploy_id="live-1")
    row = page.locator(f"#result-{result_id}")
    expect(row).to_be_visible(timeout=10_000)  # no reload
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("1 of 3 tests failed")
    assert page.locator("#rows tr").first.get_attribute("id") == f"result-{result_id}"
    assert page.locator("#rows tr").count() == before + 1
    dashboard.shoot(page, "results")

    row.get_by_role("link", name="1 of 3 tests failed").click()
    expect(page).to_have_url(f"{dashboard.url}/results/{result_id}")
    failing = page.locator("tr.test", has_text=FAILING_TEST)
    expect(failing).to_contain_text(ERROR)
    image = failing.get_by_role("img")
    expect(image).to_be_visible()
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    assert image.evaluate("img => img.naturalWidth") == 64  # the screenshot really loaded
    expect(page.locator("details.raw")).not_to_have_attribute("open", "")
    dashboard.shoot(page, "result")


def test_a_dead_delivery_retried_from_the_page_is_pending_again(
    signed_in: Page, dashboard: Dashboard
) -> None:
    page = signed_in
    result_id = dashboard.post_result(deploy_id="retry-1")
    delivery_id = dashboard.dead_delivery(result_id)
    page.goto(f"{dashboard.url}/deliveries")
    expect(page.get_by_role("button", name="dead").first).to_be_visible()
    dashboard.shoot(page, "deliveries")
    page.goto(f"{dashboard.url}/results/{result_id}")
    row = page.locator(f"#delivery-{delivery_id}")
    expect(row).to_contain_text("dead")
    row.get_by_role("button", name=f"Retry delivery {delivery_id}").click()
    expect(page).to_have_url(f"{dashboard.url}/results/{result_id}")
    expect(page.locator(f"#delivery-{delivery_id}")).to_contain_text("pending")
    answer = dashboard.api.get(f"/api/results/{result_id}").json()
    assert answer["deliveries"][0]["state"] in ("pending", "dead")  # it may have failed again


def test_filtering_by_branch_narrows_the_list(signed_in: Page, dashboard: Dashboard) -> None:
    page = signed_in
    dashboard.post_result(branch="feat/narrow", deploy_id="narrow-1")
    dashboard.post_result(branch="feat/other", deploy_id="other-1")
    page.reload()
    expect(page.locator("#rows tr", has_text="feat/other").first).to_be_visible()
    page.get_by_label("Branch").fill("feat/narrow")
    page.get_by_label("Branch").press("Enter")
    expect(page).to_have_url(f"{dashboard.url}/?branch=feat%2Fnarrow")
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("feat/narrow")


def test_at_375_px_no_page_scrolls_sideways(browser: Browser, dashboard: Dashboard) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page, dashboard)
    result_id = dashboard.post_result(deploy_id="phone-1", branch="feat/a-very-long-branch-name")
    job = dashboard.api.get(f"/api/results/{result_id}").json()["job_id"]
    test_link = None
    for path in ["/", f"/results/{result_id}", "/jobs", f"/jobs/{job}", "/deliveries"]:
        page.goto(f"{dashboard.url}{path}")
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} scrolls sideways at 375 px: {width}"
        if path.startswith("/results/"):
            test_link = page.locator("a[href^='/tests/']").first.get_attribute("href")
    for path in ["/history?branch=feat/login", str(test_link)]:
        page.goto(f"{dashboard.url}{path}")
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} scrolls sideways at 375 px: {width}"
    page.goto(f"{dashboard.url}/")
    dashboard.shoot(page, "results-phone")
    context.close()


def test_every_page_renders_and_is_kept(signed_in: Page, dashboard: Dashboard) -> None:
    """Jobs, a job, history and a test's page, keyboard-reachable (the screenshots of the
    README are these)."""
    page = signed_in
    result_id = dashboard.post_result(deploy_id="pages-1")
    job = dashboard.api.get(f"/api/results/{result_id}").json()["job_id"]
    page.goto(f"{dashboard.url}/jobs")
    expect(page.locator(f"a[href='/jobs/{job}']")).to_be_visible()
    dashboard.shoot(page, "jobs")
    page.goto(f"{dashboard.url}/jobs/{job}")
    expect(page.get_by_text("submitted", exact=True)).to_be_visible()
    dashboard.shoot(page, "job")
    page.goto(f"{dashboard.url}/history?branch=feat/login")
    expect(page.get_by_role("img", name="Pass rate per day")).to_be_visible()
    dashboard.shoot(page, "history")
    page.goto(f"{dashboard.url}/results/{result_id}")
    page.get_by_role("link", name=FAILING_TEST, exact=True).click()
    expect(page.get_by_role("heading", name=FAILING_TEST)).to_be_visible()
    expect(page.locator("table.errors")).to_contain_text(ERROR)
    dashboard.shoot(page, "test")
    page.goto(f"{dashboard.url}/")
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.locator(":focus")).to_have_text("Skip to content")


def test_a_cross_site_post_is_refused(signed_in: Page, dashboard: Dashboard) -> None:
    """Another site's page that posts to the dashboard in the signed-in browser gets 403, and
    the delivery stays dead."""
    page = signed_in
    result_id = dashboard.post_result(deploy_id="csrf-1")
    delivery_id = dashboard.dead_delivery(result_id)
    evil = dashboard.files.folder / "evil.html"
    evil.write_text(
        f'<form id="f" method="post" action="{dashboard.url}/deliveries/{delivery_id}/retry">'
        '<input name="next" value="/"></form><script>document.getElementById("f").submit()'
        "</script>"
    )
    with page.expect_response(f"{dashboard.url}/deliveries/{delivery_id}/retry") as posted:
        page.goto(dashboard.files.url("evil.html", host="localhost"))  # another site
    assert posted.value.status == 403
    state = dashboard.api.get(f"/api/results/{result_id}").json()["deliveries"][0]["state"]
    assert state == "dead"


def test_sign_out_ends_the_session(browser: Browser, dashboard: Dashboard) -> None:
    context: BrowserContext = browser.new_context()
    page = context.new_page()
    sign_in(page, dashboard)
    expect(page).to_have_url(f"{dashboard.url}/")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{dashboard.url}/login")
    page.goto(f"{dashboard.url}/jobs")
    expect(page).to_have_url(f"{dashboard.url}/login?next=%2Fjobs")
    context.close()
