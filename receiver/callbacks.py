"""Taking a callback: verify on the raw bytes, decode, store in one transaction, then answer.

The order is the design: nothing is parsed before the signature holds, and nothing is
acknowledged before the transaction holding it has committed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from functools import partial
from typing import Final

import msgspec

from receiver import signatures
from receiver.logs import get_logger
from receiver.providers import qualitymax
from receiver.record import Recorded, RecordedHook, Recorder
from receiver.results import Result
from receiver.store import Store, StoreError, callbacks, jobs, results
from receiver.store.callbacks import CallbackRecord, StoredCallback
from receiver.store.tx import Tx

log = get_logger("receiver.callbacks")

# What we keep of the request headers; never the signature itself.
KEPT_HEADERS: Final = ("content-type", "content-length", "user-agent", "x-request-id")
# Failures of the store itself, not of a body's content: those answer 5xx (the sender retries).
STORE_FAILURES: Final = (StoreError, sqlite3.OperationalError, MemoryError)


class SignatureRejected(Exception):
    """The signature is missing or does not match: which part was wrong is not said."""


class PayloadRejected(Exception):
    """Signed, but not a callback we can read; the raw body was kept for inspection."""

    def __init__(self, detail: str, callback_id: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.callback_id = callback_id


class Accepted(msgspec.Struct, kw_only=True):
    callback_id: int
    result_id: int | None
    job_id: int | None
    duplicate: bool
    status: str | None = None


class Decoded(msgspec.Struct, kw_only=True):
    """What the body turned out to be: a result (or none, for events without one), or an error."""

    result: Result | None = None
    error: str | None = None


class Kept(msgspec.Struct, frozen=True):
    """What storing one callback gave: the answer, and what was recorded for the worker."""

    answer: Accepted | PayloadRejected
    recorded: Recorded | None = None


class CallbackIntake:
    """The callback flow for one provider, shared by the HTTP handler and tests."""

    def __init__(
        self,
        database: Store,
        secrets: tuple[str, ...],
        recorder: Recorder,
        on_recorded: RecordedHook | None = None,
    ) -> None:
        self.store = database
        self.secrets = secrets
        self.recorder = recorder
        self.on_recorded = on_recorded

    async def take(
        self, *, job_key: str | None, headers: Mapping[str, str], body: bytes, received_at: str
    ) -> Accepted:
        """Verify, store in one transaction, then (after the commit) hand on what was recorded."""
        if not signatures.verify(body, headers.get(qualitymax.SIGNATURE_HEADER), self.secrets):
            raise SignatureRejected
        record = CallbackRecord(
            provider=qualitymax.NAME,
            job_key=job_key,
            digest=hashlib.sha256(body).digest(),
            body=body,
            headers={k: headers[k] for k in KEPT_HEADERS if k in headers},
            received_at=received_at,
        )
        try:
            kept = await self.store.write(partial(self.keep, record, decode(body)))
        except STORE_FAILURES:
            raise
        except Exception as exc:  # content we failed to foresee: keep the body all the same
            kept = await self._keep_unforeseen(record, exc)
        if kept.recorded is not None and self.on_recorded is not None:
            self.on_recorded(kept.recorded)
        if isinstance(kept.answer, PayloadRejected):
            raise kept.answer
        return kept.answer

    async def _keep_unforeseen(self, record: CallbackRecord, exc: Exception) -> Kept:
        """A signed body that broke normalising or storing is kept as rejected, so that no
        content can make a callback both answered 5xx and lost; the traceback is logged."""
        log.exception("callback.unforeseen", error=type(exc).__name__, digest=record.digest.hex())
        error = (
            f"The callback could not be normalised ({type(exc).__name__}); its raw body is "
            "kept and the service log has the cause"
        )
        return await self.store.write(partial(self.keep, record, Decoded(error=error)))

    def keep(self, record: CallbackRecord, decoded: Decoded, tx: Tx) -> Kept:
        """In the writer's transaction: dedupe, then the callback, its job and its result.

        The result's id is reserved first, so that its callback, and a job made for it, are
        written pointing at it.
        """
        callback_id = callbacks.claim(tx, record)
        if callback_id is None:
            return Kept(_repeat(callbacks.find(tx, record.digest)))
        result = decoded.result
        result_id = results.reserve_id(tx) if result is not None else None
        job_id = jobs.find_id(
            tx,
            job_key=record.job_key,
            provider=record.provider,
            external_id=result.external_job_id if result else None,
        )
        made_job = job_id is None and record.job_key is None and result is not None
        if result is not None and result.external_job_id is None and job_id is not None:
            # The document's callback names no job: the job it was posted for knows its id.
            result.external_job_id = jobs.external_id_of(tx, job_id)
        if made_job and result is not None:
            job_id = jobs.insert(tx, _made_job(record.provider, result, result_id))
        callbacks.insert(
            tx,
            callback_id,
            record,
            job_id=job_id,
            result_id=result_id,
            outcome="accepted" if decoded.error is None else "rejected",
            error=decoded.error,
        )
        if decoded.error is not None:
            return Kept(PayloadRejected(decoded.error, callback_id))
        recorded = None
        if result is not None:
            recorded = self.recorder.record(
                tx,
                result,
                job_id=job_id,
                callback_id=callback_id,
                result_id=result_id,
                job_has_it=made_job,
            )
        accepted = Accepted(
            callback_id=callback_id,
            result_id=result_id,
            job_id=job_id,
            duplicate=False,
            status=result.status if result else None,
        )
        return Kept(accepted, recorded)


def decode(body: bytes) -> Decoded:
    """Parse a verified body into a normalised result, or say in one sentence why it cannot be."""
    try:
        callback = qualitymax.decode_callback(body)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
        if str(exc).startswith("Expected `object`") and " - at `" not in str(exc):
            return Decoded(error="The body is JSON but not an object; send a JSON object")
        return Decoded(error=f"The callback does not match the QualityMax format: {exc}")
    except msgspec.DecodeError as exc:
        return Decoded(error=f"The body is not valid JSON ({exc}); send a JSON object")
    return Decoded(result=qualitymax.to_result(callback))


def _made_job(provider: str, result: Result, result_id: int | None) -> jobs.NewJob:
    """The job a callback on the bare path makes when it names no known job: already done."""
    return jobs.NewJob(
        provider=provider,
        state=result.status,
        external_id=result.external_job_id,
        custom_data=result.custom_data,
        result_id=result_id,
    )


def _repeat(seen: StoredCallback) -> Accepted | PayloadRejected:
    if seen.outcome == "rejected":
        return PayloadRejected(seen.error or "This body was rejected before", seen.id)
    return Accepted(
        callback_id=seen.id,
        result_id=seen.result_id,
        job_id=seen.job_id,
        duplicate=True,
        status=seen.status,
    )
