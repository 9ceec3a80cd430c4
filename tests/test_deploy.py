"""The deploy files: they parse, name paths and commands that exist, and the image's command runs.

No Docker engine runs here, so the image is checked by its parts: the Dockerfile's instructions,
fly.toml, and the package installed from a wheel into a fresh venv, started as the image starts it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from receiver.cli import main
from receiver.process import ServiceProcess, free_port

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
SECRETS = ["RECEIVER_API_TOKEN", "QUALITYMAX_WEBHOOK_SECRET", "QUALITYMAX_API_KEY", "GITHUB_TOKEN"]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    parsed = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            parsed.append((word.upper(), rest.strip()))
    return parsed


def args_of(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_every_stage_is_python_3_11_slim() -> None:
    assert [a.split()[0] for a in args_of("FROM")] == ["python:3.11-slim", "python:3.11-slim"]


def test_the_service_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_the_database_is_on_the_volume() -> None:
    env = " ".join(rest for word, rest in final_stage() if word == "ENV")
    assert "RECEIVER_DB=/data/receiver.db" in env
    assert json.loads(args_of("VOLUME")[0]) == ["/data"]


def test_the_command_is_receiver_serve_on_8080() -> None:
    command = json.loads(args_of("CMD")[-1])
    assert command == ["receiver", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert "serve" in main.commands
    assert args_of("EXPOSE") == ["8080"]


def test_copied_paths_exist_and_are_not_dockerignored() -> None:
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for rest in args_of("COPY"):
        if rest.startswith("--from"):
            continue
        for source in shlex.split(rest)[:-1]:
            assert (REPO / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    assert "config/receiver.toml" in " ".join(args_of("COPY"))
    assert "README.md" not in ignored  # the package's metadata reads it


def healthcheck_code() -> str:
    rest = args_of("HEALTHCHECK")[0]
    command = json.loads(rest[rest.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    code: str = command[2]
    return code


def test_the_healthcheck_passes_against_a_real_service(service: ServiceProcess) -> None:
    code = healthcheck_code().replace("127.0.0.1:8080", f"127.0.0.1:{service.port}")
    assert "/health" in code
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0


def test_the_healthcheck_fails_when_nothing_answers() -> None:
    code = healthcheck_code().replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert done.returncode != 0


# -- fly.toml ------------------------------------------------------------------------------------


@pytest.fixture
def fly() -> dict[str, object]:
    return tomllib.loads((REPO / "fly.toml").read_text())


def test_fly_serves_the_images_port_with_a_health_check(fly: dict) -> None:  # type: ignore[type-arg]
    service = fly["http_service"]
    assert service["internal_port"] == 8080
    assert service["checks"][0]["path"] == "/health"
    assert service["checks"][0]["method"] == "GET"
    assert (REPO / fly["build"]["dockerfile"]).exists()


def test_fly_mounts_the_database_volume(fly: dict) -> None:  # type: ignore[type-arg]
    mount = fly["mounts"][0]
    assert mount["destination"] == "/data"
    assert fly["env"]["RECEIVER_DB"].startswith(mount["destination"] + "/")
    assert f"fly volumes create {mount['source']}" in README


def test_fly_toml_holds_no_secret(fly: dict) -> None:  # type: ignore[type-arg]
    assert not set(fly["env"]) & set(SECRETS)


# -- README and the CI example ---------------------------------------------------------------------


def deploy_section() -> str:
    return README.split("## Deploy to fly.io", 1)[1].split("\n## ", 1)[0]


def test_the_deploy_section_sets_every_secret_with_fly_secrets() -> None:
    section = deploy_section()
    command = section[section.index("fly secrets set") :].split("```", 1)[0]
    for name in [*SECRETS, "RECEIVER_PUBLIC_URL", "QUALITYMAX_PARTNER_SLUG"]:
        assert f"{name}=" in command, name
    for step in ("fly launch", "fly deploy", "/health", "/callbacks/qualitymax"):
        assert step in section


def test_the_github_actions_example_submits_with_the_custom_data_routing_needs() -> None:
    workflow = yaml.safe_load((REPO / "examples/github-actions.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job.get("steps", [])]
    script = next(s["run"] for s in steps if "receiver submit" in s.get("run", ""))
    submit = main.commands["submit"]
    known = {opt for p in submit.params for opt in getattr(p, "opts", [])}
    used = set(re.findall(r"(--[a-z-]+)", script.split("receiver submit", 1)[1]))
    assert used <= known
    assert {"--url", "--feature", "--custom-data", "--wait"} <= used
    for key in ("pr_number", "repository", "sha", "branch"):
        assert f"{key}: ${key}" in script


def test_every_command_has_help_with_an_example() -> None:
    for name in ("submit", "simulate", "demo"):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, name


# -- the image's command in a clean venv -----------------------------------------------------------


def test_a_wheel_installed_in_a_fresh_venv_serves_health(tmp_path: Path) -> None:
    """What `pip install /src` then `receiver serve` do in the image, minus Docker."""
    src = build_context(tmp_path)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
        check=True,
        timeout=300,
    )
    wheel = next(dist.glob("receiver-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    subprocess.run([str(bin_dir / "pip"), "install", "-q", str(wheel)], check=True, timeout=600)
    app = tmp_path / "app"  # the image's WORKDIR, with only the config copied in
    (app / "config").mkdir(parents=True)
    (app / "config" / "receiver.toml").write_text((REPO / "config/receiver.toml").read_text())
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "RECEIVER_CONFIG": str(app / "config" / "receiver.toml"),
        "RECEIVER_DB": str(tmp_path / "data" / "receiver.db"),
        "QUALITYMAX_WEBHOOK_SECRET": "image-test-secret",
    }
    helped = subprocess.run(
        [str(bin_dir / "receiver"), "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "serve" in helped.stdout
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(bin_dir / "receiver"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=app,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}/health", proc), (
            tmp_path / "serve.log"
        ).read_text()
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert (tmp_path / "data" / "receiver.db").exists()


def build_context(tmp_path: Path) -> Path:
    """/src as the build stage sees it: only what its COPY lines bring in."""
    steps = instructions()
    build_stage = steps[: [w for w, _ in steps].index("FROM", 1)]
    root = tmp_path / "image"
    for word, rest in build_stage:
        if word != "COPY":
            continue
        *sources, dest = shlex.split(rest)
        for source in sources:
            target = root / dest.lstrip("/")
            if dest.endswith("/"):
                target = target / Path(source).name
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(REPO / source, target)
    return root / "src"


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=1).json() == {"status": "ok"}:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False
