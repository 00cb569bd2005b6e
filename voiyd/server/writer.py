"""Decide-and-append for one aggregate, safely under concurrency.

``AggregateWriter.write`` reads the aggregate (the projection, or this replica's own newer
write), calls a pure decision, and appends the event expecting the revision it read. On a
conflict it waits until the projection has seen the newer revision and decides again, so a
concurrent update is never lost, unless the caller pinned a revision (then the conflict is
theirs). Within one replica, writers of the same aggregate take turns (a per-name lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from nats.js import JetStreamContext

from voiyd import clock, ids
from voiyd.bus import subjects
from voiyd.bus.publish import append
from voiyd.errors import ConflictError
from voiyd.events import models as ev
from voiyd.projection.consumer import ProjectionFollower
from voiyd.server import metrics
from voiyd.server.decide import Context, Decision

log = logging.getLogger(__name__)

MAX_DECIDE_ATTEMPTS = 50
_RECENT_MAX = 1000

V = TypeVar("V")


@dataclass(frozen=True)
class Written(Generic[V]):
    revision: int
    changed: bool
    view: V | None


class AggregateWriter(Generic[V]):
    def __init__(
        self,
        js: JetStreamContext,
        follower: ProjectionFollower,
        kind: str,
        load: Callable[[str], V | None],
        fold: Callable[[V | None, ev.AnyEvent, int], V | None],
    ) -> None:
        self._js = js
        self._follower = follower
        self._kind = kind
        self._load = load
        self._fold = fold
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._recent: dict[str, tuple[int, V | None]] = {}

    def current(self, name: str) -> tuple[V | None, int]:
        """The aggregate and its revision: the projection's, or this replica's own newer write."""
        view = self._load(name)
        revision = self._follower.store.revision(subjects.event(self._kind, name))
        recent = self._recent.get(name)
        if recent is not None:
            if recent[0] > revision:
                return recent[1], recent[0]
            del self._recent[name]
        return view, revision

    async def write(
        self,
        name: str,
        decide: Callable[[V | None, int, Context], Decision],
        *,
        actor: str,
        pinned: bool = False,
        dry_run: bool = False,
        event_id: str | None = None,
    ) -> Written[V]:
        async with self._lock(name):
            for attempt in range(MAX_DECIDE_ATTEMPTS):
                view, revision = self.current(name)
                ctx = Context(now=clock.now(), event_id=event_id or ids.new_id(), actor=actor)
                decision = decide(view, revision, ctx)
                event = decision.event
                if event is None:
                    return Written(revision, False, view)
                if dry_run:
                    return Written(revision, True, self._fold(view, event, revision))
                try:
                    seq = await append(self._js, event, decision.expected_revision)
                except ConflictError as exc:
                    metrics.APPEND_CONFLICTS.inc()
                    if pinned:
                        raise
                    await self._after_conflict(exc, attempt)
                    continue
                metrics.EVENTS_APPENDED.labels(type=event.type).inc()
                log.info("appended %s %s seq=%d id=%s", event.type, name, seq, event.id)
                after = self._fold(view, event, seq)
                self._recent[name] = (seq, after)
                return Written(seq, True, after)
        raise ConflictError(
            f"{self._kind} {name!r} kept changing; gave up after {MAX_DECIDE_ATTEMPTS} tries"
        )

    async def _after_conflict(self, exc: ConflictError, attempt: int) -> None:
        store = self._follower.store
        await self._follower.wait_for(exc.actual_revision or store.last_seq + 1, 2.0)
        # Another replica is writing the same aggregate: step aside a little.
        await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))

    @contextlib.asynccontextmanager
    async def _lock(self, name: str) -> AsyncIterator[None]:
        """One writer per aggregate in this replica; other replicas are kept out by the log."""
        lock, users = self._locks.get(name, (asyncio.Lock(), 0))
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)
        if len(self._recent) > _RECENT_MAX:
            applied = self._follower.applied_seq
            self._recent = {k: v for k, v in self._recent.items() if v[0] > applied}
