"""``receiver notify-test``: a sample message to a target, and what the target answered.

So a user sees a Slack URL work before the first real failure. An Apprise target gets the message
a real failed result would make (rendered for its service, as the worker renders it); a
``slackbot://`` channel a plain post (a living message needs the service's store); GitHub targets
need a pull request and a commit that a sample does not have, so only ``GITHUB_TOKEN`` is tried,
against the API's ``/rate_limit``, and nothing is posted.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from receiver import __version__
from receiver.config import Config, ConfigError
from receiver.notify.apprise_target import AppriseSender
from receiver.notify.escape import mrkdwn
from receiver.notify.retry import Outcome
from receiver.notify.slack import refusal
from receiver.notify.slack_url import channel_of
from receiver.results import Failure, TestCase
from receiver.routing import GITHUB_KINDS, Router, Target, parse_target
from receiver.views import Links, ResultDetail

SAMPLE_DEPLOY: Final = "receiver notify-test"
SAMPLE_SUMMARY: Final = "A sample message from `receiver notify-test`: no test ran, nothing failed."


def sample_result() -> ResultDetail:
    """A failed result, as a callback would bring it: one test of two failing."""
    error = "Sample failure: this is what a failing test looks like"
    return ResultDetail(
        id=0,
        provider="qualitymax",
        event="test_results",
        status="failed",
        total=2,
        passed=1,
        failed=1,
        duration_ms=12_000,
        branch="main",
        repository=None,
        pr_number=None,
        sha=None,
        report_url=None,
        job_id=None,
        callback_id=None,
        created_at="",
        raw_status="failed",
        summary=SAMPLE_SUMMARY,
        external_job_id=None,
        custom_data={"branch": "main", "deploy_id": SAMPLE_DEPLOY},
        failures=[Failure(test="Sample: checkout", error=error)],
        tests=[
            TestCase(name="Sample: login", status="passed", duration_ms=4_000),
            TestCase(name="Sample: checkout", status="failed", duration_ms=8_000, error=error),
        ],
        links=Links(),
    )


def try_targets(targets: list[Target], config: Config) -> list[Outcome]:
    """Send the sample to each target, one after the other; each one's outcome, in order."""
    return asyncio.run(_try_all(targets, config))


async def _try_all(targets: list[Target], config: Config) -> list[Outcome]:
    timeout = config.delivery.timeout_seconds
    apprise = AppriseSender(timeout=timeout, threads=1)
    try:
        outcomes = []
        for target in targets:
            try:
                outcome = await asyncio.wait_for(_try(target, config, apprise), timeout)
            except TimeoutError:
                outcome = Outcome(ok=False, error=f"no answer within {timeout:g}s")
            outcomes.append(outcome)
        return outcomes
    finally:
        await apprise.close()


async def _try(target: Target, config: Config, apprise: AppriseSender) -> Outcome:
    if target.kind in GITHUB_KINDS:
        return await github_token(config)
    if target.kind == "slackbot":
        return await slack_post(target.url, config)
    return await apprise.send(target.url, sample_result())


async def github_token(config: Config) -> Outcome:
    """GITHUB_TOKEN against ``GET /rate_limit`` (it answers any valid token, an app's too)."""
    api = config.github.api_url.rstrip("/")
    headers = {
        "Authorization": f"Bearer {config.github.token or ''}",
        "Accept": "application/vnd.github+json",
        "User-Agent": f"receiver/{__version__}",
    }
    try:
        async with httpx.AsyncClient(timeout=config.delivery.timeout_seconds) as client:
            response = await client.get(f"{api}/rate_limit", headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(ok=False, error=f"Cannot reach GitHub at {api}: {exc!r}")
    if response.status_code != 200:
        return Outcome(
            ok=False,
            status_code=response.status_code,
            error=f"GitHub answered {response.status_code} to GITHUB_TOKEN: {_message(response)}",
        )
    return Outcome(
        ok=True,
        answer=(
            "GITHUB_TOKEN accepted (HTTP 200); nothing posted: a comment or status needs the "
            "pull request and commit of a real result"
        ),
    )


async def slack_post(target: str, config: Config) -> Outcome:
    text = f"*{mrkdwn('receiver: a sample message')}*\n{mrkdwn(SAMPLE_SUMMARY)}"
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(
            token=config.slack.bot_token,
            base_url=config.slack.api_url.rstrip("/") + "/",
            timeout=max(1, math.ceil(config.delivery.timeout_seconds)),
            session=session,
            retry_handlers=[],
        )
        try:
            await client.chat_postMessage(channel=channel_of(target), text=text)
        except SlackApiError as exc:
            return refusal(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome(ok=False, error=f"Cannot reach Slack at {config.slack.api_url}: {exc!r}")
    return Outcome(ok=True, answer="chat.postMessage ok")


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message", "")) if isinstance(data, dict) else response.text[:200]


def targets_to_try(config: Config, given: str | None) -> list[Target]:
    """The one target given, else every target of the config's routes and ``[watch] notify``;
    raise ConfigError when there is none or a token it needs is not set."""
    if given is not None:
        target = parse_target(given, "notify-test")
        _check_token(target, config)
        return [target]
    router = Router.from_config(config)  # every route's targets valid, tokens set
    found: dict[str, Target] = {}
    for compiled in router.routes:
        for target in compiled.targets:
            found.setdefault(target.url, target)
    for url in config.watch.notify:
        found.setdefault(url, parse_target(url, "[watch] notify"))
    if not found:
        raise ConfigError(
            f"No target to try in {config.source}: pass one (receiver notify-test URL), or set "
            "RECEIVER_NOTIFY or add [[routes]]"
        )
    return list(found.values())


def _check_token(target: Target, config: Config) -> None:
    if target.kind in GITHUB_KINDS and not config.github.token:
        raise ConfigError(
            f"{target.display} needs GITHUB_TOKEN: set it in the environment or as [github] "
            f"token in {config.source}"
        )
    if target.kind == "slackbot" and not config.slack.bot_token:
        raise ConfigError(
            f"{target.display} needs SLACK_BOT_TOKEN: set it in the environment or as [slack] "
            f"bot_token in {config.source}"
        )
