"""``receiver demo``: the loop on this machine, in seconds, on a throwaway database."""

from __future__ import annotations

import json
import secrets
import tempfile
from importlib import resources
from pathlib import Path

import click
import httpx

from receiver.process import ServiceProcess
from receiver.signatures import sign

DEMO_CONFIG = """
[server]
max_body_bytes = 1048576
"""


def seed_callback() -> bytes:
    """The callback example of QualityMax's partner API document."""
    return resources.files("receiver.data").joinpath("seed_callback.json").read_bytes()


def run_demo(_: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="receiver-demo-") as tmp:
        folder = Path(tmp)
        config = folder / "receiver.toml"
        config.write_text(DEMO_CONFIG)
        secret, token = secrets.token_hex(16), secrets.token_hex(16)
        env = {
            "QUALITYMAX_WEBHOOK_SECRET": secret,
            "RECEIVER_API_TOKEN": token,
            "RECEIVER_DB": str(folder / "demo.db"),
        }
        click.echo("Starting receiver on a free port with a throwaway database ...")
        service = ServiceProcess(config, env, folder / "serve.log").start()
        try:
            return _exercise(service.url, secret, token)
        finally:
            service.stop()


def _exercise(url: str, secret: str, token: str) -> int:
    body = seed_callback()
    headers = {"X-QualityMax-Signature": sign(body, secret), "Content-Type": "application/json"}
    first = httpx.post(f"{url}/callbacks/qualitymax", content=body, headers=headers)
    click.echo(f"POST /callbacks/qualitymax (signed)  -> {first.status_code} {first.text}")
    again = httpx.post(f"{url}/callbacks/qualitymax", content=body, headers=headers)
    click.echo(f"the same callback again              -> {again.status_code} {again.text}")
    forged = httpx.post(
        f"{url}/callbacks/qualitymax", content=body, headers={"X-QualityMax-Signature": "sha256=0"}
    )
    click.echo(f"a forged signature                   -> {forged.status_code} {forged.text}")
    result_id = first.json()["result_id"]
    auth = {"Authorization": f"Bearer {token}"}
    result = httpx.get(f"{url}/api/results/{result_id}", headers=auth).json()
    click.echo(f"GET /api/results/{result_id}:")
    click.echo(json.dumps(result, indent=2))
    ok = first.status_code == 200 and again.json().get("duplicate") and forged.status_code == 401
    click.echo("demo finished" if ok else "demo FAILED")
    return 0 if ok else 1
