"""Living messages: where each living target's message for a group is, and what it showed."""

from __future__ import annotations

from typing import Final

import msgspec

from receiver.clock import utcnow
from receiver.store.tx import Tx, row_as


class LivingMessage(msgspec.Struct, kw_only=True):
    target: str
    group_key: str
    channel: str  # the channel's id, as the API answered it
    ts: str  # the message's id in the channel
    status: str  # the group's status it showed: a change gets a threaded reply
    result_id: int  # the newest result it showed


SELECT: Final = """
SELECT target, group_key, channel, ts, status, result_id FROM living_messages
WHERE target = ? AND group_key = ?
"""
UPSERT: Final = """
INSERT INTO living_messages (target, group_key, channel, ts, status, result_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (target, group_key) DO UPDATE SET
    channel = excluded.channel, ts = excluded.ts, status = excluded.status,
    result_id = excluded.result_id, updated_at = excluded.updated_at
"""


def get(tx: Tx, target: str, group_key: str) -> LivingMessage | None:
    return row_as(tx.execute(SELECT, [target, group_key]), LivingMessage)


def save(tx: Tx, message: LivingMessage) -> None:
    tx.execute(
        UPSERT,
        [
            message.target,
            message.group_key,
            message.channel,
            message.ts,
            message.status,
            message.result_id,
            utcnow(),
        ],
    )
