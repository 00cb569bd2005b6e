"""Follow the event log into the projection: an ordered push consumer from the tracking row.

The follower resumes from ``last_seq + 1`` (the tracking row), buffers delivered messages and
applies them in batches (one SQLite transaction each), then wakes anyone waiting for a revision
(read-your-writes). If the stream is not the one the projection was built from (re-created, or
shorter than the tracking row), it rebuilds from the start. Ordered consumers keep no server-side
state to acknowledge: the tracking row, committed with the rows, is the checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from voiyd.bus import subjects
from voiyd.bus.reader import RawEvent
from voiyd.projection.store import BatchResult, ProjectionStore

log = logging.getLogger(__name__)

BatchHook = Callable[[BatchResult], Awaitable[None]]
_IDLE_HEARTBEAT_S = 2.0


class ProjectionFollower:
    def __init__(
        self,
        js: JetStreamContext,
        store: ProjectionStore,
        *,
        batch_max: int = 2000,
        on_batch: BatchHook | None = None,
    ) -> None:
        self._js = js
        self.store = store
        self._batch_max = batch_max
        self._on_batch = on_batch
        self._pending: list[RawEvent] = []
        self._wake = asyncio.Event()
        self._advanced = asyncio.Condition()

    @property
    def applied_seq(self) -> int:
        return self.store.last_seq

    async def check_stream(self) -> None:
        """Rebuild if the stream is not the one this projection was built from."""
        info = await self._js.stream_info(subjects.EVENTS_STREAM)
        created = info.created.isoformat() if info.created else ""
        last = info.state.last_seq or 0
        known = self.store.stream_created
        if (known and created and known != created) or self.store.last_seq > last:
            log.warning(
                "projection was built from another %s (created %s, seq %d; now %s, last %d): "
                "rebuilding",
                subjects.EVENTS_STREAM,
                known,
                self.store.last_seq,
                created,
                last,
            )
            self.store.reset()
        if created and self.store.stream_created != created:
            self.store.set_stream_created(created)

    async def _on_msg(self, msg: Msg) -> None:
        md = msg.metadata
        self._pending.append(RawEvent(md.sequence.stream, msg.subject, msg.data, md.num_pending))
        self._wake.set()

    def project_pending(self) -> BatchResult | None:
        """Apply up to one batch of what has been delivered (the step function)."""
        if not self._pending:
            return None
        batch = self._pending[: self._batch_max]
        del self._pending[: self._batch_max]
        return self.store.apply_batch(batch)

    async def run(self, stop: asyncio.Event) -> None:
        await self.check_stream()
        start = self.store.last_seq + 1
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        sub = await self._js.subscribe(
            f"{subjects.EVENTS_PREFIX}.>",
            stream=subjects.EVENTS_STREAM,
            cb=self._on_msg,
            ordered_consumer=True,
            idle_heartbeat=_IDLE_HEARTBEAT_S,
            config=config,
        )
        log.info("projection following %s from seq %d", subjects.EVENTS_STREAM, start)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                woke = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({woke, stopping}, return_when=asyncio.FIRST_COMPLETED)
                woke.cancel()
                self._wake.clear()
                while (result := self.project_pending()) is not None:
                    await self._after_batch(result)
                    await asyncio.sleep(0)  # let queries and requests run between batches
        finally:
            stopping.cancel()
            await sub.unsubscribe()

    async def _after_batch(self, result: BatchResult) -> None:
        async with self._advanced:
            self._advanced.notify_all()
        if self._on_batch is not None:
            await self._on_batch(result)

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until the projection has applied ``seq``; False on timeout."""
        if self.store.last_seq >= seq:
            return True
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.store.last_seq >= seq)
        except TimeoutError:
            return self.store.last_seq >= seq
        return True
