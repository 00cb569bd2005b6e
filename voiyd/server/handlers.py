"""The API endpoints of voiyd-server: validate, read the projection, decide, append, reply.

Writes go through one ``AggregateWriter`` per kind (decide against a read, append expecting that
revision, decide again on a conflict unless the caller pinned ``expected_revision``); every
write endpoint is the same few lines (``_writer``), given its request model and its decision.
Queries read SQLite only, after waiting (bounded) for ``min_revision``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nats.js import JetStreamContext
from pydantic import BaseModel

from voiyd import __version__, clock
from voiyd.api import requests as rq
from voiyd.api.specs import TaskConfig
from voiyd.api.validation import parse_model
from voiyd.api.views import EventView, NodeView, SetView, TaskView, VolumeView
from voiyd.bus import codec, subjects
from voiyd.bus.reader import read_events
from voiyd.bus.rpc import Handler
from voiyd.errors import FieldError, InvalidRequestError, NotFoundError, UnavailableError
from voiyd.events.fold import fold_node, fold_set, fold_task, fold_volume
from voiyd.projection import queries
from voiyd.projection.consumer import ProjectionFollower
from voiyd.server import decide, decide_nodes, decide_sets, decide_volumes
from voiyd.server.writer import AggregateWriter

log = logging.getLogger(__name__)

W = TypeVar("W", bound=rq.WriteOptions)
V = TypeVar("V")
Decider = Callable[[W, V | None, int, decide.Context], decide.Decision]
Prepare = Callable[[W], Awaitable[None]]


@dataclass
class Handlers:
    js: JetStreamContext
    follower: ProjectionFollower
    server_id: str
    read_wait_s: float = 5.0
    tasks: AggregateWriter[TaskView] = field(init=False)
    nodes: AggregateWriter[NodeView] = field(init=False)
    """Shared with ``AgentDesk`` (joins, liveness): one per-name lock and one recent cache."""
    sets: AggregateWriter[SetView] = field(init=False)
    volumes: AggregateWriter[VolumeView] = field(init=False)

    def __post_init__(self) -> None:
        store = self.follower.store
        js, follower = self.js, self.follower
        self.tasks = AggregateWriter(js, follower, "task", store.load_task, fold_task)
        self.nodes = AggregateWriter(js, follower, "node", store.load_node, fold_node)
        self.sets = AggregateWriter(js, follower, "set", store.load_set, fold_set)
        self.volumes = AggregateWriter(js, follower, "volume", store.load_volume, fold_volume)

    @property
    def db(self) -> Any:
        return self.follower.store.db

    def endpoints(self) -> Mapping[str, Handler]:
        out: dict[str, Handler] = {}
        for kind, verbs in (
            ("task", self._task_endpoints()),
            ("set", self._set_endpoints()),
            ("volume", self._volume_endpoints()),
            ("node", self._node_endpoints()),
        ):
            out.update({subjects.api(kind, verb): h for verb, h in verbs.items()})
        out[subjects.api("event", "list")] = self.event_list
        out[subjects.api("system", "info")] = self.info
        return out

    def _task_endpoints(self) -> dict[str, Handler]:
        t, vol = self.tasks, self._volume
        mounts = self._settle_mounts

        return {
            "create": self._writer(
                t,
                "task",
                rq.CreateTask,
                lambda c, v, r, x: decide.decide_create(c, v, r, x, vol),
                lambda c: c.task.name,
                lambda c: mounts(c.task.config),
            ),
            "apply": self._writer(
                t,
                "task",
                rq.ApplyTask,
                lambda c, v, r, x: decide.decide_apply(c, v, r, x, vol),
                lambda c: c.task.name,
                lambda c: mounts(c.task.config),
            ),
            "update": self._writer(
                t,
                "task",
                rq.UpdateTask,
                lambda c, v, r, x: decide.decide_update(c, v, r, x, vol),
                lambda c: c.task.name,
                lambda c: mounts(c.task.config),
            ),
            "patch": self._writer(
                t,
                "task",
                rq.PatchTask,
                lambda c, v, r, x: decide.decide_patch(c, v, r, x, vol),
                lambda c: c.name,
                lambda c: self._settle_patch(c.config),
            ),
            "delete": self._writer(t, "task", rq.DeleteTask, decide.decide_delete, _name),
            "start": self._writer(t, "task", rq.StartTask, decide.decide_start, _name),
            "stop": self._writer(t, "task", rq.StopTask, decide.decide_stop, _name),
            "get": self._getter(
                "task", lambda n: queries.get_task(self.db, n), lambda v: rq.TaskReply(task=v)
            ),
            "list": self._lister(
                lambda sel, lim: queries.list_tasks(self.db, sel, lim),
                lambda vs, rev: rq.TaskListReply(tasks=vs, revision=rev),
            ),
        }

    def _set_endpoints(self) -> dict[str, Handler]:
        s, vol, ds = self.sets, self._volume, decide_sets
        mounts = self._settle_mounts
        return {
            "create": self._writer(
                s,
                "set",
                rq.CreateSet,
                lambda c, v, r, x: ds.decide_create(c, v, r, x, vol),
                lambda c: c.set.name,
                lambda c: mounts(c.set.config.template),
            ),
            "apply": self._writer(
                s,
                "set",
                rq.ApplySet,
                lambda c, v, r, x: ds.decide_apply(c, v, r, x, vol),
                lambda c: c.set.name,
                lambda c: mounts(c.set.config.template),
            ),
            "update": self._writer(
                s,
                "set",
                rq.UpdateSet,
                lambda c, v, r, x: ds.decide_update(c, v, r, x, vol),
                lambda c: c.set.name,
                lambda c: mounts(c.set.config.template),
            ),
            "delete": self._writer(s, "set", rq.DeleteSet, ds.decide_delete, _name),
            "scale": self._writer(s, "set", rq.ScaleSet, ds.decide_scale, _name),
            "undo": self._writer(s, "set", rq.UndoSet, ds.decide_undo, _name),
            "restart": self._writer(s, "set", rq.RestartSet, ds.decide_restart, _name),
            "get": self._getter(
                "set",
                lambda n: queries.get_set(self.db, n, clock.now()),
                lambda v: rq.SetReply(set=v),
            ),
            "list": self._lister(
                lambda sel, lim: queries.list_sets(self.db, clock.now(), sel, lim),
                lambda vs, rev: rq.SetListReply(sets=vs, revision=rev),
            ),
        }

    def _volume_endpoints(self) -> dict[str, Handler]:
        w, dv = self.volumes, decide_volumes
        known = self._node_known
        return {
            "create": self._writer(
                w,
                "volume",
                rq.CreateVolume,
                lambda c, v, r, x: dv.decide_create(c, v, r, x, known(c.volume.config.node)),
                lambda c: c.volume.name,
                lambda c: self._settle_node(c.volume.config.node),
            ),
            "apply": self._writer(
                w,
                "volume",
                rq.ApplyVolume,
                lambda c, v, r, x: dv.decide_apply(c, v, r, x, known(c.volume.config.node)),
                lambda c: c.volume.name,
                lambda c: self._settle_node(c.volume.config.node),
            ),
            "delete": self._writer(
                w,
                "volume",
                rq.DeleteVolume,
                lambda c, v, r, x: dv.decide_delete(
                    c, v, r, x, queries.volume_users(self.db, c.name)
                ),
                _name,
                lambda c: self._settle(),
            ),
            "get": self._getter(
                "volume",
                lambda n: queries.get_volume(self.db, n),
                lambda v: rq.VolumeReply(volume=v),
            ),
            "list": self._lister(
                lambda sel, lim: queries.list_volumes(self.db, sel, lim),
                lambda vs, rev: rq.VolumeListReply(volumes=vs, revision=rev),
            ),
        }

    def _node_endpoints(self) -> dict[str, Handler]:
        n, dn = self.nodes, decide_nodes
        return {
            "cordon": self._writer(n, "node", rq.CordonNode, dn.decide_cordon, _name),
            "uncordon": self._writer(n, "node", rq.UncordonNode, dn.decide_uncordon, _name),
            "drain": self._writer(n, "node", rq.DrainNode, dn.decide_drain, _name),
            "label": self._writer(n, "node", rq.LabelNode, dn.decide_label, _name),
            "delete": self._writer(
                n,
                "node",
                rq.DeleteNode,
                lambda c, v, r, x: dn.decide_delete(
                    c, v, r, x, queries.tasks_on_node(self.db, c.name)
                ),
                _name,
                lambda c: self._settle(),
            ),
            "get": self._getter(
                "node", lambda n: queries.get_node(self.db, n), lambda v: rq.NodeReply(node=v)
            ),
            "list": self._lister(
                lambda sel, lim: queries.list_nodes(self.db, sel, lim),
                lambda vs, rev: rq.NodeListReply(nodes=vs, revision=rev),
            ),
        }

    # ---- writes -------------------------------------------------------------------------------

    def _writer(
        self,
        writer: AggregateWriter[V],
        reply_field: str,
        model: type[W],
        decider: Decider[W, V],
        name_of: Callable[[W], str],
        prepare: Prepare[W] | None = None,
    ) -> Handler:
        """An endpoint: validate ``model``, ``prepare``, decide and append, reply the view."""

        async def handle(body: dict[str, Any]) -> BaseModel:
            cmd = parse_model(model, body)
            if prepare is not None:
                await prepare(cmd)

            def decide_now(view: V | None, revision: int, ctx: decide.Context) -> decide.Decision:
                return decider(cmd, view, revision, ctx)

            written = await writer.write(
                name_of(cmd),
                decide_now,
                actor=cmd.actor,
                pinned=cmd.expected_revision is not None,
                dry_run=cmd.dry_run,
            )
            reply: dict[str, Any] = {reply_field: written.view}
            return rq.WriteReply(revision=written.revision, changed=written.changed, **reply)

        return handle

    def _volume(self, name: str) -> VolumeView | None:
        """A volume as this replica knows it: the projection, or its own newer write."""
        return self.volumes.current(name)[0]

    def _node_known(self, name: str | None) -> bool:
        return name is None or self.nodes.current(name)[0] is not None

    async def _settle(self) -> None:
        """Wait (bounded) until the projection holds every event appended so far.

        Decisions about other aggregates (is a volume in use, does a node still run tasks, does
        a volume exist) then see what any replica wrote before this request arrived.
        """
        info = await self.js.stream_info(subjects.EVENTS_STREAM)
        await self.follower.wait_for(info.state.last_seq or 0, self.read_wait_s)

    async def _settle_mounts(self, config: TaskConfig) -> None:
        if any(self._volume(v) is None for v in decide.mounted_volumes(config)):
            await self._settle()  # perhaps created a moment ago through another replica

    async def _settle_patch(self, config: Mapping[str, Any]) -> None:
        """A patch that names mounts may name a volume made a moment ago elsewhere."""
        if "mounts" in config:
            await self._settle()

    async def _settle_node(self, node: str | None) -> None:
        if not self._node_known(node):
            await self._settle()

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

    def _getter(
        self,
        kind: str,
        load: Callable[[str], BaseModel | None],
        reply: Callable[[Any], BaseModel],
    ) -> Handler:
        """``<kind>.get``: one view by name, after waiting for ``min_revision``."""

        async def handle(body: dict[str, Any]) -> BaseModel:
            q = parse_model(rq.GetByName, body)
            await self._caught_up(q.min_revision)
            view = load(q.name)
            if view is None:
                raise NotFoundError(f"{kind} {q.name!r} not found")
            return reply(view)

        return handle

    def _lister(
        self,
        load: Callable[[str, int], Sequence[BaseModel]],
        reply: Callable[[Any, int], BaseModel],
    ) -> Handler:
        """``<kind>.list``: views by selector, with the revision they were read at."""

        async def handle(body: dict[str, Any]) -> BaseModel:
            q = parse_model(rq.ListQuery, body)
            await self._caught_up(q.min_revision)
            return reply(load(q.selector, q.limit), self.follower.applied_seq)

        return handle

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


def _name(cmd: Any) -> str:
    """The aggregate a by-name command is about."""
    return str(cmd.name)
