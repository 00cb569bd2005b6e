"""The API endpoints of voiyd-server: validate, read the projection, decide, append, reply.

Writes go through ``AggregateWriter`` (decide against a read, append expecting that revision,
decide again on a conflict unless the caller pinned ``expected_revision``).
Queries read SQLite only, after waiting (bounded) for ``min_revision``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nats.js import JetStreamContext
from pydantic import BaseModel

from voiyd import __version__
from voiyd.api import requests as rq
from voiyd.api.validation import parse_model
from voiyd.api.views import EventView, TaskView
from voiyd.bus import codec, subjects
from voiyd.bus.reader import read_events
from voiyd.bus.rpc import Handler
from voiyd.errors import FieldError, InvalidRequestError, NotFoundError, UnavailableError
from voiyd.events.fold import fold_task
from voiyd.projection import queries
from voiyd.projection.consumer import ProjectionFollower
from voiyd.server import decide
from voiyd.server.writer import AggregateWriter

log = logging.getLogger(__name__)

W = TypeVar("W", bound=rq.WriteOptions)
Decider = Callable[[W, TaskView | None, int, decide.Context], decide.Decision]


@dataclass
class Handlers:
    js: JetStreamContext
    follower: ProjectionFollower
    server_id: str
    read_wait_s: float = 5.0
    tasks: AggregateWriter[TaskView] = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = AggregateWriter(
            self.js, self.follower, "task", self.follower.store.load_task, fold_task
        )

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
        def decide_now(
            view: TaskView | None, revision: int, ctx: decide.Context
        ) -> decide.Decision:
            return decider(cmd, view, revision, ctx)

        written = await self.tasks.write(
            name,
            decide_now,
            actor=cmd.actor,
            pinned=cmd.expected_revision is not None,
            dry_run=cmd.dry_run,
        )
        return rq.WriteReply(revision=written.revision, changed=written.changed, task=written.view)

    # ---- queries ------------------------------------------------------------------------------

    async def _caught_up(self, min_revision: int) -> None:
        if not min_revision or self.follower.applied_seq >= min_revision:
            return
        info = await self.js.stream_info(subjects.EVENTS_STREAM)
        if min_revision > (info.state.last_seq or 0):
            raise InvalidRequestError(
                f"min_revision {min_revision} is ahead of the event log (last revision "
                f"{info.state.last_seq or 0})",
                [FieldError("min_revision", "no such revision yet")],
            )
        if not await self.follower.wait_for(min_revision, self.read_wait_s):
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
