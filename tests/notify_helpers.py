"""Fixtures and a harness for the notification tests: a real store, real routes, the real worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from receiver import views
from receiver.config import Config, load_config
from receiver.notify.worker import DeliveryWorker
from receiver.record import Recorder
from receiver.results import Failure, Result, TestCase
from receiver.routing import Router
from receiver.store import open_store
from tests.conftest import SECRET, TOKEN
from tests.sinks import GITHUB_TOKEN, SLACK_TOKEN

FAST_DELIVERY = """
[delivery]
max_attempts = {max_attempts}
backoff = [0.05, 0.1]
timeout_seconds = {timeout}
"""


def route(name: str, *targets: str, when: str = "{}", extra: str = "") -> str:
    notify = ", ".join(f'"{t}"' for t in targets)
    return f'\n[[routes]]\nname = "{name}"\nwhen = {when}\nnotify = [{notify}]\n{extra}\n'


def make_config(
    tmp_path: Path,
    routes: str,
    *,
    max_attempts: int = 3,
    timeout: float = 1,
    github_url: str | None = None,
    slack_url: str | None = None,
    extra: str = "",
) -> Config:
    path = tmp_path / "notify.toml"
    text = FAST_DELIVERY.format(max_attempts=max_attempts, timeout=timeout) + extra + routes
    path.write_text(text)
    env = {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": TOKEN,
        "RECEIVER_DB": str(tmp_path / "notify.db"),
    }
    if github_url:
        env |= {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": github_url}
    if slack_url:
        env |= {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_API_URL": slack_url}
    return load_config(path, env)


def result(status: str = "failed", **custom: Any) -> Result:
    """A QualityMax-like result: 2 of 3 tests failed unless ``status`` says otherwise."""
    failed = 2 if status == "failed" else 0
    tests = [
        TestCase(
            name="Login",
            status="failed" if failed else "passed",
            duration_ms=4200,
            error="Expected dashboard, got /login" if failed else None,
            screenshot_url="https://example.com/s1.png",
            video_url="https://example.com/v1.mp4",
        ),
        TestCase(
            name="Checkout",
            status="failed" if failed else "passed",
            duration_ms=1500,
            error="Timeout waiting for #pay" if failed else None,
        ),
        TestCase(name="Search", status="passed", duration_ms=800),
    ]
    return Result(
        provider="qualitymax",
        event="test_results",
        status=status,
        total=3,
        passed=3 - failed,
        failed=failed,
        duration_ms=65_000,
        report_url="https://app.qualitymax.io/#/projects/137",
        custom_data={"branch": "feat/login", "deploy_id": "abc-123", **custom},
        tests=tests,
        failures=[Failure(test="Login", error="Expected dashboard, got /login")] if failed else [],
    )


class Harness:
    """The worker on a real SQLite file, fed the way the intake feeds it: result + outbox rows in
    one write."""

    def __init__(self, config: Config, **worker_options: Any) -> None:
        """``worker_options`` go to the DeliveryWorker (``metrics=``, ``poll_seconds=`` ...)."""
        self.config = config
        self.store = open_store(config.db_path)
        self.router = Router.from_config(config)
        self.recorder = Recorder(self.router, config.triage)
        self.worker = DeliveryWorker(self.store, config, **worker_options)

    async def __aenter__(self) -> Harness:
        await self.worker.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.stop(grace=1)
        self.store.close()

    async def add(self, value: Result) -> int:
        recorded = await self.store.write(lambda tx: self.recorder.record(tx, value, job_id=None))
        self.worker.recorded(recorded)
        return recorded.result_id

    def deliveries(self, **where: Any) -> list[views.DeliveryView]:
        page = self.store.read(
            lambda tx: views.delivery_page(tx, views.DeliveryFilter(limit=500, **where))
        )
        return sorted(page.items, key=lambda d: d.id)

    async def settle(
        self, test: Callable[[list[views.DeliveryView]], bool], timeout: float = 20
    ) -> list[views.DeliveryView]:
        """Wait until the outbox satisfies ``test`` (no timing is asserted, only the end state)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.deliveries()
            if test(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"outbox did not settle: {found}")
            await asyncio.sleep(0.02)


def all_final(found: list[views.DeliveryView]) -> bool:
    return bool(found) and all(d.state in ("sent", "dead") for d in found)
