"""Fixtures that build real things: config files, SQLite files, the app, a served process."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from receiver.app import create_app
from receiver.config import Config, load_config
from receiver.demo import seed_callback
from receiver.process import ServiceProcess, free_port
from receiver.signatures import sign
from receiver.simulator.process import SimulatorProcess
from tests.sinks import GITHUB_TOKEN, FakeGithub, FakeSlack, HttpSink


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Apprise sends from its own threads; one still retrying a sink that its test has closed
    logs its warning after pytest has closed the captured stream, and logging would print a
    "--- Logging error ---" traceback for it under the summary. Nothing is lost by dropping it."""
    logging.raiseExceptions = False


SECRET = "test-webhook-secret"
TOKEN = "test-api-token"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment a user would set, pointing at a database under tmp_path."""
    return {
        "QUALITYMAX_WEBHOOK_SECRET": SECRET,
        "RECEIVER_API_TOKEN": TOKEN,
        "RECEIVER_DB": str(tmp_path / "receiver.db"),
    }


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str = "") -> Path:
        path = tmp_path / "receiver.toml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def config(write_config: Callable[[str], Path], env: dict[str, str]) -> Config:
    return load_config(write_config(""), env)


@pytest.fixture
def client(config: Config) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(config)) as test_client:
        yield test_client


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-QualityMax-Signature": sign(body, secret), "Content-Type": "application/json"}


def callback_body(**changes: Any) -> bytes:
    """The seed callback (QualityMax's document example), with top-level keys changed."""
    document = json.loads(seed_callback())
    document.update(changes)
    return json.dumps(document).encode()


@pytest.fixture
def service(
    tmp_path: Path, write_config: Callable[[str], Path], env: dict[str, str]
) -> Iterator[ServiceProcess]:
    """``receiver serve`` as a real process on a free loopback port."""
    process = ServiceProcess(write_config(""), env, tmp_path / "serve.log").start()
    yield process
    process.kill()


@pytest.fixture
def http(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=10) as c:
        yield c


# ---------------------------------------------------------------------------------------------
# The QualityMax simulator and a service that submits to it (issue 5).

QM_KEY = "qm-test-partner-key"
QM_SLUG = "acme"


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    """``receiver simulate`` as a real process: the partner API on a free loopback port."""
    process = SimulatorProcess(
        {
            "QUALITYMAX_API_KEY": QM_KEY,
            "QUALITYMAX_WEBHOOK_SECRET": SECRET,
            "QUALITYMAX_PARTNER_SLUG": QM_SLUG,
            "RECEIVER_SIMULATOR_DELAY": "0.2",
        },
        tmp_path / "simulate.log",
    ).start()
    yield process
    process.kill()


@pytest.fixture
def partner_env(env: dict[str, str], simulator: SimulatorProcess) -> dict[str, str]:
    """The service's environment with QualityMax pointed at the simulator."""
    return {
        **env,
        "QUALITYMAX_API_KEY": QM_KEY,
        "QUALITYMAX_PARTNER_SLUG": QM_SLUG,
        "QUALITYMAX_BASE_URL": simulator.url,
    }


@pytest.fixture
def linked_service(
    tmp_path: Path, write_config: Callable[[str], Path], partner_env: dict[str, str]
) -> Iterator[ServiceProcess]:
    """``receiver serve`` that submits to the simulator and is reachable for its callbacks."""
    port = free_port()
    env = {**partner_env, "RECEIVER_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = ServiceProcess(write_config(""), env, tmp_path / "serve.log", port=port).start()
    yield process
    process.kill()


# -- notification targets: real servers on loopback (tests/sinks.py)


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    server = HttpSink()
    yield server
    server.close()


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    fake = FakeGithub(GITHUB_TOKEN)
    yield fake
    fake.close()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the server these machines run on 127.0.0.1:5432 (trust auth); a fresh database
# per test, copied from a template made once per run.

POSTGRES_ADMIN = os.environ.get(
    "RECEIVER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database to copy, made for this run; skipped with the reason when no server answers."""
    import psycopg

    name = f"receiver_template_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"no PostgreSQL server answers at {POSTGRES_ADMIN} ({exc}); set "
            "RECEIVER_TEST_POSTGRES to one"
        )
    yield name
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test: its URL."""
    import psycopg

    name = f"receiver_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives, once for each backend: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "receiver.db")
    url: str = request.getfixturevalue("postgres_url")
    return url
