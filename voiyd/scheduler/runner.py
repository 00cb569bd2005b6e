"""The voiyd-scheduler shell: follow the log into the view, decide a round, append it.

One ``asyncio.TaskGroup`` owns the log follower; the loop applies what it buffered and then runs
``step()``: after every batch and at least every ``interval_s``. A step plans only on a caught-up
view: one that has reached the log's end as of startup and every event this scheduler appended,
so a round never re-decides from a view that does not show its own last decisions. A round
(``voiyd.scheduler.rounds.decide``) is evictions, the Set controller and placements. Every change
to the view re-plans every waiting task (an unschedulable one is placed as soon as a node fits);
an unchanged view is decided again when time alone changes the answer (a member's
``min_healthy_s``, a rollout or drain deadline: the round's ``wake_at``) and when an append was
not acknowledged. Every append carries the revision it was decided against as the expected one;
a conflict means the aggregate changed (often: another scheduler decided first) and is only
counted: the view will show why, and the next round decides again. SIGTERM sets ``stop``; the
current round finishes, then the connection drains.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime

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
from voiyd.events.models import AnyEvent
from voiyd.scheduler import metrics, plan, sets
from voiyd.scheduler.plan import Evict, MarkUnschedulable, Schedule
from voiyd.scheduler.rounds import AnyDecision, decide
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
    """Appended decisions by outcome (scheduled, unschedulable, evicted) or ``set-<action>``."""
    conflicts: int = 0
    errors: int = 0
    """Appends the log did not acknowledge: the same view is decided again."""
    invalid: int = 0
    """Decisions that make no valid event (logged; deciding again would not help)."""


def _log_decision(d: AnyDecision, seq: int) -> None:
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
        case _:
            log.info("%s seq %d", sets.describe(d), seq)


def _outcome(d: AnyDecision) -> str:
    """How ``d`` is counted: a placement outcome, or ``set-<action>``."""
    if isinstance(d, Schedule | MarkUnschedulable | Evict):
        return d.outcome
    return f"set-{d.action}"


def _about(d: AnyDecision) -> str:
    """What ``d`` is about, for a log line."""
    if isinstance(d, Schedule | MarkUnschedulable | Evict):
        return f"task {d.task}"
    if isinstance(d, sets.MemberDecision):
        return f"task {d.task} of set {d.set_name}"
    return f"set {d.set_name}"


def _event(d: AnyDecision, actor: str) -> AnyEvent:
    if isinstance(d, Schedule | MarkUnschedulable | Evict):
        return plan.to_event(d, event_id=ids.new_id(), actor=actor)
    return sets.to_event(d, event_id=ids.new_id(), actor=actor)


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
        self._wake_at: datetime | None = None
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

    def _due(self, now: datetime) -> bool:
        """Whether the view needs a round: it changed, an append failed, or time has come."""
        if self.view.seq != self._planned_seq:
            return True
        return self._wake_at is not None and now >= self._wake_at

    async def step(self) -> StepResult:
        """One round: decide on the caught-up view and append each decision.

        A round depends on the view and the time: a view already decided gives the same
        decisions until its ``wake_at``, so it is decided again only then or after an append
        failed (the log did not answer in time).
        """
        if not self.caught_up:
            return StepResult(skipped="behind")
        now = clock.now()
        if not self._due(now):
            return StepResult(skipped="unchanged")
        started = time.perf_counter()
        decided = decide(self.view, now)
        metrics.PLACEMENT_SECONDS.observe(time.perf_counter() - started)
        self._planned_seq = self.view.seq
        self._wake_at = decided.wake_at
        decisions = decided.decisions
        result = StepResult(ran=True, planned=len(decisions))
        if decisions:
            todo = iter(decisions)
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(self._settings.max_inflight, len(decisions))):
                    tg.create_task(self._append_worker(todo, result))
        if result.errors:
            self._planned_seq = None
        return result

    async def _append_worker(self, todo: Iterator[AnyDecision], result: StepResult) -> None:
        for decision in todo:
            await self._append(decision, result)

    async def _append(self, d: AnyDecision, result: StepResult) -> None:
        outcome = _outcome(d)
        try:
            event = _event(d, self._settings.actor)
        except ValueError as exc:
            # A decision that makes no valid event (e.g. a Set whose labels and the two member
            # labels exceed the label limit) would fail the same way every round: say so.
            log.error("%s of %s not appended: %s", outcome, _about(d), exc)
            metrics.APPEND_ERRORS.inc()
            result.invalid += 1
            return
        try:
            seq = await append(
                self._js,
                event,
                expected_revision=d.expected_revision,
                deadline_s=self._settings.append_deadline_s,
            )
        except ConflictError as exc:
            log.debug("%s of %s not appended: %s", outcome, _about(d), exc)
            metrics.CONFLICTS.inc()
            result.conflicts += 1
            return
        except VoiydError as exc:
            log.warning("%s of %s not appended: %s; a later round retries", outcome, _about(d), exc)
            metrics.APPEND_ERRORS.inc()
            result.errors += 1
            return
        self.appended_seq = max(self.appended_seq, seq)
        if isinstance(d, Schedule | MarkUnschedulable | Evict):
            metrics.PLACEMENTS.labels(outcome=d.outcome).inc()
        else:
            metrics.SET_ACTIONS.labels(action=d.action).inc()
        result.appended[outcome] += 1
        _log_decision(d, seq)

    def _timeout(self) -> float:
        """``interval_s``, or less when the last round's ``wake_at`` comes sooner."""
        timeout = self._settings.interval_s
        if self._wake_at is not None:
            until = (self._wake_at - clock.now()).total_seconds()
            if until > 0:  # a past one waits for the view to catch up (new events wake us)
                timeout = min(timeout, until)
        return timeout

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until something was buffered, ``stop`` is set, or the timeout has passed."""
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(
                waiters, timeout=self._timeout(), return_when=asyncio.FIRST_COMPLETED
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
