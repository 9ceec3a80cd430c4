"""Configuration: the TOML file plus the environment, decoded into msgspec Structs.

Every string value of the file may reference the environment as ``${VAR}`` (or ``${VAR:-default}``).
Environment variables named in DESIGN.md also apply on their own, and win over literal values in
the file, so a container can be configured without editing the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from receiver import redact
from receiver.triage import LABELS

DEFAULT_CONFIG_PATH = "config/receiver.toml"
# A test's window is kept with each test (receiver.store.test_history): bounded, so is its row.
MIN_WINDOW = 2
MAX_WINDOW = 1000
DEFAULT_DB_PATH = "data/receiver.db"
# What a config read from the environment alone names as its source (in messages).
ENVIRONMENT_ONLY = f"{DEFAULT_CONFIG_PATH} (no such file: the environment alone)"

# One variable to get alerts: a default route to these targets.
NOTIFY_ENV = "RECEIVER_NOTIFY"
NOTIFY_ALL_ENV = "RECEIVER_NOTIFY_ALL"
NOTIFY_ROUTE = "RECEIVER_NOTIFY"  # the route's name, as explain and check-config show it
NOTIFY_STATUSES = ("failed", "error", "timeout")


class ConfigError(Exception):
    """The configuration is missing or wrong; the message says which setting and how to fix it."""


class ServerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    public_url: str | None = None
    max_body_bytes: int = 1_048_576
    # Total deadlines, not per read: a client that trickles a byte at a time still runs out.
    header_timeout_seconds: float = 10  # also how long an idle kept-alive connection stays open
    body_timeout_seconds: float = 15  # from the end of the headers to the last byte of the body
    # Open connections served at once; more wait in the kernel's queue. Lowered at start to what
    # the open-file limit allows. Each slow connection holds about 20-30 KB.
    max_connections: int = 10_000


class QualityMaxSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: str = "https://app.qualitymax.io"
    partner_slug: str | None = None
    api_key: str | None = None
    webhook_secret: str | None = None
    # A job submitted through receiver with no result after this long becomes ``timeout``.
    timeout_seconds: float = 900
    poll_seconds: float = 10  # between two questions about a job QualityMax does not call back

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The rotation list: every non-empty entry of the comma-separated secret."""
        if not self.webhook_secret:
            return ()
        return tuple(s.strip() for s in self.webhook_secret.split(",") if s.strip())


class QualigateSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: str = "https://qualigate.app"
    api_key: str | None = None
    poll_seconds: float = 10  # the document's advice
    timeout_seconds: float = 600  # no terminal status after this long: the job is `timeout`


class QualgentSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    base_url: str = "http://api.qualgent.ai"
    api_key: str | None = None
    poll_seconds: float = 10
    timeout_seconds: float = 1800  # mobile runs queue for devices; give them longer


class GithubSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    api_url: str = "https://api.github.com"
    token: str | None = None


class SlackSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The Slack Web API, for ``slackbot://#channel`` targets (messages edited in place)."""

    api_url: str = "https://slack.com/api"
    bot_token: str | None = None


class WatchSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """receiver watching its own targets: a target failing ``after_failures`` deliveries in a
    row sends one alert to ``notify``, and one more when it delivers again."""

    after_failures: int = 3
    notify: list[str] = msgspec.field(default_factory=list)


class DeliverySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_attempts: int = 8
    backoff: list[float] = msgspec.field(default_factory=lambda: [10, 30, 120, 600, 1800, 3600])
    timeout_seconds: float = 10
    per_target: int = 4  # sends in flight to one target: a hanging one holds no other back


class RetentionSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    keep_days: float = 90  # results, tests, jobs, deliveries and callbacks
    keep_digest_days: float = 400  # a callback's digest: a replay after the purge is a duplicate


class TriageSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How failed tests are labelled from their history (receiver.triage)."""

    base_branch: str = "main"  # "failing on main" means failed in this branch's latest result
    window: int = 50  # the runs of a test its flakiness is judged on
    flaky_threshold: float = 0.2  # flaky past this share of flips among the window's runs
    flaky_is_green: bool = False  # a result whose only failures are flaky: a green commit status


# A custom_data value a route can match on exactly.
Scalar = str | int | float | bool


# What a result is of, and a SAST finding's severity, as routes name them (DESIGN.md).
ResultKind = Literal["tests", "sast", "gap_analysis"]
Severity = Literal["low", "medium", "high", "critical"]


class When(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: str | list[str] | None = None
    event: str | list[str] | None = None
    status: str | list[str] | None = None
    branch: str | list[str] | None = None
    has: list[str] = msgspec.field(default_factory=list)
    custom_data: dict[str, Scalar] = msgspec.field(default_factory=dict)
    new_failures: bool = False  # true: only results with at least one failed test labelled new
    labels: list[str] = msgspec.field(default_factory=list)  # any of these triage labels
    kind: ResultKind | list[ResultKind] | None = None
    min_severity: Severity | None = None  # a SAST result with any finding at or above it


class Route(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    notify: list[str]
    when: When = msgspec.field(default_factory=When)
    on_change: bool = False
    group_by: list[str] = msgspec.field(default_factory=list)
    # slackbot:// targets: the custom_data keys that pick the message a result edits, the first
    # the result has (pr_number with its repository; sha also read from commit_sha, head_sha).
    thread_by: str | list[str] = msgspec.field(
        default_factory=lambda: ["pr_number", "sha", "deploy_id"]
    )
    # A result whose status and failing tests equal its group's previous one within this many
    # seconds updates living messages (slackbot://, github://pr-comment) and notifies no other.
    repeat_after: float | None = None

    @property
    def thread_keys(self) -> list[str]:
        return [self.thread_by] if isinstance(self.thread_by, str) else list(self.thread_by)


class StoreSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # A SQLite file path (the default, data/receiver.db) or postgresql://user:pass@host/db.
    # RECEIVER_DB, when set, wins: the Dockerfile sets it, so change that one there.
    url: str | None = None


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    qualitymax: QualityMaxSettings = msgspec.field(default_factory=QualityMaxSettings)
    github: GithubSettings = msgspec.field(default_factory=GithubSettings)
    qualigate: QualigateSettings = msgspec.field(default_factory=QualigateSettings)
    qualgent: QualgentSettings = msgspec.field(default_factory=QualgentSettings)
    delivery: DeliverySettings = msgspec.field(default_factory=DeliverySettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    triage: TriageSettings = msgspec.field(default_factory=TriageSettings)
    slack: SlackSettings = msgspec.field(default_factory=SlackSettings)
    watch: WatchSettings = msgspec.field(default_factory=WatchSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    routes: list[Route] = msgspec.field(default_factory=list)
    # From RECEIVER_DB, else [store] url: the SQLite path or the PostgreSQL URL.
    db_path: str = DEFAULT_DB_PATH
    api_token: str | None = None
    session_secret: str | None = None  # signs dashboard sessions; else derived from api_token
    source: str = "(defaults)"


class EnvSetting(msgspec.Struct, frozen=True):
    """One environment variable and the config key it fills."""

    name: str
    key: tuple[str, ...]
    secret: bool = False


ENV_SETTINGS: tuple[EnvSetting, ...] = (
    EnvSetting("RECEIVER_DB", ("db_path",)),
    EnvSetting("RECEIVER_PUBLIC_URL", ("server", "public_url")),
    EnvSetting("RECEIVER_API_TOKEN", ("api_token",), secret=True),
    EnvSetting("RECEIVER_SESSION_SECRET", ("session_secret",), secret=True),
    EnvSetting("QUALITYMAX_API_KEY", ("qualitymax", "api_key"), secret=True),
    EnvSetting("QUALITYMAX_WEBHOOK_SECRET", ("qualitymax", "webhook_secret"), secret=True),
    EnvSetting("QUALITYMAX_PARTNER_SLUG", ("qualitymax", "partner_slug")),
    EnvSetting("QUALITYMAX_BASE_URL", ("qualitymax", "base_url")),
    EnvSetting("GITHUB_TOKEN", ("github", "token"), secret=True),
    EnvSetting("GITHUB_API_URL", ("github", "api_url")),
    EnvSetting("QUALIGATE_API_KEY", ("qualigate", "api_key"), secret=True),
    EnvSetting("QUALGENT_API_KEY", ("qualgent", "api_key"), secret=True),
    EnvSetting("SLACK_BOT_TOKEN", ("slack", "bot_token"), secret=True),
    EnvSetting("SLACK_API_URL", ("slack", "api_url")),
)

SECRET_KEYS = frozenset(s.key for s in ENV_SETTINGS if s.secret)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """The config file to read: ``--config``, else ``RECEIVER_CONFIG``, else the default."""
    return Path(explicit or environ.get("RECEIVER_CONFIG") or DEFAULT_CONFIG_PATH)


def find_config(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """``config_path``, or None when no file is named and none is at the default path: the
    environment alone configures the service then. A named file that is missing stays an error
    (``load_config`` says so)."""
    path = config_path(explicit, environ)
    named = explicit or environ.get("RECEIVER_CONFIG")
    return path if named or path.exists() else None


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and decode the config file at ``path`` (None: no file, the environment
    alone); raise ConfigError saying what to fix."""
    env = os.environ if environ is None else environ
    source = ENVIRONMENT_ONLY if path is None else str(path)
    raw = {} if path is None else _read_toml(path)
    expanded = _expand(raw, env)
    _apply_environment(expanded, env)
    _add_notify_route(expanded, env)
    expanded["source"] = source
    try:
        config = msgspec.convert(expanded, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    _check_values(config, source)
    if not env.get("RECEIVER_DB") and config.store.url:
        config = msgspec.structs.replace(config, db_path=config.store.url)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"No config at {path}: pass --config FILE or set RECEIVER_CONFIG "
            f"(an example is config/receiver.toml in the repository)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read config {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _expand(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` in every string; an unset variable becomes empty, i.e. unset."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    return value


def _apply_environment(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for setting in ENV_SETTINGS:
        value = env.get(setting.name)
        if value:
            section = data
            for part in setting.key[:-1]:
                section = section.setdefault(part, {})
            section[setting.key[-1]] = value
    _blank_to_none(data)


# A comma separates two targets where the next one starts with a scheme: a comma inside one
# (``mailto://...?to=a@x.com,b@x.com``) stays in it.
_NEXT_TARGET = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"", "0", "false", "no", "off"})


def notify_targets(value: str) -> list[str]:
    """``RECEIVER_NOTIFY``'s targets, in order."""
    return [t for part in _NEXT_TARGET.split(value) if (t := part.strip().strip(",").strip())]


def _add_notify_route(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """``RECEIVER_NOTIFY``: a route of every failed, errored or timed-out result (every result
    with ``RECEIVER_NOTIFY_ALL=1``) to its targets, after the file's routes."""
    every = env.get(NOTIFY_ALL_ENV, "").strip().lower()
    if every not in _YES | _NO:
        raise ConfigError(
            f"{NOTIFY_ALL_ENV} must be 1 (notify every result) or 0 (failed, errored and "
            f"timed-out results), not {env[NOTIFY_ALL_ENV]!r}"
        )
    targets = notify_targets(env.get(NOTIFY_ENV, ""))
    if not targets:
        if every in _YES:
            raise ConfigError(
                f"{NOTIFY_ALL_ENV} is set but {NOTIFY_ENV} is empty: set {NOTIFY_ENV} to the "
                "targets to notify (Apprise URLs or github://...), comma-separated"
            )
        return
    when = {} if every in _YES else {"status": list(NOTIFY_STATUSES)}
    routes = data.setdefault("routes", [])
    if isinstance(routes, list):  # anything else is the file's error, named by the decoder
        routes.append({"name": NOTIFY_ROUTE, "when": when, "notify": targets})


def _blank_to_none(data: dict[str, Any]) -> None:
    """An empty string (an unset ``${VAR}``) means "not configured" for optional settings."""
    for name in ("server", "qualitymax", "github", "qualigate", "qualgent", "slack", "store"):
        section = data.get(name)
        if isinstance(section, dict):
            for key, value in list(section.items()):
                if value == "":
                    del section[key]
    for key in ("api_token", "session_secret"):
        if data.get(key) == "":
            del data[key]


def _check_values(config: Config, path: str) -> None:
    if config.server.max_body_bytes < 1024:
        raise ConfigError(f"{path}: [server] max_body_bytes must be at least 1024")
    for key in ("header_timeout_seconds", "body_timeout_seconds", "max_connections"):
        if getattr(config.server, key) <= 0:
            raise ConfigError(f"{path}: [server] {key} must be greater than 0")
    if config.delivery.max_attempts < 1:
        raise ConfigError(f"{path}: [delivery] max_attempts must be at least 1")
    if not config.delivery.backoff or min(config.delivery.backoff) < 0:
        raise ConfigError(f"{path}: [delivery] backoff must be a non-empty list of seconds >= 0")
    if config.delivery.timeout_seconds <= 0:
        raise ConfigError(f"{path}: [delivery] timeout_seconds must be greater than 0")
    if config.delivery.per_target < 1:
        raise ConfigError(f"{path}: [delivery] per_target must be at least 1")
    retention = config.retention
    if retention.keep_days <= 0 or retention.keep_digest_days < retention.keep_days:
        raise ConfigError(
            f"{path}: [retention] keep_days must be greater than 0 and keep_digest_days at "
            "least keep_days (a digest must outlive its body)"
        )
    if config.qualitymax.timeout_seconds <= 0:
        raise ConfigError(f"{path}: [qualitymax] timeout_seconds must be greater than 0")
    _check_watch(config, path)
    _check_triage(config.triage, path)
    for name in ("qualigate", "qualgent"):
        polling = getattr(config, name)
        if polling.poll_seconds <= 0 or polling.timeout_seconds <= 0:
            raise ConfigError(
                f"{path}: [{name}] poll_seconds and timeout_seconds must be greater than 0"
            )
    for index, route in enumerate(config.routes):
        for target in route.notify:
            if not target.strip():
                raise ConfigError(
                    f"{path}: route {route.name!r} (routes[{index}]) has an empty notify target: "
                    f"a ${{VAR}} it uses is not set; export it or remove the target"
                )
        if route.repeat_after is not None and route.repeat_after <= 0:
            raise ConfigError(
                f"{path}: route {route.name!r}: repeat_after must be a number of seconds > 0 "
                "(leave it out to notify every result)"
            )
        if not route.thread_keys:
            raise ConfigError(
                f"{path}: route {route.name!r}: thread_by must name at least one custom_data key"
            )
        unknown = [label for label in route.when.labels if label not in LABELS]
        if unknown:
            raise ConfigError(
                f"{path}: route {route.name!r} (routes[{index}]) has when.labels {unknown!r}; "
                f"use any of {', '.join(repr(label) for label in LABELS)}"
            )


def _check_triage(triage: TriageSettings, path: str) -> None:
    if not triage.base_branch.strip():
        raise ConfigError(f'{path}: [triage] base_branch must name a branch (default "main")')
    if not MIN_WINDOW <= triage.window <= MAX_WINDOW:
        raise ConfigError(
            f"{path}: [triage] window must be from {MIN_WINDOW} to {MAX_WINDOW} runs (default 50)"
        )
    if not 0 <= triage.flaky_threshold <= 1:
        raise ConfigError(
            f"{path}: [triage] flaky_threshold is a share of runs, from 0 to 1 (default 0.2)"
        )


def _check_watch(config: Config, path: str) -> None:
    if config.watch.after_failures < 1:
        raise ConfigError(f"{path}: [watch] after_failures must be at least 1")
    if any(not target.strip() for target in config.watch.notify):
        raise ConfigError(
            f"{path}: [watch] notify has an empty target: a ${{VAR}} it uses is not set; "
            "export it or remove the target"
        )


def polling_only(config: Config) -> bool:
    """QualityMax is not configured at all and a polled provider is: no callback can come."""
    qualitymax = config.qualitymax
    if qualitymax.partner_slug or qualitymax.api_key or qualitymax.webhook_secrets:
        return False
    return bool(config.qualigate.api_key or config.qualgent.api_key)


def require_webhook_secret(config: Config) -> None:
    """The callback endpoint cannot verify anything without a secret: refuse to start, unless
    the service only polls (then the endpoint answers 503 naming the setting)."""
    if config.qualitymax.webhook_secrets or polling_only(config):
        return
    message = (
        "QUALITYMAX_WEBHOOK_SECRET is not set: callbacks cannot be verified. Set it in the "
        f"environment or as [qualitymax] webhook_secret in {config.source}"
    )
    if not (config.qualitymax.partner_slug or config.qualitymax.api_key):
        message += (
            " (a service that only polls needs QUALIGATE_API_KEY or QUALGENT_API_KEY instead)"
        )
    raise ConfigError(message)


def _describe(exc: msgspec.ValidationError) -> str:
    """Turn msgspec's ``... - at `$.server.port``` into ``[server] port: ...``."""
    message = str(exc)
    match = re.search(r" - at `\$\.?([^`]*)`$", message)
    if not match:
        return message
    where = match.group(1)
    what = message[: match.start()]
    parts = re.split(r"\.", where) if where else []
    if not parts:
        return what
    if len(parts) == 1:
        return f"[{parts[0]}]: {what}"
    return f"[{parts[0]}] {'.'.join(parts[1:])}: {what}"


def effective_settings(config: Config) -> dict[str, dict[str, str]]:
    """The settings as check-config prints them, section by section: secrets as ``set (N
    chars)``, passwords in URLs masked (see receiver.redact)."""
    sections: dict[str, dict[str, str]] = {}
    for name in (
        "server",
        "qualitymax",
        "github",
        "delivery",
        "retention",
        "triage",
        "qualigate",
        "qualgent",
        "slack",
        "watch",
    ):
        values = msgspec.to_builtins(getattr(config, name))
        sections[name] = {
            key: redact.secret(value) if (name, key) in SECRET_KEYS else _show(value)
            for key, value in values.items()
        }
    sections["store"] = {
        "db_path": redact.url(config.db_path),
        "api_token": redact.secret(config.api_token),
        "session_secret": redact.secret(config.session_secret),
    }
    return sections


def _show(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "[" + ", ".join(redact.url(item) for item in value) + "]"  # [watch] notify
    return redact.NOT_SET if value is None else redact.url(str(value))
