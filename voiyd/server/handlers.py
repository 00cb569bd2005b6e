"""The API endpoints of voiyd-server: validate, read the projection, decide, append, reply.

Writes loop on optimistic-concurrency conflicts: wait until the projection has seen the newer
revision, decide again on the fresh view (so a concurrent update is never lost), unless the
caller pinned an ``expected_revision``, in which case the conflict is theirs to handle.
Queries read SQLite only, after waiting (bounded) for ``min_revision``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

from nats.js import JetStreamContext
from pydantic import BaseModel

from voiyd import __version__, clock, ids
from voiyd.api import requests as rq
from voiyd.api.validation import parse_model
from voiyd.api.views import EventView, TaskView
from voiyd.bus import codec, subjects
from voiyd.bus.publish import append
from voiyd.bus.reader import read_events
from voiyd.bus.rpc import Handler
from voiyd.errors import ConflictError, NotFoundError, UnavailableError
from voiyd.events.fold import TaskEvent, evolve_task
from voiyd.projection import queries
from voiyd.projection.consumer import ProjectionFollower
from voiyd.server import decide, metrics

log = logging.getLogger(__name__)

MAX_DECIDE_ATTEMPTS = 20
W = TypeVar("W", bound=rq.WriteOptions)
Decider = Callable[[W, TaskView | None, int, decide.Context], decide.Decision]


@dataclass
class Handlers:
    js: JetStreamContext
    follower: ProjectionFollower
    server_id: str
    read_wait_s: float = 5.0

    @property
    def db(self) -> Any:
        return self.follower.store.db

    def endpoints(self) -> Mapping[str, Handler]:
        task = {
            "create": self._writer(rq.CreateTask, decide.decide_create, lambda c: c.task.name),
            "apply": self._writer(rq.ApplyTask, decide.decide_apply, lambda c: c.task.name),
            "update": self._writer(rq.UpdateTask, decide.decide_update, lambda c: c.task.name),
            "patch": self._writer(rq.PatchTask, decide.decide_patch, lambda c: c.name),
            "delete": self._writer(rq.DeleteTask, decide.decide_delete, lambda c: c.name),
            "start": self._writer(rq.StartTask, decide.decide_start, lambda c: c.name),
            "stop": self._writer(rq.StopTask, decide.decide_stop, lambda c: c.name),
            "get": self.task_get,
            "list": self.task_list,
        }
        out: dict[str, Handler] = {subjects.api("task", v): h for v, h in task.items()}
        out[subjects.api("node", "get")] = self.node_get
        out[subjects.api("node", "list")] = self.node_list
        out[subjects.api("event", "list")] = self.event_list
        out[subjects.api("system", "info")] = self.info
        return out

    # ---- writes -------------------------------------------------------------------------------

    def _writer(self, model: type[W], decider: Decider[W], name_of: Callable[[W], str]) -> Handler:
        async def handle(body: dict[str, Any]) -> BaseModel:
            cmd = parse_model(model, body)
            return await self._write(cmd, decider, name_of(cmd))

        return handle

    async def _write(self, cmd: W, decider: Decider[W], name: str) -> rq.WriteReply:
        subject = subjects.event("task", name)
        store = self.follower.store
        for _ in range(MAX_DECIDE_ATTEMPTS):
            current, revision = store.load_task(name), store.revision(subject)
            ctx = decide.Context(now=clock.now(), event_id=ids.new_id(), actor=cmd.actor)
            decision = decider(cmd, current, revision, ctx)
            event = decision.event
            if event is None:
                return rq.WriteReply(revision=revision, changed=False, task=current)
            assert isinstance(event, TaskEvent)
            if cmd.dry_run:
                preview = evolve_task(current, event, revision)
                return rq.WriteReply(revision=revision, changed=True, task=preview)
            try:
                seq = await append(self.js, event, decision.expected_revision)
            except ConflictError as exc:
                metrics.APPEND_CONFLICTS.inc()
                if cmd.expected_revision is not None:
                    raise
                await self.follower.wait_for(exc.actual_revision or store.last_seq + 1, 2.0)
                continue
            metrics.EVENTS_APPENDED.labels(type=event.type).inc()
            log.info("appended %s %s seq=%d id=%s", event.type, name, seq, event.id)
            return rq.WriteReply(revision=seq, changed=True, task=evolve_task(current, event, seq))
        raise ConflictError(
            f"task {name!r} kept changing; gave up after {MAX_DECIDE_ATTEMPTS} tries"
        )

    # ---- queries ------------------------------------------------------------------------------

    async def _caught_up(self, min_revision: int) -> None:
        if min_revision and not await self.follower.wait_for(min_revision, self.read_wait_s):
            raise UnavailableError(
                f"projection is at revision {self.follower.applied_seq}, not yet {min_revision}; "
                "try again"
            )

    async def task_get(self, body: dict[str, Any]) -> BaseModel:
        q = parse_model(rq.GetByName, body)
        await self._caught_up(q.min_revision)
        task = queries.get_task(self.db, q.name)
        if task is None:
            raise NotFoundError(f"task {q.name!r} not found")
        return rq.TaskReply(task=task)

    async def task_list(self, body: dict[str, Any]) -> BaseModel:
        q = parse_model(rq.ListQuery, body)
        await self._caught_up(q.min_revision)
        tasks = queries.list_tasks(self.db, q.selector, q.limit)
        return rq.TaskListReply(tasks=tasks, revision=self.follower.applied_seq)

    async def node_get(self, body: dict[str, Any]) -> BaseModel:
        q = parse_model(rq.GetByName, body)
        await self._caught_up(q.min_revision)
        node = queries.get_node(self.db, q.name)
        if node is None:
            raise NotFoundError(f"node {q.name!r} not found")
        return rq.NodeReply(node=node)

    async def node_list(self, body: dict[str, Any]) -> BaseModel:
        q = parse_model(rq.ListQuery, body)
        await self._caught_up(q.min_revision)
        nodes = queries.list_nodes(self.db, q.selector, q.limit)
        return rq.NodeListReply(nodes=nodes, revision=self.follower.applied_seq)

    async def event_list(self, body: dict[str, Any]) -> BaseModel:
        q = parse_model(rq.ListEvents, body)
        filter_subject = subjects.events_filter(q.kind, q.name)
        info = await self.js.stream_info(subjects.EVENTS_STREAM)
        last = info.state.last_seq or 0
        events: list[EventView] = []
        if q.since_seq < last:
            reader = read_events(self.js, filter_subject, start_seq=q.since_seq + 1, limit=q.limit)
            async with aclosing(reader):
                async for raw in reader:
                    event = codec.decode_map(raw.data)
                    events.append(EventView(seq=raw.seq, subject=raw.subject, event=event))
                    if raw.seq >= last:
                        break
        return rq.EventListReply(events=events, last_seq=last)

    async def info(self, body: dict[str, Any]) -> BaseModel:
        parse_model(rq.Query, body)
        info = await self.js.stream_info(subjects.EVENTS_STREAM)
        return rq.InfoReply(
            version=__version__,
            server_id=self.server_id,
            projection_seq=self.follower.applied_seq,
            stream_last_seq=info.state.last_seq or 0,
        )
