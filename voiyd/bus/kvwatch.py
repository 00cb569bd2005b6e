"""Following some keys of a KV bucket through a consumer whose create request names its filter.

nats-py's ``kv.watch`` creates its consumer on ``$JS.API.CONSUMER.CREATE.<stream>``, a subject
that does not say which keys the consumer reads, so credentials that allow it allow reading the
whole bucket. ``KeyWatch`` names its consumer, so the request goes to
``$JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>``; nats-server refuses one whose filter
differs from the subject's, so a user can be allowed to read its own keys and nothing else
(a node: ``<node>.*`` of ``voiyd-assignments``; docs/security.md).

Like nats-py's ordered consumer it is a push consumer without acks, one message at a time in
order, with idle heartbeats; after a gap, missing heartbeats (a server restart, a long network
cut) or a refused create it starts a new consumer, under a new name, after the last revision it
delivered. Old consumers are not deleted (that would need one more permission): nats-server
removes them ``INACTIVE_S`` after nobody listens any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from voiyd import ids

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
INACTIVE_S = 60.0
RETRY_S = 1.0
_TIMEOUT_S = 5.0
_KV_OP = "KV-Operation"
_MARKER = "Nats-Marker-Reason"
_MARKER_OPS = {"Remove": "DEL", "MaxAge": "PURGE", "Purge": "PURGE"}


@dataclass(frozen=True)
class KeyChange:
    """A key's new value (``operation`` None), or its deletion (``DEL``, ``PURGE``)."""

    key: str
    value: bytes
    revision: int
    operation: str | None = None


class _Restart(Exception):
    """The current consumer cannot go on (gap, silence); start a new one."""


class KeyWatch:
    """Every change of the keys matching ``keys`` (``n1.*``) in ``bucket``, in order."""

    def __init__(
        self, nc: Client, bucket: str, keys: str, *, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self._nc = nc
        self._stream = f"KV_{bucket}"
        self._prefix = f"$KV.{bucket}."
        self._filter = f"{self._prefix}{keys}"
        self._heartbeat_s = heartbeat_s
        self._last_revision = 0
        self._delivered = 0
        self.consumers = 0
        """How many consumers this watch created so far (1 + restarts)."""

    async def run(self, on_change: Callable[[KeyChange], None], stop: asyncio.Event) -> None:
        """Call ``on_change`` for the current values, then for every change, until ``stop``."""
        while not stop.is_set():
            try:
                await self._follow(on_change, stop)
            except (_Restart, APIError, nats.errors.Error, TimeoutError) as exc:
                log.warning(
                    "watch of %s: %s; a new consumer from revision %d",
                    self._filter,
                    exc or type(exc).__name__,
                    self._last_revision + 1,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_S)

    def _config(self, deliver: str) -> ConsumerConfig:
        start = self._last_revision + 1 if self._last_revision else None
        return ConsumerConfig(
            name=f"w{ids.new_id()[:20]}",
            deliver_subject=deliver,
            filter_subject=self._filter,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE
            if start
            else DeliverPolicy.LAST_PER_SUBJECT,
            opt_start_seq=start,
            ack_policy=AckPolicy.NONE,
            max_deliver=1,
            idle_heartbeat=self._heartbeat_s,
            inactive_threshold=INACTIVE_S,
            mem_storage=True,
            num_replicas=1,
        )

    async def _follow(self, on_change: Callable[[KeyChange], None], stop: asyncio.Event) -> None:
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def enqueue(msg: Msg) -> None:
            queue.put_nowait(msg)

        deliver = self._nc.new_inbox()
        sub = await self._nc.subscribe(deliver, cb=enqueue)
        try:
            self._delivered = 0
            config = self._config(deliver)
            await self._nc.jsm().add_consumer(self._stream, config=config, timeout=_TIMEOUT_S)
            self.consumers += 1
            while not stop.is_set():
                msg = await _next(queue, stop, 2 * self._heartbeat_s)
                if msg is not None:
                    self._handle(msg, on_change)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _handle(self, msg: Msg, on_change: Callable[[KeyChange], None]) -> None:
        headers = msg.headers or {}
        if headers.get("Status"):  # an idle heartbeat: says what it last delivered
            last = headers.get("Nats-Last-Consumer")
            if last is not None and int(last) != self._delivered:
                raise _Restart(f"heartbeat says {last} delivered, {self._delivered} arrived")
            return
        md = msg.metadata
        if md.sequence.consumer != self._delivered + 1:
            raise _Restart(f"gap: message {md.sequence.consumer} after {self._delivered}")
        self._delivered = md.sequence.consumer
        self._last_revision = md.sequence.stream
        operation = headers.get(_KV_OP) or _MARKER_OPS.get(headers.get(_MARKER, ""))
        key = msg.subject.removeprefix(self._prefix)
        on_change(KeyChange(key, msg.data, md.sequence.stream, operation))


async def _next(queue: asyncio.Queue[Msg], stop: asyncio.Event, silence_s: float) -> Msg | None:
    """The next message; None once ``stop`` is set; ``_Restart`` after ``silence_s`` of nothing."""
    getting = asyncio.ensure_future(queue.get())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {getting, stopping}, timeout=silence_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        getting.cancel()
        stopping.cancel()
    if getting in done:
        return getting.result()
    if stopping in done:
        return None
    raise _Restart(f"no message or heartbeat for {silence_s:g}s")
