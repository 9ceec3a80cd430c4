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


def test_every_stage_is_one_pinned_python_3_11_slim() -> None:
    bases = {a.split()[0] for a in args_of("FROM")}
    assert len(bases) == 1, bases  # one patch release for building and running
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base  # never a floating tag


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of the stage ``FROM ... AS name`` (the last one: name "")."""
    steps = instructions()
    starts = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    for begin, end in zip(starts, [*starts[1:], len(steps)], strict=True):
        words = steps[begin][1].split()
        if (words[-1] if len(words) == 3 else "") == name:
            return steps[begin:end]
    raise AssertionError(f"no stage {name!r}")


def test_dependencies_are_installed_from_the_lock_before_the_code_is_copied() -> None:
    deps = stage("deps")
    copied = [rest for word, rest in deps if word == "COPY"]
    assert copied == ["deploy/requirements.lock /tmp/requirements.lock"]  # no code in this layer
    (install,) = [rest for word, rest in deps if word == "RUN"]
    assert "--require-hashes" in install and "-r /tmp/requirements.lock" in install
    final = final_stage()
    first_copy = next(rest for word, rest in final if word == "COPY")
    assert first_copy == "--from=deps /opt/venv /opt/venv"  # the dependencies' own layer first
    build = stage("build")
    assert "--require-hashes --no-deps -r /tmp/build.lock" in " ".join(
        rest for word, rest in build if word == "RUN"
    )
    assert "--no-deps" in " ".join(rest for word, rest in final if word == "RUN")


def test_the_service_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_the_database_is_on_the_volume() -> None:
    env = " ".join(rest for word, rest in final_stage() if word == "ENV")
    assert "RECEIVER_DB=/data/receiver.db" in env
    assert json.loads(args_of("VOLUME")[0]) == ["/data"]


def test_the_command_is_the_entrypoint_serving_on_8080() -> None:
    command = json.loads(args_of("CMD")[-1])
    assert command == ["/app/deploy/entrypoint.sh"]
    copied = [shlex.split(rest) for word, rest in final_stage() if word == "COPY"]
    assert ["deploy/entrypoint.sh", "deploy/litestream.yml", "/app/deploy/"] in copied
    script = (REPO / "deploy" / "entrypoint.sh").read_text()
    assert 'serve="receiver serve --host 0.0.0.0 --port 8080"' in script
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


@pytest.fixture
def fly_postgres() -> dict[str, object]:
    return tomllib.loads((REPO / "deploy" / "fly.postgres.toml").read_text())


def test_fly_on_postgresql_is_fly_toml_without_the_volume_on_two_rolling_machines(
    fly: dict,  # type: ignore[type-arg]
    fly_postgres: dict,  # type: ignore[type-arg]
) -> None:
    """deploy/fly.postgres.toml, copied over fly.toml: the same service, check and stop; no
    volume and no RECEIVER_DB (the image's /data path would win over nothing: the URL is a
    secret); two machines kept running; one replaced at a time."""
    for key in ("app", "primary_region", "kill_signal", "kill_timeout", "build", "vm"):
        assert fly_postgres[key] == fly[key], key
    same = {k: v for k, v in fly["http_service"].items() if k != "min_machines_running"}
    assert {k: fly_postgres["http_service"][k] for k in same} == same
    assert fly_postgres["http_service"]["min_machines_running"] >= 2
    assert "mounts" not in fly_postgres
    assert "RECEIVER_DB" not in fly_postgres["env"]
    assert not set(fly_postgres["env"]) & {*SECRETS, "LITESTREAM_REPLICA_URL"}
    assert fly_postgres["deploy"]["strategy"] == "rolling"


def test_the_two_machine_steps_use_that_file_and_set_the_database_as_a_secret() -> None:
    section = deploy_section().split("### Two machines and PostgreSQL", 1)[1]
    for step in (
        "cp deploy/fly.postgres.toml fly.toml",
        "--variable-name RECEIVER_DB",
        "fly scale count 2",
        "fly deploy --strategy rolling",
        "RECEIVER_DB='postgresql://",
    ):
        assert step in section, step


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


def test_the_lock_and_the_wheel_in_a_fresh_venv_serve_health(tmp_path: Path) -> None:
    """What the image's stages do, minus Docker: the lock with its hashes into a fresh venv, the
    wheel without dependencies, pip check, then the image's command serving /health."""
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
    pip = [str(bin_dir / "pip"), "install", "-q", "--no-deps"]
    lock = str(REPO / "deploy" / "requirements.lock")
    subprocess.run([*pip, "--require-hashes", "-r", lock], check=True, timeout=600)
    subprocess.run([*pip, str(wheel)], check=True, timeout=300)
    checked = subprocess.run(
        [str(bin_dir / "pip"), "check"], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout  # the lock brought every dependency
    assert (bin_dir / "litestream").exists()
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
    entrypoint = REPO / "deploy" / "entrypoint.sh"
    proc = subprocess.Popen(
        ["/bin/sh", str(entrypoint), "--host", "127.0.0.1", "--port", str(port)],
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
    root = tmp_path / "image"
    for word, rest in stage("build"):
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
