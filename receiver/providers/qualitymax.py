"""QualityMax: the callback payload as its partner API documents it, and its normalisation.

Unknown fields are ignored by the structs (the raw body is stored verbatim anyway), so a new field
or a new ``event`` value from QualityMax is taken, never rejected.
"""

from __future__ import annotations

import msgspec

from receiver.results import CustomData, Failure, Result, TestCase, normalise_status

NAME = "qualitymax"
SIGNATURE_HEADER = "x-qualitymax-signature"


class CallbackTest(msgspec.Struct, kw_only=True):
    test: str | None = None
    name: str | None = None
    status: str | None = None
    duration_ms: int | float | None = None
    screenshot_url: str | None = None
    video_url: str | None = None
    execution_id: str | None = None
    error: str | None = None
    error_message: str | None = None


class CallbackFailure(msgspec.Struct, kw_only=True):
    test: str | None = None
    name: str | None = None
    error: str | None = None
    message: str | None = None
    error_message: str | None = None


class CallbackResults(msgspec.Struct, kw_only=True):
    status: str | None = None
    total_tests: int | None = None
    passed: int | None = None
    failed: int | None = None
    duration_ms: int | float | None = None
    report_app_url: str | None = None
    report_url: str | None = None
    tests: list[CallbackTest] = msgspec.field(default_factory=list)
    # The document shows only an empty list; accept plain strings and objects alike.
    failures: list[str | CallbackFailure] = msgspec.field(default_factory=list)


class Callback(msgspec.Struct, kw_only=True):
    event: str = "test_results"
    job_id: str | None = None
    custom_data: CustomData = msgspec.field(default_factory=dict)
    workflow_summary: str | None = None
    results: CallbackResults | None = None


def decode_callback(body: bytes) -> Callback:
    """Decode a callback body; raises msgspec.DecodeError / ValidationError on bad input."""
    return msgspec.json.decode(body, type=Callback)


def to_result(callback: Callback) -> Result | None:
    """The normalised result a callback carries; None for an event without one."""
    results = callback.results
    if results is None:
        return None
    tests = [_test_case(t) for t in results.tests]
    passed = results.passed if results.passed is not None else _count(tests, "passed")
    failed = results.failed if results.failed is not None else _count(tests, "failed")
    return Result(
        provider=NAME,
        event=callback.event,
        status=normalise_status(results.status),
        raw_status=results.status,
        total=results.total_tests if results.total_tests is not None else len(tests),
        passed=passed,
        failed=failed,
        duration_ms=_ms(results.duration_ms),
        report_url=results.report_app_url or results.report_url,
        summary=callback.workflow_summary,
        external_job_id=callback.job_id,
        custom_data=callback.custom_data,
        tests=tests,
        failures=_failures(results, tests),
    )


def _test_case(test: CallbackTest) -> TestCase:
    return TestCase(
        name=test.test or test.name or "(unnamed test)",
        status=normalise_status(test.status) if test.status else "error",
        duration_ms=_ms(test.duration_ms),
        error=test.error or test.error_message,
        screenshot_url=test.screenshot_url,
        video_url=test.video_url,
        execution_id=test.execution_id,
    )


def _failures(results: CallbackResults, tests: list[TestCase]) -> list[Failure]:
    failures = [_failure(f) for f in results.failures]
    if failures:
        return failures
    # No explicit list: the failing tests with their errors are the failures.
    return [
        Failure(test=t.name, error=t.error or t.status)
        for t in tests
        if t.status in ("failed", "error", "timeout")
    ]


def _failure(failure: str | CallbackFailure) -> Failure:
    if isinstance(failure, str):
        return Failure(error=failure)
    error = failure.error or failure.message or failure.error_message or "(no message)"
    return Failure(test=failure.test or failure.name, error=error)


def _count(tests: list[TestCase], status: str) -> int:
    return sum(1 for t in tests if t.status == status)


def _ms(value: int | float | None) -> int | None:
    return None if value is None else int(value)
