"""The ``receiver`` command: each command parses, calls one function, prints.

Domain code raises typed errors; only this module turns them into one ``Error: ...`` line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from receiver import __version__, listen, logs, preflight, providers, redact, views
from receiver.config import (
    Config,
    ConfigError,
    config_path,
    effective_settings,
    find_config,
    load_config,
    polling_only,
)
from receiver.notify.message import clip, run_headline
from receiver.providers.errors import ProviderError
from receiver.routing import Router
from receiver.store import Store, StoreError, open_store
from receiver.store import deliveries as outbox
from receiver.store.tx import Tx
from receiver.submit import ApiClient, SubmitError

F = TypeVar("F", bound=Callable[..., Any])
Item = TypeVar("Item")

# Typed errors the commands turn into one line; helpers add theirs here.
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    StoreError,
    SubmitError,
    ProviderError,
    listen.ListenError,
)


@contextmanager
def user_errors() -> Iterator[None]:
    """Say what was wrong and what to do, in one line, without a traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        raise click.ClickException(str(exc)) from None


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config_file",
        metavar="FILE",
        help="TOML config file [default: $RECEIVER_CONFIG or config/receiver.toml]",
    )(fn)


def provider_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--provider",
        type=click.Choice(providers.names()),
        default=providers.DEFAULT,
        show_default=True,
        help=help_text,
    )


def wait_options(fn: F) -> F:
    """``--wait`` and what goes with it (``submit``, ``rerun``)."""
    options = [
        click.option(
            "--wait", is_flag=True, help="Wait for the verdict; exit 0 passed, 1 failed, 2 timeout"
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0),
            default=600,
            show_default=True,
            help="Seconds --wait waits",
        ),
        click.option(
            "--server", metavar="URL", help="The receiver [default: $RECEIVER_PUBLIC_URL]"
        ),
        click.option("--interval", type=click.FloatRange(min=0.05), default=2.0, hidden=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def read_config(config_file: str | None) -> Config:
    return load_config(find_config(config_file, os.environ))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="receiver")
def main() -> None:
    """receiver: take signed test-result callbacks, keep them, route them to people.

    Every command reads its settings from the config file and the environment
    (see README.md). Run `receiver COMMAND --help` for one command's options.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@config_option
def serve(host: str, port: int, config_file: str | None) -> None:
    """Run the service: the HTTP app and its delivery worker.

    Refuses to start on a port that another process listens on. Stops on SIGTERM or Ctrl-C
    after finishing the requests in flight.

    \b
    Example:
        QUALITYMAX_WEBHOOK_SECRET=... receiver serve --host 0.0.0.0 --port 8000
    """
    from receiver import server  # granian: imported only to serve

    with user_errors():
        path = find_config(config_file, os.environ)
        config = load_config(path)
        router = preflight.check(config)  # the reasons check-config gives too
        with listen.listen_socket(host, port) as listener:  # a port in use stops here
            database = open_store(config.db_path)  # created and migrated before granian starts
            try:
                database.check_writable()  # a read-only file opens quietly
            finally:
                database.close()
            limit = listen.connection_limit(config.server, listen.raise_open_file_limit())
            # From here on every line is a log line (JSON unless RECEIVER_LOG_FORMAT=console).
            logs.configure()
            logs.capture_process_output()
            log = logs.get_logger("receiver.serve")
            log.info(
                "serve.listening",
                version=__version__,
                url=f"http://{host}:{port}",
                db=redact.url(config.db_path),
                config=config.source,
                connections=limit.connections,
            )
            if note := limit.note():
                log.warning("serve.connections_limited", hint=note.removeprefix("note: "))
            for warning in preflight.warnings(router):
                log.warning("routes.none", hint=warning)
            sys.exit(server.run(path, listener, config.server, limit))


@main.command("check-config")
@config_option
@click.option(
    "--result",
    "result_file",
    metavar="FILE.json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A callback body: print which routes and targets it would reach",
)
def check_config(config_file: str | None, result_file: Path | None) -> None:
    """Validate the config and print the settings and routes it would use (secrets masked).

    Exits 1, with the same one line, exactly when `receiver serve` would refuse to start.

    \b
    Example:
        receiver check-config --config config/receiver.toml
        receiver check-config --result callback.json
    """
    with user_errors():
        config = read_config(config_file)
        if result_file is not None:
            print_reach(Router.from_config(config), result_file)
            return
        router = preflight.check(config)
    click.echo(f"config: {config.source}")
    for section, values in effective_settings(config).items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"  {key} = {value}")
    click.echo(f"routes: {len(config.routes)}")
    for route in config.routes:
        click.echo(f"  - {route.name}: {len(route.notify)} target(s)")
        print_route(router, route.name)
    for warning in preflight.warnings(router):
        click.echo(f"warning: {warning}")
    if polling_only(config):
        click.echo(
            "note: QUALITYMAX_WEBHOOK_SECRET is not set; the service only polls, and "
            "/callbacks/qualitymax answers 503"
        )
    if not config.server.public_url:
        click.echo("note: RECEIVER_PUBLIC_URL is not set; POST /api/jobs (receiver submit) refuses")


@main.command("notify-test")
@config_option
@click.argument("target", metavar="[TARGET]", required=False)
def notify_test(config_file: str | None, target: str | None) -> None:
    """Send a sample message to TARGET, or to every target of the config, and say what each
    answered: see a Slack URL work before the first real failure.

    TARGET is an Apprise URL (slack://..., mailto://..., json://...), slackbot://#channel,
    or github://pr-comment / github://commit-status (for those only GITHUB_TOKEN is tried:
    a comment or status needs a real pull request). Exits 1 when a target did not take it.

    \b
    Example:
        receiver notify-test 'slack://T0000/B0000/XXXXXXXX'
        RECEIVER_NOTIFY='slack://T0000/B0000/XXXXXXXX' receiver notify-test
    """
    from receiver.notify.sample import targets_to_try, try_targets

    with user_errors():
        config = read_config(config_file)
        targets = targets_to_try(config, target)
    outcomes = try_targets(targets, config)
    for tried, outcome in zip(targets, outcomes, strict=True):
        if outcome.ok:
            click.echo(f"{tried.display}: sent ({outcome.answer or 'the target took it'})")
        else:
            click.echo(f"{tried.display}: failed: {outcome.error or 'no reason given'}")
    if not all(outcome.ok for outcome in outcomes):
        sys.exit(1)


@main.command()
@config_option
@click.option("--slack", metavar="URL", help="A route of failures to this Slack URL")
@click.option("--github", is_flag=True, help="A route of pull requests to GitHub comment + status")
@click.option("--force", is_flag=True, help="Overwrite an existing file")
def init(config_file: str | None, slack: str | None, github: bool, force: bool) -> None:
    """Write a commented starter config (config/receiver.toml unless --config says).

    A Slack webhook URL holds its secret, so the file names it ${SLACK_URL}: give the
    service that variable as you give it the others.

    \b
    Example:
        receiver init --slack 'https://hooks.slack.com/services/T000/B000/XXXX' --github
        receiver init --slack 'slackbot://#ci' --force
    """
    from receiver import starter

    with user_errors():
        path = config_path(config_file, os.environ)
        made = starter.starter(slack=slack, github=github)
        starter.write(path, made.text, force=force)
    routes = ", ".join(made.routes) or "none yet: edit [[routes]] or set RECEIVER_NOTIFY"
    click.echo(f"wrote {path} (routes: {routes})")
    if slack is not None and starter.SLACK_VAR in made.variables:
        click.echo(f"the file reads the Slack URL you passed from ${starter.SLACK_VAR}")
    click.echo(
        f"next: set {', '.join(made.variables)} in the service's environment, then "
        "`receiver check-config` and `receiver notify-test`"
    )


@main.command()
@click.option(
    "--keep", is_flag=True, help="Keep the service and its dashboard serving until Ctrl-C"
)
def demo(keep: bool) -> None:
    """Show the whole loop locally in one command, on a throwaway database.

    It ends by printing the dashboard's URL and the token to sign in with.

    \b
    Example:
        receiver demo
        receiver demo --keep
    """
    from receiver.demo import run_demo

    with user_errors():
        sys.exit(run_demo(Path.cwd(), keep=keep))


@main.command()
@provider_option("Which provider's API to simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--delay",
    type=click.FloatRange(0, 600),
    default=1.0,
    show_default=True,
    envvar="RECEIVER_SIMULATOR_DELAY",
    help="Seconds between accepting a job and posting its callback",
)
@click.option(
    "--api-key",
    envvar="QUALITYMAX_API_KEY",
    help="The qm-... or qm_... key it accepts [default: $QUALITYMAX_API_KEY, else a dev key]",
)
@click.option(
    "--webhook-secret",
    envvar="QUALITYMAX_WEBHOOK_SECRET",
    help="Verifies X-Partner-Signature, signs callbacks [default: $QUALITYMAX_WEBHOOK_SECRET]",
)
@click.option(
    "--slug",
    envvar="QUALITYMAX_PARTNER_SLUG",
    help="The only partner slug it accepts [default: $QUALITYMAX_PARTNER_SLUG, else any]",
)
def simulate(
    provider: str,
    host: str,
    port: int,
    delay: float,
    api_key: str | None,
    webhook_secret: str | None,
    slug: str | None,
) -> None:
    """Run a local provider API (QualityMax by default) for development and demos.

    QualityMax: it takes jobs on POST /api/webhooks/{slug} (checking X-QualityMax-API-Key and
    X-Partner-Signature), then posts a signed test_results callback to the job's
    callback_url. custom_data.simulate = "passed" | "failed" | "error" picks the
    outcome. The key and secret are QUALITYMAX_API_KEY and QUALITYMAX_WEBHOOK_SECRET
    (dev values are used, and shown, when they are unset).

    Qualigate and QualGent (--provider): every documented endpoint with its auth, errors and
    rate limits; a run goes pending, running, then the outcome its test case names (README.md
    lists them). Point [qualigate] or [qualgent] base_url at it and use the API key it prints.

    \b
    Example:
        receiver simulate --port 8100 &
        QUALITYMAX_BASE_URL=http://127.0.0.1:8100 receiver serve
        receiver simulate --provider qualigate --port 8101
    """
    if provider != "qualitymax":
        from receiver.simulator.run import serve_simulator

        sys.exit(serve_simulator(provider, host=host, port=port))
    from receiver.simulator import qualitymax as sim
    from receiver.simulator.process import run

    if api_key and not api_key.startswith(("qm-", "qm_")):
        raise click.BadParameter("QualityMax keys start with qm- or qm_", param_hint="--api-key")
    # The server's worker reads its settings from the environment.
    given = {
        "QUALITYMAX_API_KEY": api_key,
        "QUALITYMAX_WEBHOOK_SECRET": webhook_secret,
        "QUALITYMAX_PARTNER_SLUG": slug,
        "RECEIVER_SIMULATOR_DELAY": str(delay),
    }
    os.environ.update({name: value for name, value in given.items() if value})
    settings = sim.SimulatorSettings.from_environment(os.environ)
    # Show the dev values (they are not secrets); never show a key or secret the user set.
    key = settings.api_key if not api_key else redact.secret(api_key)
    secret = settings.webhook_secret if not webhook_secret else redact.secret(webhook_secret)
    click.echo(f"QualityMax simulator on http://{host}:{port}", err=True)
    click.echo(f"  receiver: QUALITYMAX_BASE_URL=http://{host}:{port}", err=True)
    click.echo(f"  API key {key}, webhook secret {secret}, slug {slug or '(any)'}", err=True)
    click.echo(f"  callbacks {delay}s after each job", err=True)
    sys.exit(run(host=host, port=port))


@main.command()
@provider_option("Which platform runs the tests")
@click.option("--url", help="QualityMax: the URL to test, such as the preview deploy's")
@click.option("--feature", help="QualityMax: what to test, in plain words")
@click.option(
    "--test-case",
    metavar="ID",
    multiple=True,
    help="Qualigate: one test case; QualGent: one, or up to 10 (repeat it) in one run",
)
@click.option(
    "--kind",
    type=click.Choice(["tests", "sast", "gap_analysis"]),
    help="QualityMax: tests (default, --url --feature), sast or gap_analysis (--repository-id)",
)
@click.option("--repository-id", type=click.IntRange(min=1), help="QualityMax sast/gap_analysis")
@click.option("--scan-branch", metavar="BRANCH", help="QualityMax sast: the branch [main]")
@click.option("--engines", metavar="LIST", help="QualityMax sast: semgrep,bandit")
@click.option("--categories", metavar="LIST", help="QualityMax gap_analysis: e2e,security")
@click.option(
    "--max-tests", type=click.IntRange(min=1), help="QualityMax gap_analysis: per category"
)
@click.option(
    "--orientation",
    type=click.Choice(["portrait", "landscape"]),
    help="QualGent: with --device, its orientation",
)
@click.option("--suite", metavar="ID", help="Qualigate: a test suite")
@click.option("--project", metavar="ID", help="Qualigate: every test of a project")
@click.option("--browser", help="QualityMax or Qualigate: chromium, firefox or webkit")
@click.option("--viewport", help="Qualigate: desktop, tablet, mobile or WIDTHxHEIGHT")
@click.option("--run-all", is_flag=True, help="QualGent: every test case (of --category)")
@click.option("--category", metavar="ID", help="QualGent: with --run-all, one category")
@click.option("--app", metavar="ID|latest", help="QualGent: the uploaded app to test")
@click.option(
    "--device", metavar="NAME", help="QualGent: the device (with --platform, --os-version)"
)
@click.option("--platform", metavar="P", help="QualGent: android or ios")
@click.option("--os-version", metavar="V", help="QualGent: the device's OS version")
@click.option("--custom-data", metavar="JSON", help="A JSON object echoed back with the result")
@wait_options
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON (for scripts)")
def submit(
    provider: str,
    custom_data: str | None,
    wait: bool,
    timeout: float,
    server: str | None,
    as_json: bool,
    interval: float,
    **target: Any,
) -> None:
    """Submit a job through the running receiver; with --wait, gate on its verdict.

    QualityMax takes --url and --feature, or --kind sast|gap_analysis with
    --repository-id; Qualigate one of --test-case, --suite, --project; QualGent
    --test-case (repeated: up to 10 in one run, a job each) or --run-all, with --app
    and --device. Over a provider's rate limit the job is queued and sent when it allows.
    The token is RECEIVER_API_TOKEN. Progress goes to stderr, the summary (or
    --json) to stdout.

    \b
    Example:
        receiver submit --url https://preview-42.example.com \\
            --feature "Users can log in and see their dashboard" \\
            --custom-data '{"pr_number": 42, "branch": "feat/login"}' --wait
        receiver submit --provider qualigate --suite SUITE_ID --wait
        receiver submit --provider qualgent --test-case TC_ID --app latest \\
            --device "Pixel 8" --platform android --os-version 14 --wait
        receiver submit --kind sast --repository-id 42 --engines semgrep,bandit --wait
        receiver submit --kind gap_analysis --repository-id 42 --categories e2e,security
    """
    from receiver import submit as sub

    with user_errors():
        base = sub.server_url(server, os.environ)
        token = sub.api_token(os.environ)
        what = msgspec.convert(target, sub.Target)
        body = sub.body_for(provider, what, sub.parse_custom_data(custom_data))
        with sub.ApiClient(base, token) as api:
            job = api.submit(body)
            if not wait:
                click.echo(sub.to_json(job) if as_json else f"job {job.id} {job.state}")
                return
            click.echo(f"job {job.id} submitted ({job.external_id}); waiting ...", err=True)
            done = _wait_for(api, job.id, timeout=timeout, interval=interval)
    _exit_with_verdict(job.id, done, timeout=timeout, as_json=as_json)


@main.command()
@click.argument("job_id", metavar="JOB_ID", type=click.IntRange(min=1))
@click.option(
    "--auth-password",
    metavar="TEXT",
    envvar="RECEIVER_RERUN_PASSWORD",
    help="QualityMax: the login password the first request carried (never stored) "
    "[default: $RECEIVER_RERUN_PASSWORD]",
)
@wait_options
@click.option("--json", "as_json", is_flag=True, help="Print the new job as JSON")
def rerun(
    job_id: int,
    auth_password: str | None,
    wait: bool,
    timeout: float,
    server: str | None,
    as_json: bool,
    interval: float,
) -> None:
    """Submit a job's request again, as a new job linked to it (any provider).

    Secrets are never stored: a QualityMax job whose request carried auth.password
    needs it again (--auth-password, or $RECEIVER_RERUN_PASSWORD); without it the
    service refuses, naming the field.

    \b
    Example:
        receiver rerun 42 --wait
        RECEIVER_RERUN_PASSWORD=... receiver rerun 43
    """
    from receiver import submit as sub

    with user_errors():
        base = sub.server_url(server, os.environ)
        with sub.ApiClient(base, sub.api_token(os.environ)) as api:
            job = api.rerun(job_id, auth_password)
            if not wait:
                click.echo(
                    sub.to_json(job) if as_json else f"job {job.id} {job.state} (re-runs {job_id})"
                )
                return
            click.echo(f"job {job.id} re-runs job {job_id}; waiting ...", err=True)
            done = _wait_for(api, job.id, timeout=timeout, interval=interval)
    _exit_with_verdict(job.id, done, timeout=timeout, as_json=as_json)


def _wait_for(
    api: ApiClient, job_id: int, *, timeout: float, interval: float
) -> views.JobView | None:
    """The job once it has its verdict (progress on stderr); None after ``timeout``."""
    from receiver import submit as sub

    progress = sub.Progress(sys.stderr, tty=sys.stderr.isatty())
    return sub.wait_for(api, job_id, timeout=timeout, interval=interval, progress=progress)


def _exit_with_verdict(
    job_id: int, done: views.JobView | None, *, timeout: float, as_json: bool
) -> None:
    """Print the verdict (or the timeout) and exit with its code."""
    from receiver import submit as sub

    if done is None:
        click.echo(f"Timed out after {timeout:.0f}s waiting for job {job_id}", err=True)
        sys.exit(sub.EXIT_TIMEOUT)
    click.echo(sub.to_json(done) if as_json else "\n".join(sub.summary(done)))
    sys.exit(sub.exit_code(done))


# ---------------------------------------------------------------------------------------------
# Routes and the outbox


def print_route(router: Router, name: str) -> None:
    for compiled in router.routes:
        if compiled.route.name != name:
            continue
        when = {k: v for k, v in msgspec.to_builtins(compiled.route.when).items() if v}
        click.echo(f"      when: {json.dumps(when) if when else 'every result'}")
        if compiled.route.on_change:
            group = ", ".join(compiled.route.group_by) or "provider only"
            click.echo(f"      on_change: yes, grouped by {group}")
        if compiled.route.repeat_after is not None:
            click.echo(f"      repeat_after: {compiled.route.repeat_after:g}s")
        if any(t.kind == "slackbot" for t in compiled.targets):
            click.echo(f"      thread_by: {', '.join(compiled.route.thread_keys)}")
        for target in compiled.targets:
            click.echo(f"      -> {target.display}")


def print_reach(router: Router, result_file: Path) -> None:
    from receiver.callbacks import decode

    decoded = decode(result_file.read_bytes())
    if decoded.error is not None:
        raise click.ClickException(f"{result_file}: {decoded.error}")
    result = decoded.result
    if result is None:
        click.echo(f"{result_file}: this callback carries no result; it reaches no route")
        return
    branch = result.branch or "(no branch)"
    click.echo(f"result: {result.status} ({result.provider}, event {result.event}, {branch})")
    reach = router.reach(result)
    for name in router.waiting_on_labels(result):
        click.echo(f"route {name!r}: only if its tests' triage labels match (known when stored)")
    if not reach:
        click.echo("reaches no route")
        return
    click.echo(f"reaches {len(reach)} route(s):")
    for item in reach:
        note = "  (on_change: only if its group's status changed)" if item.on_change else ""
        click.echo(f"  - {item.route}{note}")
        for target in item.targets:
            click.echo(f"      -> {target}")


@contextmanager
def existing_store(config_file: str | None) -> Iterator[Store]:
    """The service's database, for a command that reads or revives: never a new empty one.
    Its errors (and those of what is done with it) become one ``Error:`` line."""
    with user_errors():
        database = open_store(read_config(config_file).db_path, create=False)
        try:
            yield database
        finally:
            database.close()


def echo_json(value: Any) -> None:
    """``value`` as indented JSON, as the API answers it."""
    click.echo(msgspec.json.format(msgspec.json.encode(value)).decode())


def print_items(
    config_file: str | None,
    query: Callable[[Tx], list[Item]],
    as_json: bool,
    table: Callable[[list[Item]], str],
) -> None:
    """A listing command's output: what ``query`` reads, as a table or as JSON."""
    with existing_store(config_file) as database:
        items = database.read(query)
    if as_json:
        echo_json(items)
    else:
        click.echo(table(items))


@main.command()
@config_option
@click.option("--failed", is_flag=True, help="Only dead ones and pending ones that failed before")
@click.option("--state", type=click.Choice(outbox.STATES), help="Only this state")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
def deliveries(
    config_file: str | None, failed: bool, state: str | None, limit: int, as_json: bool
) -> None:
    """List the outbox, newest first: one row per (result, target), targets masked.

    \b
    Example:
        receiver deliveries --failed
        receiver deliveries --state dead --json
    """
    where = views.DeliveryFilter(state=state, failed=failed, limit=limit)
    print_items(
        config_file, lambda tx: views.delivery_page(tx, where).items, as_json, delivery_table
    )


@main.command()
@config_option
@click.argument("result_id", metavar="RESULT_ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON, as GET /api/results/{id}/explain")
def explain(config_file: str | None, result_id: int, as_json: bool) -> None:
    """Why a result did or did not notify: each route's match (or the first `when` key that
    did not hold, with the value seen), on_change and repeat_after with the previous result
    compared against, then the deliveries and every attempt (time, answer, error).

    \b
    Example:
        receiver explain 1234
        receiver explain 1234 --json
    """
    from receiver.explain import explain as explain_result
    from receiver.explain import lines

    with existing_store(config_file) as database:
        explained = database.read(lambda tx: explain_result(tx, result_id))
    if as_json:
        echo_json(explained)
        return
    click.echo("\n".join(lines(explained)))


@main.command()
@config_option
@click.argument("delivery_id", metavar="ID", type=int)
def redeliver(config_file: str | None, delivery_id: int) -> None:
    """Send a delivery again: back to pending, due now, with a fresh attempt budget.

    The running service picks it up within seconds.

    \b
    Example:
        receiver redeliver 42
    """
    with existing_store(config_file) as database:
        view = database.write_sync(lambda tx: outbox.redeliver(tx, delivery_id))
    click.echo(f"delivery {view.id} to {view.target} is pending again (attempts reset)")


@main.command()
@config_option
@click.option("--status", help="Only results with this status (passed, failed, error, ...)")
@click.option("--branch", help="Only results of this branch")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
def results(
    config_file: str | None, status: str | None, branch: str | None, limit: int, as_json: bool
) -> None:
    """List stored results, newest first.

    \b
    Example:
        receiver results --status failed --branch main
        receiver results --limit 5 --json
    """
    where = views.ResultFilter(status=status, branch=branch, limit=limit)
    print_items(config_file, lambda tx: views.result_page(tx, where).items, as_json, result_table)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line")
@click.option("--interval", type=click.FloatRange(min=0.05), default=0.5, hidden=True)
def tail(config_file: str | None, as_json: bool, interval: float) -> None:
    """Print each new result as it is stored, until Ctrl-C.

    \b
    Example:
        receiver tail
        receiver tail --json | jq .status
    """
    from receiver.follow import follow

    with existing_store(config_file) as database:
        click.echo("following new results (Ctrl-C stops)", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            for item in follow(database, interval=interval):
                click.echo(msgspec.json.encode(item).decode() if as_json else result_line(item))


RESULT_COLUMNS = ("id", "status", "result", "branch", "provider", "stored")


def result_cells(item: views.ResultSummary) -> tuple[str, ...]:
    return (
        str(item.id),
        item.status,
        run_headline(item.status, item.total, item.passed, item.failed),
        clip(item.branch or "-", 32),
        item.provider,
        item.created_at[:19].replace("T", " "),
    )


def result_table(items: list[views.ResultSummary]) -> str:
    if not items:
        return "no results"
    return _table(RESULT_COLUMNS, [result_cells(item) for item in items])


def result_line(item: views.ResultSummary) -> str:
    return "  ".join(result_cells(item))


def _table(header: tuple[str, ...], cells: Sequence[tuple[str, ...]]) -> str:
    rows = [header, *cells]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


DELIVERY_COLUMNS = ("id", "state", "attempts", "result", "route", "target", "when", "last error")


def delivery_table(items: list[views.DeliveryView]) -> str:
    if not items:
        return "no deliveries"
    rows = [
        (
            str(d.id),
            d.state,
            str(d.attempts),
            str(d.result_id),
            clip(d.route, 24),
            clip(d.target, 48),
            ((d.sent_at if d.state == "sent" else d.next_attempt_at) or d.updated_at)[:19],
            clip(d.last_error or "", 60),
        )
        for d in items
    ]
    return _table(DELIVERY_COLUMNS, rows)


@main.command()
@config_option
@click.option(
    "--older-than",
    "older_than",
    metavar="DAYS",
    type=click.FloatRange(min=0, min_open=True),
    help="Purge what is older than this many days [default: [retention] keep_days, 90]",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing")
def purge(config_file: str | None, older_than: float | None, dry_run: bool) -> None:
    """Delete what retention would delete: results, tests, jobs, deliveries and callbacks
    older than [retention] keep_days (never a result with a pending delivery), and
    callback digests older than keep_digest_days. The running service does the same every hour.

    \b
    Example:
        receiver purge --dry-run
        receiver purge --older-than 30
    """
    from receiver.retention import cutoffs, purge_now

    with existing_store(config_file) as database:
        limits = cutoffs(read_config(config_file).retention, older_than_days=older_than)
        purged = purge_now(database, limits, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    click.echo(
        f"{verb}: {purged.results} results (with their tests and deliveries), "
        f"{purged.jobs} jobs, {purged.callbacks} callbacks, {purged.digests} callback digests"
    )


# ---------------------------------------------------------------------------------------------
# Triage


@main.command()
@config_option
@click.option("--repository", metavar="R", help="Only this repository's tests (owner/name)")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table (for CI jobs)")
def flaky(config_file: str | None, repository: str | None, as_json: bool) -> None:
    """The quarantine list: tests that passed and failed on one commit, or flip too often,
    within their last [triage] window runs. A test leaves it after a window of clean runs.

    \b
    Example:
        receiver flaky
        receiver flaky --repository acme/shop --json
    """
    print_items(
        config_file, lambda tx: views.flaky_list(tx, repository).items, as_json, flaky_table
    )


FLAKY_COLUMNS = ("test", "provider", "repository", "failed", "flips", "same commit", "last failure")


def flaky_table(items: list[views.FlakyTest]) -> str:
    if not items:
        return "no flaky tests"
    rows = [
        (
            clip(t.test + (f" [{t.cell}]" if t.cell else ""), 60),
            t.provider,
            clip(t.repository or "–", 32),
            f"{t.failures} of {t.runs}",
            f"{t.flake_rate:.0%}",
            str(t.same_commit_failures),
            (t.last_failure or "–")[:19],
        )
        for t in items
    ]
    return _table(FLAKY_COLUMNS, rows)


def _add_provider_commands() -> None:
    from receiver.provider_cli import qualgent, qualigate, qualitymax

    for group in (qualitymax, qualgent, qualigate):
        main.add_command(group)


_add_provider_commands()
