"""Serving ``logs.read``: one request = resolve the tasks, read a round, maybe wait, answer.

The relay keeps no state between requests (the client's cursor says where it is), so a round
is: where each task starts (the cursor, else a tail, a ``since`` or the first message), the
lines that fit the reply (``framing.take``), and whether the stream has ended. A follow request
that finds nothing waits for a wake-up (a core subscription to the task's log and event
subjects, held only while waiting) or a tick, then reads again, until ``wait_s`` runs out: a
slow client just asks less often, and a client that vanished costs one wait at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from voiyd import clock
from voiyd.api.logread import Position, ReadLogs
from voiyd.api.validation import parse_model
from voiyd.bus import subjects
from voiyd.errors import NotFoundError, VoiydError
from voiyd.logrelay import framing, metrics
from voiyd.logrelay.framing import Budget, Chunk, Filter
from voiyd.logrelay.store import LogStore, node_tracker, task_tracker

log = logging.getLogger(__name__)

RACE_RETRY_S = 0.005
"""After a wake-up that found nothing yet (the line was seen before the stream stored it)."""


@dataclass(frozen=True)
class ReaderSettings:
    max_reply_bytes: int = 512 * 1024
    eof_wait_s: float = 60.0
    """How long a follow waits for a live agent's end-of-output mark once the task has ended and
    nothing new is stored (a mark that does not come is given up on)."""
    tick_s: float = 1.0
    """Longest wait between two reads of a waiting follow, wake-ups or not."""


@dataclass
class Round:
    chunks: list[Chunk]
    cursor: dict[str, Position]
    caught_up: dict[str, bool]
    reason: str | None = None


class Waker:
    """Core subscriptions to the subjects whose messages mean: read again."""

    def __init__(self, nc: Client, watched: list[str]) -> None:
        self._nc = nc
        self._watched = watched
        self._event = asyncio.Event()

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Waker]:
        async def wake(_: Msg) -> None:
            self._event.set()

        subs = [await self._nc.subscribe(s, cb=wake) for s in self._watched]
        try:
            yield self
        finally:
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def wait(self, timeout: float) -> bool:
        """Whether something woke it within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


class Reader:
    def __init__(self, nc: Client, settings: ReaderSettings | None = None) -> None:
        self._nc = nc
        self.settings = settings or ReaderSettings()
        self.store = LogStore(nc)
        self.tasks = task_tracker(nc)
        self.nodes = node_tracker(nc)
        self.stopping = asyncio.Event()
        """Set at shutdown: waiting follows answer with what they have (within a tick)."""

    async def read(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ``logs.read`` endpoint."""
        mode = "follow" if body.get("follow") else "history"
        try:
            reply = await self._read(parse_model(ReadLogs, body))
        except VoiydError as err:
            metrics.REQUESTS.labels(mode=mode, outcome=err.code).inc()
            raise
        metrics.REQUESTS.labels(mode=mode, outcome="ok").inc()
        return reply

    async def _read(self, req: ReadLogs) -> dict[str, Any]:
        framing.check_after(req)
        flt = framing.filter_of(req, clock.now())
        tasks = await self._targets(req)
        cursor = {}
        for task in tasks:
            known = req.after.get(task)
            cursor[task] = known if known is not None else await self._start(req, task, flt)
        done = await self._round(req, tasks, cursor, flt)
        if req.follow and req.wait_s > 0 and not done.chunks and done.reason is None:
            done = await self._wait(req, tasks, done, flt)
        if done.reason is not None and req.follow:
            metrics.STREAMS_ENDED.inc()
        return {
            "chunks": done.chunks,
            "cursor": {t: p.model_dump() for t, p in done.cursor.items()},
            "eos": done.reason is not None,
            "reason": done.reason or "",
        }

    async def _targets(self, req: ReadLogs) -> list[str]:
        if req.task is not None:
            if await self.tasks.get(req.task) is None and not await self.store.has_logs(req.task):
                raise NotFoundError(f"task {req.task!r} not found (no events and no logs)")
            return [req.task]
        assert req.set is not None
        members = framing.set_members(req.set, await self.store.task_names())
        if not members:
            raise NotFoundError(f"set {req.set!r} has no tasks ({req.set}-<n>) with logs or events")
        return members

    async def _start(self, req: ReadLogs, task: str, flt: Filter) -> Position:
        if req.after:
            return Position(seq=0)  # a task that joined a set since the first request: all of it
        if req.tail is not None:
            return await self.store.tail(task, req.tail, flt)
        if flt.since is not None:
            return await self.store.since(task, flt.since)
        return Position(seq=0)

    async def _wait(self, req: ReadLogs, tasks: list[str], done: Round, flt: Filter) -> Round:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + req.wait_s
        watched = [subjects.logs_filter(t) for t in tasks] + [
            subjects.event("task", t) for t in tasks
        ]
        delay = self.settings.tick_s
        metrics.WAITING.inc()
        try:
            async with Waker(self._nc, watched).watching() as waker:
                while not done.chunks and done.reason is None:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or self.stopping.is_set():
                        break
                    woke = await waker.wait(min(remaining, delay))
                    delay = RACE_RETRY_S if woke else min(delay * 2, self.settings.tick_s)
                    done = await self._round(req, tasks, done.cursor, flt)
        finally:
            metrics.WAITING.dec()
        return done

    async def _round(
        self, req: ReadLogs, tasks: list[str], cursor: dict[str, Position], flt: Filter
    ) -> Round:
        started = time.perf_counter()
        budget = Budget(lines=req.max_lines, bytes=self.settings.max_reply_bytes)
        per_task: list[list[Chunk]] = []
        done = Round([], dict(cursor), {})
        for i, task in enumerate(tasks):
            given = budget.share(len(tasks) - i)
            part = replace(given)
            taken, caught_up = await self._read_task(task, cursor[task], flt, part)
            budget.absorb(part, given)
            per_task.append(taken.chunks)
            done.cursor[task] = taken.position
            done.caught_up[task] = caught_up
        done.chunks = framing.merge(per_task)
        done.reason = await self._end(req, done, flt)
        metrics.READ_SECONDS.observe(time.perf_counter() - started)
        lines = sum(len(c["lines"]) for c in done.chunks)
        if lines:
            metrics.LINES_SERVED.inc(lines)
            metrics.BYTES_SERVED.inc(self.settings.max_reply_bytes - budget.bytes)
        return done

    async def _read_task(
        self, task: str, at: Position, flt: Filter, budget: Budget
    ) -> tuple[framing.Taken, bool]:
        chunks: list[Chunk] = []
        while budget.lines > 0 and (budget.bytes > 0 or not budget.spent):
            got = await self.store.read(task, at.seq, budget.bytes)
            taken = framing.take(task, got.messages, at, flt, budget)
            chunks += taken.chunks
            at = taken.position
            if taken.cut or got.caught_up or not got.messages:
                return framing.Taken(chunks, at, taken.cut), got.caught_up and not taken.cut
        return framing.Taken(chunks, at, cut=True), False

    async def _end(self, req: ReadLogs, done: Round, flt: Filter) -> str | None:
        if not all(done.caught_up.values()):
            return None
        if not req.follow:
            return "end of stored logs"
        now = clock.now()
        reason = framing.until_end(flt, now)
        if reason is not None:
            return reason
        reasons: dict[str, str | None] = {}
        for task, at in done.cursor.items():
            reasons[task] = await self._task_end(task, at, now)
            if reasons[task] is None:
                return None
        return framing.set_end(req.set or "", reasons)

    async def _task_end(self, task: str, at: Position, now: datetime) -> str | None:
        folded = await self.tasks.get(task)
        if folded is None:
            return None
        tracked = framing.Tracked(folded.view, folded.deleted, folded.changed, folded.last)
        end = framing.task_end(task, tracked)
        if end is None:
            return None
        found = await self.store.last(task)
        last = found[0] if found else None
        if last is not None and at.seq < last.seq:
            return None
        gone = end.node is None or await self._node_gone(end.node)
        patience = timedelta(seconds=self.settings.eof_wait_s)
        return framing.stream_end(end, last, at, now, node_gone=gone, patience=patience)

    async def _node_gone(self, node: str) -> bool:
        """No agent there to send an end-of-output mark: not ready, lost or deleted."""
        folded = await self.nodes.get(node)
        if folded is None or folded.view is None:
            return True
        return folded.view.phase in ("not-ready", "lost")
