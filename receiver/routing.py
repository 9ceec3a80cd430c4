"""Routes: which results go to which targets, checked once at start-up, matched per result.

A route's ``when`` keys must all match (an empty ``when`` matches everything). Each distinct
(result, target) becomes one delivery in the outbox, written in the result's own transaction.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Final

import apprise
import msgspec

from receiver import matrix, redact, repeats
from receiver.config import Config, ConfigError, Route, When
from receiver.ledger import Ledger, OnChange, RouteDecision, first_miss
from receiver.notify.slack_url import SLACKBOT_SCHEME, parse_slackbot
from receiver.results import TERMINAL_STATUSES, Result, severity_rank
from receiver.store import groups
from receiver.store.deliveries import NewDelivery
from receiver.store.tx import Tx
from receiver.triage import NEW

GITHUB_SCHEME: Final = "github://"
GITHUB_KINDS: Final = ("pr-comment", "commit-status")
# Targets whose one message per group is edited in place: a repeat updates them, nothing else.
LIVING_KINDS: Final = ("slackbot", "pr-comment")


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One place a notification goes: ``url`` may hold a secret, ``display`` never does."""

    url: str
    display: str
    kind: str  # "apprise", "slackbot", or the GitHub kind: "pr-comment", "commit-status"


class CompiledRoute(msgspec.Struct, frozen=True, kw_only=True):
    route: Route
    targets: tuple[Target, ...]


class Reach(msgspec.Struct, kw_only=True):
    """What one result reaches through one route (for check-config and tests)."""

    route: str
    targets: list[str]
    on_change: bool


def parse_target(url: str, route_name: str) -> Target:
    """Check one ``notify`` entry; raise ConfigError naming the route and the fix."""
    if url.startswith(GITHUB_SCHEME):
        kind = url[len(GITHUB_SCHEME) :].strip("/")
        if kind not in GITHUB_KINDS:
            raise ConfigError(
                f"route {route_name!r}: unknown GitHub target {url!r}; "
                f"use github://pr-comment or github://commit-status"
            )
        return Target(url=url, display=f"{GITHUB_SCHEME}{kind}", kind=kind)
    if url.startswith(SLACKBOT_SCHEME):
        return Target(url=url, display=parse_slackbot(url, route_name), kind="slackbot")
    instance = apprise.Apprise.instantiate(url)
    if instance is None:
        scheme = url.split("://", 1)[0] if "://" in url else url[:12]
        raise ConfigError(
            f"route {route_name!r}: Apprise cannot use the target starting {scheme!r}: check "
            f"the URL's scheme and parts against https://github.com/caronc/apprise/wiki "
            f"(e.g. slack://..., mailto://..., json://...)"
        )
    privacy_url: str = instance.url(privacy=True)  # type: ignore[no-untyped-call]
    return Target(url=url, display=mask_url(privacy_url), kind="apprise")


def mask_url(privacy_url: str) -> str:
    """Apprise's privacy URL without its query (options there can hold tokens it does not
    know), and any password it left in place masked too."""
    return redact.url(privacy_url.split("?", 1)[0])


class Router:
    """The config's routes, validated, ready to match results."""

    def __init__(self, routes: Iterable[CompiledRoute]) -> None:
        self.routes = tuple(routes)
        # slackbot:// target URL -> the thread_by of the routes that use it
        self.thread_by: dict[str, tuple[str, ...]] = {}
        groupings: set[tuple[str, ...]] = set()
        for compiled in self.routes:
            for target in compiled.targets:
                if target.kind == "slackbot":
                    keys = tuple(compiled.route.thread_keys)
                    self.thread_by.setdefault(target.url, keys)
                    groupings.add(keys)
                elif target.kind == "pr-comment":
                    groupings.add(matrix.PR_GROUP)
                elif target.kind == "commit-status":
                    groupings.add(matrix.COMMIT_GROUP)
        # The groups living targets render: every result gets its row in each (record.py).
        self.groupings = tuple(sorted(groupings))

    @classmethod
    def from_config(cls, config: Config) -> Router:
        compiled = []
        names: set[str] = set()
        for route in config.routes:
            if route.name in names:
                raise ConfigError(
                    f"{config.source}: two routes are named {route.name!r}; give each a unique "
                    f"name (deliveries and on_change groups are kept by route name)"
                )
            names.add(route.name)
            targets = tuple(parse_target(url, route.name) for url in route.notify)
            compiled.append(CompiledRoute(route=route, targets=targets))
        _check_thread_by(compiled)
        _check_watch(config)
        router = cls(compiled)
        if router.uses_slack and not config.slack.bot_token:
            raise ConfigError(
                "A route notifies slackbot://... but SLACK_BOT_TOKEN is not set: set it in the "
                f"environment or as [slack] bot_token in {config.source} (a bot token, xoxb-...)"
            )
        if router.uses_github and not config.github.token:
            raise ConfigError(
                "A route notifies github://... but GITHUB_TOKEN is not set: set it in the "
                f"environment or as [github] token in {config.source}"
            )
        return router

    @property
    def uses_github(self) -> bool:
        return any(t.kind in GITHUB_KINDS for r in self.routes for t in r.targets)

    @property
    def uses_slack(self) -> bool:
        return bool(self.thread_by)

    def matching(self, result: Result, labels: frozenset[str] = frozenset()) -> list[CompiledRoute]:
        return [r for r in self.routes if matches(r.route.when, result, labels)]

    def reach(self, result: Result) -> list[Reach]:
        return [
            Reach(
                route=r.route.name,
                targets=[t.display for t in r.targets],
                on_change=r.route.on_change,
            )
            for r in self.matching(result)
        ]

    def waiting_on_labels(self, result: Result) -> list[str]:
        """The routes ``result`` matches but for their triage keys (``new_failures``,
        ``labels``): whether they speak is decided from the tests' history when it is stored."""
        return [
            r.route.name
            for r in self.routes
            if (r.route.when.new_failures or r.route.when.labels)
            and matches(
                msgspec.structs.replace(r.route.when, new_failures=False, labels=[]), result
            )
        ]

    def deliveries(
        self,
        tx: Tx,
        result_id: int,
        result: Result,
        ledger: Ledger | None = None,
        labels: frozenset[str] = frozenset(),
    ) -> list[NewDelivery]:
        """The result's deliveries: one per target of each matching route that speaks for it
        (an on_change route updates its group's status here). A second route to the same
        target adds none. ``ledger`` collects each route's decision as it is made; ``labels``
        are the triage labels the result's tests carry."""
        found: dict[str, NewDelivery] = {}
        for compiled in self.routes:
            route = compiled.route
            if not matches(route.when, result, labels):
                if ledger is not None:
                    miss = first_miss(route.when, result, labels)
                    ledger.add(RouteDecision(route=route.name, matched=False, miss=miss))
                continue
            decision = RouteDecision(route=route.name, matched=True)
            if ledger is not None:
                ledger.add(decision)
            if route.on_change:
                decision.on_change = _on_change(tx, route, result, result_id)
                if not decision.on_change.spoke:
                    continue
            targets = compiled.targets
            if route.repeat_after is not None:
                group = group_key(route, result)
                decision.repeat = repeats.check(tx, route, group, result, result_id)
                if decision.repeat.repeat:
                    decision.skipped = [t.display for t in targets if t.kind not in LIVING_KINDS]
                    targets = tuple(t for t in targets if t.kind in LIVING_KINDS)
            for target in targets:
                if target.url in found:
                    decision.note = "a target another route already notifies is notified once"
                decision.targets.append(target.display)
                found.setdefault(
                    target.url,
                    NewDelivery(
                        result_id=result_id,
                        route=route.name,
                        target=target.url,
                        target_display=target.display,
                    ),
                )
        return list(found.values())


def matches(when: When, result: Result, labels: frozenset[str] = frozenset()) -> bool:
    """All keys of ``when`` hold for ``result``, whose tests carry the triage ``labels``; the
    first that fails ends the check (this runs for every route of every callback, inside the
    batch's transaction)."""
    return (
        _one_of(when.provider, result.provider)
        and _one_of(when.event, result.event)
        and _one_of(when.status, result.status)
        and _branch(when.branch, result.branch)
        and all(key in result.custom_data for key in when.has)
        and all(_same(result.custom_data.get(k), v) for k, v in when.custom_data.items())
        and _one_of(when.kind, result.kind)
        and _severe(when.min_severity, result)
        and (not when.new_failures or NEW in labels)
        and (not when.labels or not labels.isdisjoint(when.labels))
    )


def _severe(least: str | None, result: Result) -> bool:
    """``min_severity``: the result has a finding at ``least`` or above (only SAST results
    have findings: any other result fails the key)."""
    if least is None:
        return True
    worst = result.security.worst if result.security is not None else None
    return severity_rank(worst) >= severity_rank(least)


def _one_of(wanted: str | Sequence[str] | None, value: str) -> bool:
    if wanted is None:
        return True
    return value in ([wanted] if isinstance(wanted, str) else wanted)


def _branch(globs: str | list[str] | None, branch: str | None) -> bool:
    if globs is None:
        return True
    if branch is None:
        return False
    patterns = [globs] if isinstance(globs, str) else globs
    return any(fnmatch.fnmatchcase(branch, pattern) for pattern in patterns)


def _same(actual: object, wanted: object) -> bool:
    """TOML says ``pr_number = 7``, the JSON may carry ``"7"``: compare as text, bools as bools."""
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return actual is wanted
    return actual is not None and str(actual) == str(wanted)


def group_key(route: Route, result: Result) -> str:
    """The on_change group: provider plus the ``group_by`` values (the route is the table key)."""
    values = [result.provider, *(result.custom_data.get(k) for k in route.group_by)]
    return msgspec.json.encode(values).decode()


def _on_change(tx: Tx, route: Route, result: Result, result_id: int) -> OnChange:
    """on_change: speak on a new status; the first of a group speaks unless it passed.

    Only final statuses count: a ``running`` update between two failures is not a change.
    """
    group = group_key(route, result)
    if result.status not in TERMINAL_STATUSES:
        return OnChange(spoke=False, group=group, reason=f"{result.status} is not a final status")
    previous = groups.swap(
        tx, route=route.name, group_key=group, status=result.status, result_id=result_id
    )
    if previous is None:
        spoke = result.status != "passed"
        reason = "first result of its group" + ("" if spoke else ", and it passed")
        return OnChange(spoke=spoke, group=group, reason=reason)
    spoke = previous.status != result.status
    reason = f"status changed from {previous.status}" if spoke else f"status still {result.status}"
    return OnChange(
        spoke=spoke,
        group=group,
        reason=reason,
        previous_result_id=previous.result_id,
        previous_status=previous.status,
    )


def _check_watch(config: Config) -> None:
    """[watch] notify: Apprise URLs or slackbot:// (an alert has no pull request or commit)."""
    for url in config.watch.notify:
        target = parse_target(url, "[watch] notify")
        if target.kind in GITHUB_KINDS:
            raise ConfigError(
                f"[watch] notify: {target.display} cannot take an alert (it has no pull request "
                "or commit); use an Apprise URL or slackbot://#channel"
            )
        if target.kind == "slackbot" and not config.slack.bot_token:
            raise ConfigError(
                "[watch] notify uses slackbot://... but SLACK_BOT_TOKEN is not set: set it in "
                f"the environment or as [slack] bot_token in {config.source}"
            )


def _check_thread_by(compiled: list[CompiledRoute]) -> None:
    """One slackbot:// channel keeps one message per group: its routes must group alike."""
    seen: dict[str, CompiledRoute] = {}
    for route in compiled:
        for target in route.targets:
            if target.kind != "slackbot":
                continue
            first = seen.setdefault(target.url, route)
            if first.route.thread_keys != route.route.thread_keys:
                raise ConfigError(
                    f"routes {first.route.name!r} and {route.route.name!r} both notify "
                    f"{target.display} with a different thread_by; give them the same thread_by "
                    "(one message per group in a channel) or different channels"
                )
