"""What bounding a callback's numbers and nesting costs per callback, in process.

    .venv/bin/python -m bench.decode_cost [--number 20000]

For three bodies (the seed callback; one with 40 tests and five custom_data keys; that with
custom_data nested 6 levels too), it prints the best of 7 runs, in microseconds per body, of:

- ``unbounded``: msgspec decoding into the callback's structs with plain ``int`` counts (before);
- ``bounded``: the same into ``qualitymax.Callback``, whose counts carry ``msgspec.Meta`` bounds;
- ``decode_callback``: what the intake runs, the bounded decode plus the nesting check;
- ``check``: the nesting check alone (the walk of custom_data).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver import limits
from receiver.demo import seed_callback
from receiver.providers import qualitymax as qm
from receiver.results import CustomData


class UnboundedResults(msgspec.Struct, kw_only=True):
    status: str | None = None
    total_tests: int | None = None
    passed: int | None = None
    failed: int | None = None
    duration_ms: int | float | None = None
    report_app_url: str | None = None
    report_url: str | None = None
    tests: list[qm.CallbackTest] = msgspec.field(default_factory=list)
    failures: list[str | qm.CallbackFailure] = msgspec.field(default_factory=list)


class UnboundedCallback(msgspec.Struct, kw_only=True):
    event: str = "test_results"
    job_id: str | None = None
    custom_data: CustomData = msgspec.field(default_factory=dict)
    workflow_summary: str | None = None
    results: UnboundedResults | None = None


def bodies() -> dict[str, bytes]:
    seed = json.loads(seed_callback())
    many = json.loads(seed_callback())
    test = many["results"]["tests"][0]
    many["results"]["tests"] = [{**test, "test": f"test {i}"} for i in range(40)]
    many["custom_data"].update(pr_number=42, repository="acme/shop", sha="0" * 40)
    nested = json.loads(json.dumps(many))
    nested["custom_data"]["build"] = {"a": {"b": {"c": {"d": {"e": [1, 2]}}}}}
    return {
        "seed": _encode(seed),
        "40 tests": _encode(many),
        "40 tests, nested custom_data": _encode(nested),
    }


def _encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def check(callback: qm.Callback) -> bool:
    """The nesting check of ``decode_callback``, on an already decoded callback."""
    return limits.too_deep(callback.custom_data, limits.MAX_CUSTOM_DATA_DEPTH)


def best(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per run")
    number = parser.parse_args().number
    for name, body in bodies().items():
        callback = qm.decode_callback(body)
        figures = {
            "unbounded": best(
                lambda b=body: msgspec.json.decode(b, type=UnboundedCallback), number
            ),
            "bounded": best(lambda b=body: msgspec.json.decode(b, type=qm.Callback), number),
            "decode_callback": best(lambda b=body: qm.decode_callback(b), number),
            "check": best(lambda c=callback: check(c), number),
        }
        shown = "  ".join(f"{key} {value:6.2f} us" for key, value in figures.items())
        print(f"{name:30} ({len(body):5} bytes)  {shown}")


if __name__ == "__main__":
    main()
