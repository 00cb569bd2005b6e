"""The voiyd-scheduler shell: follow the log into the view, plan, append the decisions.

One ``asyncio.TaskGroup`` owns the log follower; the loop applies what it buffered and then runs
``step()``: after every batch and at least every ``interval_s``. A step plans only on a caught-up
view: one that has reached the log's end as of startup and every event this scheduler appended,
so a round never re-decides from a view that does not show its own last decisions. Every change
to the view re-plans every waiting task (an unschedulable one is placed as soon as a node fits);
the periodic step retries a round whose appends the log did not acknowledge. Every append
carries the task's revision as the expected one; a conflict means the task changed (often:
another scheduler placed it) and is only counted: the view will show why, and the next round
decides again. SIGTERM sets ``stop``; the current round finishes, then the connection drains.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import start_http_server

from voiyd import clock, ids
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.publish import append
from voiyd.bus.reader import RawEvent, read_events
from voiyd.bus.streams import ensure_streams
from voiyd.errors import ConflictError, VoiydError
from voiyd.scheduler import metrics
from voiyd.scheduler.plan import Decision, Evict, MarkUnschedulable, Schedule, plan, to_event
from voiyd.scheduler.view import View

log = logging.getLogger(__name__)

BATCH_MAX = 2000
"""Events applied to the view between two yields to the event loop."""
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SchedulerSettings:
    nats: NatsOptions = field(default_factory=NatsOptions)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    replicas: int = 1
    interval_s: float = 1.0
    max_inflight: int = 64
    append_deadline_s: float = 10.0
    scheduler_id: str = field(default_factory=lambda: ids.new_id()[:12])

    @property
    def actor(self) -> str:
        return f"voiyd-scheduler:{self.scheduler_id}"


@dataclass
class StepResult:
    """What one round did; ``ran`` is False when no plan ran (``skipped`` says why)."""

    ran: bool = False
    skipped: str = ""
    """Why no plan ran: ``behind`` (the view lacks events) or ``unchanged`` (planned already)."""
    planned: int = 0
    appended: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    errors: int = 0


def _log_decision(d: Decision, seq: int) -> None:
    match d:
        case Schedule():
            log.info(
                "task %s scheduled on %s epoch %d (score %.3f) seq %d",
                d.task,
                d.node,
                d.epoch,
                d.score,
                seq,
            )
        case MarkUnschedulable():
            log.info("task %s unschedulable: %s seq %d", d.task, d.reason, seq)
        case Evict():
            log.info(
                "task %s evicted from %s epoch %d: %s seq %d",
                d.task,
                d.node,
                d.epoch,
                d.reason,
                seq,
            )


class SchedulerLoop:
    """The scheduler over one JetStream context: the view, its follower and ``step()``."""

    def __init__(
        self,
        js: JetStreamContext,
        settings: SchedulerSettings,
        ready: asyncio.Event | None = None,
    ) -> None:
        self._js = js
        self._settings = settings
        self.view = View()
        self.ready = ready if ready is not None else asyncio.Event()
        self.target_seq = 0
        self.appended_seq = 0
        self._planned_seq: int | None = None
        self._pending: list[RawEvent] = []
        self._wake = asyncio.Event()

    @property
    def caught_up(self) -> bool:
        """The view shows the log as of startup and every event this scheduler appended."""
        return self.view.seq >= max(self.target_seq, self.appended_seq)

    async def start(self) -> None:
        """Note how far the log goes now: no round runs before the view has reached it."""
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            info = await self._js.stream_info(subjects.EVENTS_STREAM)
        self.target_seq = info.state.last_seq or 0
        log.info("catching up with the event log: seq 0 -> %d", self.target_seq)

    async def catch_up(self) -> int:
        """Read the log into the view up to its last sequence as of now; the events applied.

        It follows until that sequence rather than stopping when nothing is pending: a consumer
        may report nothing pending while delivered messages still wait for their callback.
        """
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            info = await self._js.stream_info(subjects.EVENTS_STREAM)
        last = info.state.last_seq or 0
        applied = 0
        if self.view.seq >= last:
            return applied
        start = self.view.seq + 1
        async with aclosing(read_events(self._js, start_seq=start, follow=True)) as events:
            async for raw in events:
                self._pending.append(raw)
                if raw.seq >= last:
                    break
                if len(self._pending) >= BATCH_MAX:
                    applied += await self.apply_pending()
        return applied + await self.apply_pending()

    async def follow(self) -> None:
        """Buffer every event of the log, from the first, until cancelled."""
        async for raw in read_events(self._js, follow=True):
            self._pending.append(raw)
            self._wake.set()

    async def apply_pending(self) -> int:
        """Fold everything buffered into the view, a batch at a time; the number applied."""
        applied = 0
        while self._pending:
            batch = self._pending[:BATCH_MAX]
            del self._pending[:BATCH_MAX]
            result = self.view.apply(batch)
            applied += result.applied
            for skipped in result.skipped:
                log.error(
                    "skipping event seq=%d subject=%s: %s",
                    skipped.seq,
                    skipped.subject,
                    skipped.problem,
                )
            metrics.EVENTS_SKIPPED.inc(len(result.skipped))
            metrics.VIEW_SEQ.set(self.view.seq)
            await asyncio.sleep(0)  # let the follower and the appends run between batches
        if not self.ready.is_set() and self.caught_up:
            log.info(
                "voiyd-scheduler %s ready: view at seq %d (%d tasks, %d nodes)",
                self._settings.scheduler_id,
                self.view.seq,
                len(self.view.tasks),
                len(self.view.nodes),
            )
            self.ready.set()
        return applied

    async def step(self) -> StepResult:
        """One round: plan on the caught-up view and append each decision.

        A plan depends on the view alone, so a view already planned gives the same decisions:
        it is planned again only after an append failed (the log did not answer in time).
        """
        if not self.caught_up:
            return StepResult(skipped="behind")
        if self.view.seq == self._planned_seq:
            return StepResult(skipped="unchanged")
        started = time.perf_counter()
        decisions = plan(self.view, clock.now())
        metrics.PLACEMENT_SECONDS.observe(time.perf_counter() - started)
        self._planned_seq = self.view.seq
        result = StepResult(ran=True, planned=len(decisions))
        if decisions:
            todo = iter(decisions)
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(self._settings.max_inflight, len(decisions))):
                    tg.create_task(self._append_worker(todo, result))
        if result.errors:
            self._planned_seq = None
        return result

    async def _append_worker(self, todo: Iterator[Decision], result: StepResult) -> None:
        for decision in todo:
            await self._append(decision, result)

    async def _append(self, d: Decision, result: StepResult) -> None:
        event = to_event(d, event_id=ids.new_id(), actor=self._settings.actor)
        try:
            seq = await append(
                self._js,
                event,
                expected_revision=d.expected_revision,
                deadline_s=self._settings.append_deadline_s,
            )
        except ConflictError as exc:
            log.debug("%s of task %s not appended: %s", d.outcome, d.task, exc)
            metrics.CONFLICTS.inc()
            result.conflicts += 1
            return
        except VoiydError as exc:
            log.warning(
                "%s of task %s not appended: %s; a later round retries", d.outcome, d.task, exc
            )
            metrics.APPEND_ERRORS.inc()
            result.errors += 1
            return
        self.appended_seq = max(self.appended_seq, seq)
        metrics.PLACEMENTS.labels(outcome=d.outcome).inc()
        result.appended[d.outcome] += 1
        _log_decision(d, seq)

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until something was buffered, ``stop`` is set, or ``interval_s`` has passed."""
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(
                waiters, timeout=self._settings.interval_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wake.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow, apply and step until ``stop`` is set."""
        await self.start()
        async with asyncio.TaskGroup() as tg:
            follower = tg.create_task(self.follow())
            try:
                while not stop.is_set():
                    await self.apply_pending()
                    await self.step()
                    await self._wait(stop)
            finally:
                follower.cancel()


class Scheduler:
    """The process: connect, ensure the streams, run a ``SchedulerLoop``, drain on the way out."""

    def __init__(self, settings: SchedulerSettings) -> None:
        self.settings = settings
        self.loop: SchedulerLoop | None = None
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        if s.metrics_port is not None:
            start_http_server(s.metrics_port, addr=s.metrics_host)
            log.info("metrics on http://%s:%d/metrics", s.metrics_host, s.metrics_port)
        nc = await connect(s.nats, f"voiyd-scheduler-{s.scheduler_id}")
        try:
            js = nc.jetstream()
            await ensure_streams(js, replicas=s.replicas)
            loop = SchedulerLoop(js, s, self.ready)
            self.loop = loop
            await loop.run(stop)
        finally:
            await _close(nc)


async def _close(nc: Client) -> None:
    try:
        async with asyncio.timeout(5):
            await nc.drain()
    except Exception as exc:
        log.debug("drain: %s", exc)
        await nc.close()
