"""Shipping the output of one placement (task, epoch): read, number, buffer, batch, publish.

One ``PlacementLog`` per placement this agent runs. Its containers (restarts make several) are
read one after the other, each from the runtime's ``logs`` iterator; their lines wait in one
queue that a single publisher empties in order, so the stream holds each placement's lines in
number order. A full node buffer (``Budget``) makes a reader wait while the stream keeps
acknowledging; once NATS is unreachable a line that does not fit is dropped and counted, and
reading goes on, so a task is never held up by its logs. Publishing retries each batch with the
same ``Nats-Msg-Id`` until the stream acknowledges it. The numbering, cutting and checkpoint
rules are in ``logbatch`` (pure); this module only does the I/O around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from voiyd.agent import logbatch as lb
from voiyd.agent import metrics
from voiyd.agent.runtimes.protocol import LogStream, Observed, RawLine, Runtime, RuntimeFailure
from voiyd.bus import codec, subjects

log = logging.getLogger(__name__)

_PUBLISH_TIMEOUT_S = 2.0
_BACKOFF_START_S = 0.05
_BACKOFF_MAX_S = 1.0
_LAST_MSG_TIMEOUT_S = 2.0
_RECHECK_S = 0.5
STALL_S = 5.0
"""Publishes failing this long mean NATS is unreachable: a full buffer then drops lines."""
_RETRYABLE = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionClosedError,
    nats.errors.OutboundBufferLimitError,
    NoStreamResponseError,
    ServiceUnavailableError,
)


class Budget:
    """The node's log buffer: what lines read but not yet acknowledged cost, across placements.

    When it is full, a reader waits for room while the stream keeps acknowledging (output just
    comes faster than it ships: it waits in the runtime's own log, nothing is lost); once NATS is
    unreachable (disconnected, or no acknowledgement for ``STALL_S``) a full buffer means drop.
    """

    def __init__(self, limit: int, connected: Callable[[], bool] = lambda: True) -> None:
        self.limit = limit
        self.used = 0
        self._connected = connected
        self._failing_since: float | None = None
        self._freed = asyncio.Event()

    def take(self, cost: int) -> bool:
        if self.used + cost > self.limit:
            return False
        self.used += cost
        return True

    def give(self, cost: int) -> None:
        self.used = max(0, self.used - cost)
        self._freed.set()

    def acknowledged(self) -> None:
        self._failing_since = None

    def failed(self) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()

    def flowing(self) -> bool:
        failing = self._failing_since
        stalled = failing is not None and time.monotonic() - failing >= STALL_S
        return self._connected() and not stalled

    async def room(self, cost: int) -> bool:
        """Take ``cost`` once there is room; False (drop) if the stream is not flowing."""
        while not self.take(cost):
            if cost > self.limit or not self.flowing():
                return False
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RECHECK_S):
                    await self._freed.wait()
        return True


@dataclass(frozen=True, slots=True)
class _Line:
    """A queued line, kept small (a buffer holds many): its wire dict is built when it is sent."""

    n: int
    t: datetime
    stream: LogStream
    data: bytes
    partial: bool
    container: str
    before: lb.Cursor

    @property
    def cost(self) -> int:
        return lb.line_cost(self.data)

    @property
    def size(self) -> int:
        return lb.wire_size(self.data)

    def wire(self) -> dict[str, Any]:
        return lb.line_dict(self.n, lb.wire_time(self.t), self.stream, self.data, self.partial)


@dataclass(frozen=True, slots=True)
class _End:
    container: str
    next_n: int


class _Reading:
    """Where the reader of one container stands."""

    def __init__(self, container: str, start: lb.Start) -> None:
        self.container = container
        self.resume = lb.Resume(start.cursor)
        self.cursor = start.cursor
        self.n = start.next_n


class PlacementLog:
    def __init__(
        self,
        js: JetStreamContext,
        node: str,
        checkpoint: lb.Checkpoint,
        budget: Budget,
        save: Callable[[lb.Checkpoint], None],
    ) -> None:
        self.task, self.epoch = checkpoint.task, checkpoint.epoch
        self._js, self._node, self._budget, self._save = js, node, budget, save
        self._subject = subjects.logs(node, self.task)
        self.saved = checkpoint
        """What is persisted: where the next batch starts."""
        self.state = replace(checkpoint, inflight_last=None)
        """Where reading stands (ahead of ``saved`` by what is queued)."""
        self.dropped = checkpoint.dropped
        self.reported = 0
        self.reported_at: float | None = None
        self._queue: deque[_Line | _End] = deque()
        self._cost = 0
        self._bytes = 0
        self._oldest = 0.0
        self._ends = 0
        self._replay_last = checkpoint.inflight_last
        self._wake = asyncio.Event()
        self._reading = asyncio.Lock()
        self.readers = 0

    @property
    def idle(self) -> bool:
        return self.readers == 0 and not self._queue

    # ---- reading ------------------------------------------------------------------------------

    async def read(self, c: Observed, runtime: Runtime) -> None:
        """Read one container's output to its end (queued behind the placement's other ones)."""
        self.readers += 1
        try:
            async with self._reading:
                await self._read(c, runtime)
        finally:
            self.readers -= 1
            self._wake.set()

    async def _read(self, c: Observed, runtime: Runtime) -> None:
        start = lb.plan_start(self.state, c.id)
        if start is None:
            return
        if start.unfinished:
            log.warning(
                "task %s epoch %d: container %s went away before its output was all shipped",
                self.task,
                self.epoch,
                start.unfinished[:12],
            )
            self._queue.append(_End(start.unfinished, start.next_n))
            self._ends += 1
            self._replay_last = None
        at = _Reading(c.id, start)
        try:
            await self._follow(at, runtime, start.cursor.since())
        except RuntimeFailure:
            if await runtime.inspect(c.id) is not None:
                raise  # still there: read again later, from where this reader got to
            log.info("task %s: container %s went away while its logs were read", c.task, c.id[:12])
        finally:
            # Where a next reader of this container resumes if this one failed.
            self.state = replace(self.state, container_id=c.id, cursor=at.cursor, next_n=at.n)
        self.state = self.state.finished(c.id, at.n)
        self._queue.append(_End(c.id, at.n))
        self._ends += 1
        self._wake.set()

    async def _follow(self, at: _Reading, runtime: Runtime, since: datetime | None) -> None:
        budget = self._budget
        async for raw in runtime.logs(at.container, since):
            first, at.resume = lb.skip(at.resume, raw)
            if first >= lb.ALL_PARTS:
                continue  # settled before (a restarted agent reading again)
            parts = lb.parts_of(raw, first, at.n, at.cursor)
            cost = sum(lb.line_cost(p.data) for p in parts)
            self._take(at, raw, parts, cost, budget.take(cost) or await budget.room(cost))

    def _take(
        self, at: _Reading, raw: RawLine, parts: list[lb.Part], cost: int, room: bool
    ) -> None:
        """Queue the parts of ``raw`` if there was room, else count them dropped."""
        if room:
            if self._cost == 0:
                self._oldest = time.monotonic()
            t, container, stream = raw.t, at.container, raw.stream
            for p in parts:
                self._queue.append(_Line(p.n, t, stream, p.data, p.partial, container, p.before))
            self._cost += cost
            self._bytes += sum(lb.wire_size(p.data) for p in parts)
            self._wake.set()
        else:
            self.dropped += len(parts)
            metrics.LOG_DROPPED.inc(len(parts))
        at.n += len(parts)
        at.cursor = at.cursor.after(raw)

    # ---- publishing ---------------------------------------------------------------------------

    async def publish_forever(self) -> None:
        while True:
            head = await self._next()
            try:
                if isinstance(head, _End):
                    await self._ship_end(head)
                else:
                    await self._ship_lines(head)
            except Exception:  # a bug must not stop this placement's logs for good
                log.exception("task %s epoch %d: shipping logs failed", self.task, self.epoch)
                await asyncio.sleep(_BACKOFF_MAX_S)

    async def _next(self) -> _End | int:
        """The end marker at the front, or how many lines make the next batch, once it is due."""
        while True:
            self._wake.clear()
            if self._queue:
                head = self._queue[0]
                if isinstance(head, _End):
                    return head
                if self._replay_last is not None and head.n > self._replay_last:
                    self._replay_last = None  # the replayed batch's lines were all dropped
                count = self._batch_length()
                age = time.monotonic() - self._oldest
                reaches = self._replay_last is not None and self._last_n(count) >= self._replay_last
                ended = self._ends > 0 or self.readers == 0
                if count and lb.send_now(self._bytes, age, ended, reaches):
                    return count
                await self._wait(max(0.0, lb.BATCH_AGE_S - age))
            else:
                await self._wait(None)

    def _lines(self) -> Iterator[_Line]:
        """The queued lines up to the first end marker."""
        for entry in self._queue:
            if isinstance(entry, _End):
                return
            yield entry

    def _batch_length(self) -> int:
        lines = ((e.n, e.size, e.container) for e in self._lines())
        return lb.batch_length(lines, last=self._replay_last)

    def _last_n(self, count: int) -> int:
        entry = self._queue[count - 1] if count else None
        return entry.n if isinstance(entry, _Line) else 0

    async def _wait(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _ship_lines(self, count: int) -> None:
        lines = list(itertools.islice(self._lines(), count))
        first, last = lines[0], lines[-1]
        self.saved = replace(  # written ahead: a restarted agent sends this batch again
            self.saved,
            container_id=first.container,
            cursor=first.before,
            next_n=first.n,
            inflight_last=last.n,
            dropped=self.dropped,
            eof=False,
        )
        self._save(self.saved)
        mid = lb.msg_id(self.task, self.epoch, first.n)
        replayed, self._replay_last = self._replay_last is not None, None
        if not (replayed and await self._stored_last(mid)):
            await self._send_lines(mid, lines)
        self._settle(lines)

    async def _send_lines(self, mid: str, lines: list[_Line]) -> None:
        wire = [e.wire() for e in lines]
        payload = lb.batch_dict(
            self.task, self._node, self.epoch, lines[0].container, wire, self.dropped
        )
        if await self._publish(mid, payload):
            metrics.LOG_BATCHES.inc()
            metrics.LOG_LINES.inc(len(lines))
            metrics.LOG_BYTES.inc(sum(len(e.data) for e in lines))
        else:
            self.dropped += len(lines)
            metrics.LOG_DROPPED.inc(len(lines))

    def _settle(self, lines: list[_Line]) -> None:
        """The batch is stored (or refused for good): its lines leave the queue and the buffer."""
        for _ in lines:
            self._queue.popleft()
        cost = sum(e.cost for e in lines)
        self._cost -= cost
        self._bytes -= sum(e.size for e in lines)
        self._budget.give(cost)
        self._oldest = time.monotonic()

    async def _ship_end(self, end: _End) -> None:
        mid = lb.eof_msg_id(self.task, self.epoch, end.container)
        payload = lb.batch_dict(
            self.task, self._node, self.epoch, end.container, [], self.dropped, eof=True
        )
        await self._publish(mid, payload)
        self._queue.popleft()
        self._ends -= 1
        self.saved = replace(self.saved.finished(end.container, end.next_n), dropped=self.dropped)
        self._save(self.saved)
        log.info(
            "task %s epoch %d: output of %s shipped", self.task, self.epoch, end.container[:12]
        )

    def persist_drops(self) -> None:
        if self.saved.dropped != self.dropped:
            self.saved = replace(self.saved, dropped=self.dropped)
            self._save(self.saved)

    async def _publish(self, mid: str, batch: dict[str, Any]) -> bool:
        """Publish until acknowledged; False if the stream refuses it for good."""
        payload, backoff = codec.encode(batch), _BACKOFF_START_S
        while True:
            try:
                await self._js.publish(
                    self._subject,
                    payload,
                    timeout=_PUBLISH_TIMEOUT_S,
                    stream=subjects.LOGS_STREAM,
                    headers={"Nats-Msg-Id": mid},
                )
                self._budget.acknowledged()
                return True
            except _RETRYABLE as exc:
                self._budget.failed()
                log.debug("log batch %s not acknowledged (%s); retrying", mid, type(exc).__name__)
            except APIError as exc:
                log.error("VOIYD_LOGS refused log batch %s: %s (dropped)", mid, exc.description)
                return False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _stored_last(self, mid: str) -> bool:
        """Whether ``mid`` is the subject's last message (stored before a restart, its
        duplicate window maybe over). Asking may be refused or fail: then the window decides."""
        try:
            async with asyncio.timeout(_LAST_MSG_TIMEOUT_S):
                last = await self._js.get_last_msg(subjects.LOGS_STREAM, self._subject, direct=True)
        except Exception as exc:  # refused, timed out, no such message: all mean "not known"
            log.debug("cannot read the last log message of %s: %r", self.task, exc)
            return False
        return bool(last.headers and last.headers.get("Nats-Msg-Id") == mid)
