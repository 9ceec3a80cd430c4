"""``receiver qualitymax|qualgent|qualigate ...``: the providers' own endpoints from the command
line, straight to the provider with the key from the config or environment, each within its
documented rate limit. A command parses, calls one client method, prints (``--json``: the
provider's answer as it came)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from receiver.config import config_path, load_config
from receiver.providers import qualitymax as qm
from receiver.providers.errors import NotConfigured, RequestRejected
from receiver.providers.qualgent import Qualgent
from receiver.providers.qualigate import Qualigate

T = TypeVar("T")
P = TypeVar("P", qm.QualityMax, Qualgent, Qualigate)

json_option = click.option("--json", "as_json", is_flag=True, help="The provider's answer, JSON")
config_option = click.option(
    "--config", "config_file", metavar="FILE", help="TOML config file [default: $RECEIVER_CONFIG]"
)


def _cli_errors() -> Any:
    from receiver.cli import user_errors  # the one place errors become "Error: ..." lines

    return user_errors()


def call(config_file: str | None, make: Callable[[Any], P | None], env_key: str,
         fn: Callable[[P], Awaitable[T]]) -> T:  # fmt: skip
    """Build the provider from the config, run ``fn`` with it, close it; what goes wrong is one
    ``Error:`` line."""
    with _cli_errors():
        config = load_config(config_path(config_file, os.environ))
        provider = make(config)
        if provider is None or not provider.settings.api_key:
            section = env_key.split("_")[0].lower()
            raise NotConfigured(section, f"{env_key} ([{section}] api_key) is not set: set it")

        async def go() -> T:
            try:
                return await fn(provider)
            finally:
                await provider.aclose()

        return asyncio.run(go())


def emit(answer: Any, as_json: bool, lines: Callable[[Any], list[str]]) -> None:
    if as_json:
        click.echo(msgspec.json.encode(answer).decode())
        return
    for line in lines(answer):
        click.echo(line)


def _fields(answer: Any) -> list[str]:
    """A plain answer's fields, one a line."""
    values = msgspec.to_builtins(answer)
    if not isinstance(values, dict):
        return [msgspec.json.encode(values).decode()]
    return [f"{k}: {msgspec.json.encode(v).decode() if isinstance(v, dict | list) else v}"
            for k, v in values.items()]  # fmt: skip


# -- QualityMax ----------------------------------------------------------------------------------


@click.group()
def qualitymax() -> None:
    """QualityMax's partner API beyond the webhook: repositories, tests, reports, artifacts.

    SAST scans and gap analyses are jobs: `receiver submit --kind sast|gap_analysis`.
    The key is QUALITYMAX_API_KEY ([qualitymax] api_key).

    \b
    Example:
        receiver qualitymax import-repo https://github.com/acme/shop
        receiver qualitymax --help
    """


def _qm(config_file: str | None, fn: Callable[[qm.QualityMax], Awaitable[T]]) -> T:
    return call(config_file, qm.QualityMax.from_config, "QUALITYMAX_API_KEY", fn)


@qualitymax.command("import-repo")
@click.argument("url")
@click.option("--branch", default="main", show_default=True, help="The branch to import")
@click.option("--name", help="The project's name [default: from the repository]")
@click.option("--base-url", help="The application's URL, for E2E tests")
@config_option
@json_option
def import_repo(
    url: str, branch: str, name: str | None, base_url: str | None, config_file: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Import a GitHub or GitLab repository (POST /repositories/import); prints its id.

    \b
    Example:
        receiver qualitymax import-repo https://github.com/acme/shop --branch main
    """
    request = qm.ImportRequest(url=url, branch=branch, name=name, base_url=base_url)
    with _cli_errors():
        if not url.startswith(("https://github.com/", "https://gitlab.com/")):
            raise RequestRejected("QualityMax", "url: give a GitHub or GitLab HTTPS URL")
    answer = _qm(config_file, lambda c: c.import_repository(request))
    emit(answer, as_json, _fields)


@qualitymax.command("generate-api-tests")
@click.option("--openapi-url", metavar="URL", help="Where QualityMax fetches the spec")
@click.option(
    "--openapi-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The spec (JSON or YAML), sent inline",
)
@click.option("--project-id", type=int, help="The project to add the tests to")
@click.option("--instructions", help="More context for the generation")
@config_option
@json_option
def generate_api_tests(
    openapi_url: str | None, openapi_file: Path | None, project_id: int | None,
    instructions: str | None, config_file: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Generate API tests from an OpenAPI spec (POST /api-tests/generate, LLM: 10/min).

    \b
    Example:
        receiver qualitymax generate-api-tests --openapi-url https://api.acme.com/openapi.json \\
            --project-id 15 --instructions "Focus on payments"
    """
    spec = openapi_file.read_text() if openapi_file else None
    request = qm.ApiTestsRequest(
        openapi_spec=spec, openapi_url=openapi_url, project_id=project_id,
        instructions=instructions,
    )  # fmt: skip
    answer = _qm(config_file, lambda c: c.generate_api_tests(request))
    emit(answer, as_json, _fields)


@qualitymax.command("create-test-case")
@click.option("--project-id", type=int, required=True)
@click.option("--title", required=True)
@click.option("--description")
@click.option("--steps", help="The steps, one a line")
@click.option("--expected-results")
@click.option("--category", help="e2e, api, ...")
@click.option("--priority", type=int)
@click.option("--tag", "tags", multiple=True, help="A tag (repeat it)")
@config_option
@json_option
def create_test_case(
    project_id: int, title: str, description: str | None, steps: str | None,
    expected_results: str | None, category: str | None, priority: int | None,
    tags: tuple[str, ...], config_file: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Create a test case in a project (POST /test-cases).

    \b
    Example:
        receiver qualitymax create-test-case --project-id 15 \\
            --title "Login with valid credentials" --category e2e --tag auth
    """
    request = qm.TestCaseRequest(
        project_id=project_id, title=title, description=description, steps=steps,
        expected_results=expected_results, category=category, priority=priority,
        tags=list(tags) or None,
    )  # fmt: skip
    answer = _qm(config_file, lambda c: c.create_test_case(request))
    emit(answer, as_json, _fields)


@qualitymax.command("generate-test-cases")
@click.option("--project-id", type=int, required=True)
@click.option("--description", required=True, help="What to generate tests for")
@click.option("--count", type=click.IntRange(min=1), default=5, show_default=True)
@config_option
@json_option
def generate_test_cases(
    project_id: int, description: str, count: int, config_file: str | None, as_json: bool
) -> None:
    """AI-generate test cases from a description (POST /test-cases/generate, LLM: 10/min).

    \b
    Example:
        receiver qualitymax generate-test-cases --project-id 15 --count 5 \\
            --description "Login, logout, password reset and session expiry"
    """
    request = qm.GenerateTestCasesRequest(
        project_id=project_id, description=description, count=count
    )
    answer = _qm(config_file, lambda c: c.generate_test_cases(request))
    emit(answer, as_json, _fields)


@qualitymax.command()
@click.argument("job_id", metavar="PWJ_ID")
@config_option
@json_option
def report(job_id: str, config_file: str | None, as_json: bool) -> None:
    """A webhook job's full report (GET /jobs/{job_id}/report).

    \b
    Example:
        receiver qualitymax report pwj_abc123
    """
    answer = _qm(config_file, lambda c: c.report(job_id))

    def lines(found: qm.JobReport) -> list[str]:
        job = found.job
        return [
            f"{job.id}: {job.status}, {job.tests_generated} tests generated, "
            f"quality {job.quality_score}, {job.duration_seconds}s",
            *(f"  script {s.get('name')} ({s.get('framework')})" for s in found.scripts),
            *(f"  execution {e.get('status')} {e.get('duration')} ms" for e in found.executions),
        ]

    emit(answer, as_json, lines)


@qualitymax.command()
@click.argument("execution_id")
@config_option
@json_option
def logs(execution_id: str, config_file: str | None, as_json: bool) -> None:
    """A test execution's logs (GET /artifacts/{execution_id}/logs).

    \b
    Example:
        receiver qualitymax logs exec_abc123
    """
    from receiver.artifacts import render

    answer = _qm(config_file, lambda c: c.logs(execution_id))
    emit(answer, as_json, lambda found: render(found).splitlines())


@qualitymax.command()
@click.argument("execution_id")
@click.argument("kind", type=click.Choice(["screenshot", "video"]))
@config_option
def artifact(execution_id: str, kind: str, config_file: str | None) -> None:
    """Where a test's screenshot or video is (GET /artifacts/{execution_id}/screenshot|video
    answers a redirect; this prints its target, asked with the key).

    \b
    Example:
        curl -L -o shot.png "$(receiver qualitymax artifact exec_abc123 screenshot)"
    """
    click.echo(_qm(config_file, lambda c: c.artifact_location(execution_id, kind)))


# -- QualGent ------------------------------------------------------------------------------------


@click.group()
def qualgent() -> None:
    """QualGent's API: apps, test cases and test runs (runs themselves: receiver submit).

    The key is QUALGENT_API_KEY ([qualgent] api_key).

    \b
    Example:
        receiver qualgent upload-app build/app.apk --app-name MyApp --version 1.0.0
        receiver qualgent jobs
    """


def _qg(config_file: str | None, fn: Callable[[Qualgent], Awaitable[T]]) -> T:
    return call(config_file, Qualgent.from_config, "QUALGENT_API_KEY", fn)


@qualgent.command("upload-app")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--app-name", required=True, help="The application's name (required)")
@click.option("--version", "version", required=True, help="Its version number (required)")
@click.option("--os", "os_name", type=click.Choice(["android", "ios"]), help="[from the file]")
@config_option
@json_option
def upload_app(
    file: Path, app_name: str, version: str, os_name: str | None, config_file: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Upload an app (POST /v1/apps/upload, multipart); its id is then `latest`.

    \b
    Example:
        receiver qualgent upload-app build/app.apk --app-name MyApp --version 1.0.0
        receiver submit --provider qualgent --app latest --test-case TC ...
    """
    answer = _qg(
        config_file, lambda c: c.upload_app(file, app_name=app_name, version=version, os=os_name)
    )

    def lines(found: Any) -> list[str]:
        uploaded = found.file
        if uploaded is None:
            return ["uploaded"]
        return [
            f"uploaded {uploaded.original_name} as {uploaded.filename} "
            f"({uploaded.app_name} {uploaded.version}, {uploaded.os}, {uploaded.file_size} bytes)"
        ]

    emit(answer, as_json, lines)


@qualgent.command()
@config_option
@json_option
def apps(config_file: str | None, as_json: bool) -> None:
    """The organization's apps (GET /v1/apps).

    \b
    Example:
        receiver qualgent apps
    """
    answer = _qg(config_file, lambda c: c.list_apps())
    emit(answer, as_json, lambda found: [_app_line(a) for a in found])


@qualgent.command()
@click.argument("app_id", default="latest")
@config_option
@json_option
def app(app_id: str, config_file: str | None, as_json: bool) -> None:
    """One app, or the newest upload (GET /v1/apps/{id} or /v1/apps/latest).

    \b
    Example:
        receiver qualgent app latest
    """
    answer = _qg(config_file, lambda c: c.get_app(app_id))
    emit(answer, as_json, lambda a: [_app_line(a)])


def _app_line(app: Any) -> str:
    return f"{app.id}  {app.name} {app.version} ({app.os})"


@qualgent.command("test-cases")
@click.option("--category", metavar="ID", help="Only this category's")
@config_option
@json_option
def test_cases(category: str | None, config_file: str | None, as_json: bool) -> None:
    """The organization's test cases (GET /v1/test-cases/list).

    \b
    Example:
        receiver qualgent test-cases --category cat_smoke
    """
    answer = _qg(config_file, lambda c: c.list_test_cases(category))

    def lines(found: list[Any]) -> list[str]:
        return [f"{c.id}  {c.name} ({c.status})" for c in found]

    emit(answer, as_json, lines)


@qualgent.command()
@config_option
@json_option
def jobs(config_file: str | None, as_json: bool) -> None:
    """The organization's test runs (GET /v1/jobs/list).

    \b
    Example:
        receiver qualgent jobs --json
    """
    answer = _qg(config_file, lambda c: c.list_jobs())

    def lines(found: Any) -> list[str]:
        return [
            f"{r.id}  {r.test_case.name if r.test_case else ''} · {r.device or '-'}: "
            f"{r.status} {r.progress}%"
            for r in found.test_runs
        ]

    emit(answer, as_json, lines)


# -- Qualigate -----------------------------------------------------------------------------------


@click.group()
def qualigate() -> None:
    """Qualigate's API beyond trigger and results (those: receiver submit).

    The key is QUALIGATE_API_KEY ([qualigate] api_key).

    \b
    Example:
        receiver qualigate ci-config PROJECT_ID
    """


@qualigate.command("ci-config")
@click.argument("project_id")
@config_option
@json_option
def ci_config(project_id: str, config_file: str | None, as_json: bool) -> None:
    """A project's CI/CD configuration (GET /api/v1/ci-config).

    \b
    Example:
        receiver qualigate ci-config 990e8400-e29b-41d4-a716-446655440000
    """
    answer = call(
        config_file, Qualigate.from_config, "QUALIGATE_API_KEY", lambda c: c.ci_config(project_id)
    )

    def lines(found: Any) -> list[str]:
        ci = found.ci_config
        head = f"{found.project_name} ({found.project_id})"
        if ci is None:
            return [head, "  no CI configuration"]
        return [
            head,
            f"  provider {ci.provider}, on {', '.join(ci.trigger_on)}",
            f"  branches {', '.join(ci.branches)}, suite {ci.test_suite_id}",
        ]

    emit(answer, as_json, lines)
