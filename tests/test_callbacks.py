"""The callback intake in process, on each backend: dedupe, links, one transaction."""

from __future__ import annotations

import asyncio

import pytest

from receiver.callbacks import Accepted, PayloadRejected
from receiver.store import Store, jobs
from tests.conftest import callback_body, signed
from tests.store_helpers import body_for, digest, intake, opened, take_one


async def take_all(database: Store, bodies: list[bytes]) -> list[Accepted]:
    """All at once on one event loop, so they queue up for the same batch."""
    into = intake(database)
    return await asyncio.gather(*(take_one(into, body) for body in bodies))


def test_duplicates_inside_one_batch_are_stored_once_and_all_answered(store_url: str) -> None:
    a, b, c = body_for(1), body_for(2), body_for(3)
    with opened(store_url) as database:
        answers = asyncio.run(take_all(database, [a, a, b, c, b, a]))
        if database.dialect == "sqlite":  # PostgreSQL's writer thread may start before all six
            assert (database.batches, database.batched_writes) == (1, 6), "not one transaction"
        kept = digests(database)
    by_body: dict[bytes, list[Accepted]] = {}
    for body, answer in zip([a, a, b, c, b, a], answers, strict=True):
        by_body.setdefault(body, []).append(answer)
    for body, group in by_body.items():
        assert [x.duplicate for x in group] == [False] + [True] * (len(group) - 1), body
        assert len({x.callback_id for x in group}) == 1
        assert len({x.result_id for x in group}) == 1
    assert sorted(kept) == sorted(digest(x) for x in (a, b, c))


def digests(database: Store) -> list[bytes]:
    return database.read(
        lambda tx: [
            bytes(r[0]) for r in tx.execute("SELECT digest FROM callback_digests").fetchall()
        ]
    )


def links(database: Store) -> list[tuple[int, int, int, int, int, str]]:
    """(result, its callback_id, its job_id, that callback's result_id, that job's result_id,
    the job's state) for every result."""
    return database.read(
        lambda tx: [
            tuple(row)
            for row in tx.execute(
                "SELECT r.id, r.callback_id, r.job_id, c.result_id, j.result_id, j.state "
                "FROM results r JOIN callbacks c ON c.id = r.callback_id "
                "JOIN jobs j ON j.id = r.job_id ORDER BY r.id"
            ).fetchall()
        ]
    )


def test_each_result_its_callback_and_its_job_point_at_each_other(store_url: str) -> None:
    """In one batch, for new jobs and for a job made before (by key), and when the batch
    runs again after a failing write."""
    bodies = [body_for(n) for n in range(6)]
    with opened(store_url) as database:
        keyed = database.write_sync(
            lambda tx: jobs.insert(
                tx, jobs.NewJob(provider="qualitymax", state="submitted", job_key="k")
            )
        )

        async def batch() -> list[Accepted]:
            into = intake(database)
            # A callback without a result first: callback and result ids differ from here on.
            with pytest.raises(PayloadRejected):
                await take_one(into, b"{")
            before.extend([database.batches, database.batched_writes])
            failing = database.write(lambda tx: 1 // 0)  # the batch runs again, with savepoints
            answers = await asyncio.gather(
                take_one(into, bodies[0], job_key="k"),
                *(take_one(into, b) for b in bodies[1:]),
                failing,
                return_exceptions=True,
            )
            assert isinstance(answers[-1], ZeroDivisionError)
            return [a for a in answers[:-1] if isinstance(a, Accepted)]

        before: list[int] = []
        answers = asyncio.run(batch())
        # one batch of seven (run twice, counted once)
        assert (database.batches - before[0], database.batched_writes - before[1]) == (1, 7)
        rows = links(database)
    # (PostgreSQL's sequences leave gaps where the batch ran twice: ids rise, not from 1)
    assert [a.result_id for a in answers] == [row[0] for row in rows]
    assert len(rows) == 6 and [row[0] for row in rows] == sorted(row[0] for row in rows)
    for answer, (result_id, callback_id, job_id, cb_result, job_result, state) in zip(
        answers, rows, strict=True
    ):
        assert (callback_id, job_id) == (answer.callback_id, answer.job_id)
        assert cb_result == job_result == result_id
        assert state == answer.status == "passed"  # also on the keyed job, made "submitted"
    assert answers[0].job_id == keyed


def test_a_second_event_of_a_job_belongs_to_the_job_the_first_made(store_url: str) -> None:
    first = body_for(1)
    same_job = callback_body(job_id="group-1", workflow_summary="a second event of that job")

    async def run(database: Store) -> list[Accepted]:
        into = intake(database)
        return [await take_one(into, body) for body in (first, first, same_job, body_for(2))]

    with opened(store_url) as database:
        made, repeat, update, new = asyncio.run(run(database))
        assert len(digests(database)) == 3
    assert (made.duplicate, repeat.duplicate, update.duplicate, new.duplicate) == (
        False,
        True,
        False,
        False,
    )
    assert made.job_id == repeat.job_id == update.job_id
    assert new.job_id not in (made.job_id, None)


def test_a_signed_body_that_is_not_a_callback_is_kept_and_refused(store_url: str) -> None:
    async def run(database: Store) -> PayloadRejected:
        with pytest.raises(PayloadRejected) as refused:
            await take_one(intake(database), b"[1, 2]")
        return refused.value

    with opened(store_url) as database:
        refused = asyncio.run(run(database))
        kept = database.read(
            lambda tx: tx.execute(
                "SELECT body, outcome FROM callbacks WHERE id = ?", [refused.callback_id]
            ).fetchone()
        )
    assert "not an object" in refused.detail
    assert (bytes(kept[0]), kept[1]) == (b"[1, 2]", "rejected")


def test_a_wrong_signature_stores_nothing(store_url: str) -> None:
    from receiver.callbacks import SignatureRejected

    body = body_for(1)

    async def run(database: Store) -> None:
        headers = {k.lower(): v for k, v in signed(body, "another secret").items()}
        with pytest.raises(SignatureRejected):
            await intake(database).take(job_key=None, headers=headers, body=body, received_at="t")

    with opened(store_url) as database:
        asyncio.run(run(database))
        assert digests(database) == []
