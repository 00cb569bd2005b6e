"""Read the event log: a bounded list from a sequence or a time, or a follow that never ends.

Used by the server's ``event.list``, the CLI's ``events [-f]`` and ``get -w``. An ordered push
consumer delivers the messages; a bounded read stops when the consumer reports nothing pending.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from voiyd.bus import subjects

_IDLE_HEARTBEAT_S = 2.0


@dataclass(frozen=True)
class RawEvent:
    """One message of the event log: stream sequence, subject, payload, and what is left."""

    seq: int
    subject: str
    data: bytes
    pending: int = 0


def _config(start_seq: int | None, start_time: datetime | None) -> ConsumerConfig:
    if start_time is not None:
        return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start_time)
    if start_seq is not None and start_seq > 1:
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq
        )
    return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)


async def read_events(
    js: JetStreamContext,
    filter_subject: str | None = None,
    *,
    start_seq: int | None = None,
    start_time: datetime | None = None,
    limit: int | None = None,
    follow: bool = False,
) -> AsyncGenerator[RawEvent, None]:
    """Yield events matching ``filter_subject`` from ``start_seq`` (inclusive) or ``start_time``.

    Without ``follow`` it stops once caught up (or after ``limit`` events); with ``follow`` it
    keeps yielding new events until the caller stops iterating.
    """
    queue: asyncio.Queue[RawEvent] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        md = msg.metadata
        queue.put_nowait(RawEvent(md.sequence.stream, msg.subject, msg.data, md.num_pending))

    sub = await js.subscribe(
        filter_subject or f"{subjects.EVENTS_PREFIX}.>",
        stream=subjects.EVENTS_STREAM,
        cb=on_msg,
        ordered_consumer=True,
        idle_heartbeat=_IDLE_HEARTBEAT_S,
        config=_config(start_seq, start_time),
    )
    try:
        if not follow:
            info = await sub.consumer_info()
            delivered = info.delivered.consumer_seq if info.delivered else 0
            # Nothing pending and nothing delivered yet: the range is empty. (Delivered messages
            # may still be on their way to the callback, so "nothing pending" alone is not enough.)
            if info.num_pending == 0 and not delivered and queue.empty():
                return
        count = 0
        while True:
            item = await queue.get()
            yield item
            count += 1
            if limit is not None and count >= limit:
                return
            if not follow and item.pending == 0:
                return
    finally:
        await sub.unsubscribe()
