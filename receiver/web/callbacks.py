"""``POST /callbacks/qualitymax[/{job_key}]``: read within the limit, hand to the intake, answer."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Final, cast

import msgspec
from litestar import Litestar, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, InternalServerException
from litestar.params import Body, HeaderParameter
from litestar.types import HTTPRequestEvent, Message, Receive, Scope, Send

from receiver.callbacks import Accepted, PayloadRejected, SignatureRejected
from receiver.clock import utcnow
from receiver.logs import get_logger
from receiver.services import Services
from receiver.store import NotWritable
from receiver.web.deadlines import REQUEST_TIMEOUT, body_too_slow
from receiver.web.errors import (
    BODY_ERRORS,
    ErrorBody,
    error_answers,
    report_internal,
    too_large,
)

log = get_logger("receiver.callbacks")

CALLBACK_PATH: Final = "/callbacks/qualitymax"
NOT_CONFIGURED: Final = (
    "QualityMax callbacks are not configured on this service: set QUALITYMAX_WEBHOOK_SECRET "
    "(or [qualitymax] webhook_secret) and restart"
)

# For the OpenAPI document only: serve_callback reads the header and the raw body itself.
Signature = Annotated[
    str,
    HeaderParameter(
        name="X-QualityMax-Signature",
        description="sha256=<hex>: HMAC-SHA256 of the raw body with the webhook secret",
    ),
]
CallbackDocument = Annotated[
    dict[str, Any],
    Body(
        media_type=RequestEncodingType.JSON,
        title="A QualityMax callback",
        description="The document QualityMax posts, kept byte for byte: the signature is "
        "verified over the raw body before it is decoded.",
    ),
]


@post(
    ["/callbacks/qualitymax", "/callbacks/qualitymax/{job_key:str}"],
    status_code=200,
    summary="Take a QualityMax callback",
    description="Verified with X-QualityMax-Signature (sha256=<hex> over the raw body), "
    "stored, then answered. A repeat of a stored body answers 200 with duplicate=true.",
    tags=["callbacks"],
    middleware=[lambda app: serve_callback],
    responses=error_answers(
        {
            400: "Signed, but not a JSON object or not a callback that can be read; the raw "
            "body is kept for inspection",
            401: "Missing or wrong X-QualityMax-Signature",
            503: "QualityMax callbacks are not configured on this service (no webhook secret), "
            "or the store cannot write (a full disk): not stored, send it again later",
            **BODY_ERRORS,
        }
    ),
)
async def take_callback(data: CallbackDocument, signature: Signature) -> Accepted:
    """Declares the route (paths, 405 for other methods, the OpenAPI document).

    ``serve_callback`` answers every request that reaches it: see there why.
    """
    raise NotImplementedError("served by serve_callback")


class CallbacksFirst:
    """The served ASGI app: callback POSTs go straight to ``serve_callback``, the rest to Litestar.

    Measured (README, Performance): Litestar's app, router and exception layers in front of
    ``serve_callback`` cost about a sixth of the callback throughput at 16 connections. The
    route stays declared in Litestar (OpenAPI, 405 for other methods) and answers the same if
    a request reaches it there.
    """

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.state = app.state  # as on Litestar: tools and tests find the services there

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fields = cast("dict[str, Any]", scope)  # ASGI's own keys; Litestar's types are stricter
        if fields["type"] == "http" and fields["method"] == "POST":
            matched, job_key = match_callback_path(fields["path"])
            if matched:
                fields["litestar_app"] = self.app
                fields["path_params"] = {} if job_key is None else {"job_key": job_key}
                return await _serve_guarded(scope, receive, send)
        await self.app(scope, receive, send)


def match_callback_path(path: str) -> tuple[bool, str | None]:
    """(is it a callback path, its job_key): the paths Litestar's route matches."""
    path = path.rstrip("/")
    if path == CALLBACK_PATH:
        return True, None
    head, _, job_key = path.rpartition("/")
    if head == CALLBACK_PATH and job_key:
        return True, job_key
    return False, None


async def _serve_guarded(scope: Scope, receive: Receive, send: Send) -> None:
    """What Litestar's exception layer does for this route: errors in the one error shape."""
    started = False

    async def tracked(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    try:
        await serve_callback(scope, receive, tracked)
    except HTTPException as exc:
        if not started:
            await _answer_error(scope, send, exc.status_code, exc.detail)
    except Exception as exc:
        detail = report_internal(scope["path"], exc)
        if not started:
            await _answer_error(scope, send, 500, detail)


async def _answer_error(scope: Scope, send: Send, status: int, detail: str) -> None:
    """As Litestar's exception layer would, 5xx counted as its ``before_send`` does."""
    if status >= 500:
        services: Services = scope["litestar_app"].state.services
        services.metrics.count_server_error(status)
    await _answer(send, status, msgspec.json.encode(ErrorBody(detail)))


async def serve_callback(scope: Scope, receive: Receive, send: Send) -> None:
    """The callback route as a plain ASGI app: served by ``CallbacksFirst`` in front of
    Litestar, or as the route's middleware when a request reaches Litestar's router.

    Measured: Litestar's handler machinery (request, signature model, response) cost as much
    CPU as verifying, decoding and storing the callback together; this path skips it and
    answers the same statuses, bodies and headers.
    """
    services: Services = scope["litestar_app"].state.services
    if not services.intake.secrets:  # a polling-only service: nothing could be verified
        status, payload = _refused(services, "not_configured", 503, NOT_CONFIGURED)
        return await _answer(send, status, payload)
    received_at = utcnow()
    headers = _headers(scope)
    server = services.config.server
    try:
        async with asyncio.timeout(server.body_timeout_seconds):
            body = await _read_body(receive, headers, server.max_body_bytes)
    except TimeoutError:
        detail = body_too_slow(server.body_timeout_seconds)
        status, payload = _refused(services, "too_slow", REQUEST_TIMEOUT, detail)
        return await _answer(send, status, payload, close=True)
    if body is None:
        status, payload = _refused(services, "too_large", 413, _too_large(services))
        return await _answer(send, status, payload)
    # Read from the path: the parameter exists on only one of the two paths.
    job_key: str | None = scope["path_params"].get("job_key")
    started = time.perf_counter()
    try:
        accepted = await services.intake.take(
            job_key=job_key, headers=headers, body=body, received_at=received_at
        )
    except SignatureRejected:
        status, payload = _refused(
            services, "unsigned", 401, "Missing or invalid X-QualityMax-Signature"
        )
        return await _answer(send, status, payload)
    except PayloadRejected as exc:
        log.info("callback", id=exc.callback_id, outcome="rejected", reason=exc.detail)
        status, payload = _refused(services, "rejected", 400, exc.detail)
        return await _answer(send, status, payload)
    except NotWritable as exc:  # a full disk, a read-only file: the sender may try again later
        log.error("callback.not_stored", error=str(exc))
        status, payload = _refused(services, "error", 503, f"Not stored: {exc}")
        return await _answer(send, status, payload)
    except Exception:
        services.metrics.count_callback("error")  # answered 500 by whoever serves this
        raise
    elapsed = time.perf_counter() - started
    # Answered first: the client's next callback should not wait for our log line.
    try:
        await _answer(send, 200, msgspec.json.encode(accepted))
    finally:
        _record(services, accepted, job_key, elapsed)


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-case names (as ASGI gives them); the first of repeated headers wins."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes | None:
    """The whole body, or None once it is over ``limit`` (announced or streamed).

    Done once the announced Content-Length has arrived: granian sends the body with
    ``more_body`` set, then an empty last message, and waiting for that message cost another
    hand-over between granian's thread and the event loop (measured: about +9 % callbacks a
    second at 16 connections).
    """
    announced = headers.get("content-length", "")
    expected = int(announced) if announced.isdigit() else None
    if expected is not None and expected > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")
        chunk = cast("HTTPRequestEvent", message)["body"]
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if size == expected or not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(send: Send, status: int, payload: bytes, *, close: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:  # the body was not read to its end: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _record(services: Services, accepted: Accepted, job_key: str | None, elapsed: float) -> None:
    outcome = "duplicate" if accepted.duplicate else "accepted"
    services.metrics.count_callback(outcome)
    services.metrics.ingest_seconds.observe(elapsed)
    if job_key is not None and accepted.job_id is None:
        log.warning(
            "callback.unknown_job", id=accepted.callback_id, hint="kept, not linked to a job"
        )
    log.info(
        "callback",
        id=accepted.callback_id,
        outcome=outcome,
        result_id=accepted.result_id,
        status=accepted.status,
        duration_ms=round(elapsed * 1000, 2),
    )


def _refused(services: Services, outcome: str, status_code: int, detail: str) -> tuple[int, bytes]:
    services.metrics.count_callback(outcome)
    if outcome != "rejected":
        log.info("callback", outcome=outcome, status_code=status_code)
    return status_code, msgspec.json.encode(ErrorBody(detail=detail))


def _too_large(services: Services) -> str:
    return too_large(services.config.server.max_body_bytes)
