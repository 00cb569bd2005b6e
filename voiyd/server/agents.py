"""The server's side of the agents: their reports, their heartbeats (liveness) and their KV keys.

- ``voiyd.agent.*.report`` (request/reply): a join or a task report becomes an event; the reply
  is sent only after the append, so an agent that got no reply sends the same report again (its
  ``report_id`` is the event id, so it appends once). Reports are fenced by placement epoch.
- ``voiyd.agent.*.heartbeat``: every replica listens and remembers when it last heard each node;
  ``check_liveness`` (one round, called every second) appends not-ready / lost / ready.
- ``sync_assignments``: after each projection batch, ``$KV.voiyd-assignments.<node>.<task>`` is
  put or deleted to match the tasks that changed; at start a full pass repairs any drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import BaseModel, TypeAdapter

from voiyd import clock
from voiyd.api.agent import (
    AgentReport,
    Assignment,
    Heartbeat,
    NodeJoin,
    ReportReply,
    TaskReport,
)
from voiyd.api.validation import parse_model
from voiyd.api.views import NodeView, TaskView, VolumeView
from voiyd.bus import codec, subjects
from voiyd.bus.rpc import current_subject
from voiyd.errors import ForbiddenError, InvalidRequestError
from voiyd.projection import queries
from voiyd.projection.consumer import ProjectionFollower
from voiyd.server import metrics
from voiyd.server.decide import Context, Decision, mounted_volumes
from voiyd.server.decide_agent import (
    LivenessRules,
    Refused,
    assignment_for,
    decide_join,
    decide_liveness,
    decide_report,
)
from voiyd.server.writer import AggregateWriter

log = logging.getLogger(__name__)

REPORT_SUBJECT = f"{subjects.AGENT_PREFIX}.*.report"
HEARTBEAT_SUBJECT = f"{subjects.AGENT_PREFIX}.*.heartbeat"
_KV_CONCURRENCY = 64
NodeDecider = Callable[[NodeView | None, int, Context], Decision]
_REPORT = TypeAdapter[NodeJoin | TaskReport](AgentReport)


class AgentDesk:
    def __init__(
        self,
        nc: Client,
        follower: ProjectionFollower,
        tasks: AggregateWriter[TaskView],
        nodes: AggregateWriter[NodeView],
        rules: LivenessRules,
    ) -> None:
        """``tasks`` and ``nodes`` are the API's writers: one lock and recent cache per kind."""
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._follower = follower
        self._tasks = tasks
        self._nodes = nodes
        self._rules = rules
        self._started = clock.now()
        self._last_seen: dict[str, datetime] = {}
        self._kv: KeyValue | None = None

    # ---- reports ------------------------------------------------------------------------------

    async def report(self, body: dict[str, object]) -> BaseModel:
        node = current_subject.get().split(".")[2]
        try:
            report = _REPORT.validate_python(body)
        except Exception:
            parse_model(TaskReport if body.get("kind") == "task" else NodeJoin, body)
            raise
        if report.node != node:
            raise ForbiddenError(f"node {node!r} may not report for node {report.node!r}")
        if isinstance(report, NodeJoin):
            return await self._join(report)
        return await self._task_report(report)

    async def _join(self, join: NodeJoin) -> ReportReply:
        def decide(view: NodeView | None, revision: int, ctx: Context) -> Decision:
            return Decision(decide_join(join, view, ctx), revision)

        self._last_seen[join.node] = clock.now()
        written = await self._nodes.write(join.node, decide, actor=f"node:{join.node}")
        return ReportReply(accepted=True, revision=written.revision)

    async def _task_report(self, report: TaskReport) -> ReportReply:
        refused: list[str] = []

        def decide(view: TaskView | None, revision: int, ctx: Context) -> Decision:
            outcome = decide_report(report, view, ctx)
            if isinstance(outcome, Refused):
                refused.append(outcome.reason)
                return Decision(None, revision)
            return Decision(outcome, revision)

        written = await self._tasks.write(
            report.task, decide, actor=f"node:{report.node}", event_id=report.report_id
        )
        if refused:
            log.info("refused report %s from %s: %s", report.state, report.node, refused[-1])
            return ReportReply(accepted=False, revision=written.revision, reason=refused[-1])
        return ReportReply(accepted=True, revision=written.revision)

    # ---- liveness -----------------------------------------------------------------------------

    async def on_heartbeat(self, msg: Msg) -> None:
        try:
            beat = Heartbeat.model_validate(codec.decode_map(msg.data))
        except (InvalidRequestError, ValueError) as exc:
            log.warning("bad heartbeat on %s: %s", msg.subject, exc)
            return
        if msg.subject != subjects.agent_heartbeat(beat.node):
            log.warning("heartbeat for %s arrived on %s; ignored", beat.node, msg.subject)
            return
        metrics.HEARTBEATS.inc()
        self._last_seen[beat.node] = clock.now()

    async def check_liveness(self) -> None:
        """One round: append what heartbeat silence (or its end) means for each node."""
        now = clock.now()
        for node in queries.list_nodes(self._follower.store.db):
            last = max(self._last_seen.get(node.name, self._started), self._started)
            probe = Context(now=now, event_id="probe", actor="voiyd-server")
            if decide_liveness(node, last, now, self._rules, probe) is not None:
                await self._nodes.write(node.name, self._liveness(last, now), actor="voiyd-server")

    def _liveness(self, last: datetime, now: datetime) -> NodeDecider:
        def decide(view: NodeView | None, revision: int, ctx: Context) -> Decision:
            if view is None:
                return Decision(None, revision)
            return Decision(decide_liveness(view, last, now, self._rules, ctx), revision)

        return decide

    # ---- assignments --------------------------------------------------------------------------

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._js.key_value(subjects.ASSIGNMENTS_BUCKET)
        return self._kv

    def _assignment(
        self, task: TaskView, loaded: dict[str, VolumeView | None]
    ) -> Assignment | None:
        """The task's assignment; ``loaded`` keeps the volumes read for one pass (each is read
        and parsed once however many tasks mount it)."""
        load = self._follower.store.load_volume
        for name in mounted_volumes(task.config):
            if name not in loaded:
                loaded[name] = load(name)
        volumes = {name: loaded[name] for name in mounted_volumes(task.config)}
        return assignment_for(task, volumes)

    async def sync_assignments(self, changed: dict[str, str | None]) -> None:
        """Put or delete the KV keys of tasks changed in a batch (``{task: node before}``)."""
        kv = await self._bucket()
        store = self._follower.store
        ops: list[tuple[str, bytes | None]] = []
        loaded: dict[str, VolumeView | None] = {}
        for name, before in changed.items():
            task = store.load_task(name)
            wanted = self._assignment(task, loaded) if task is not None else None
            if before is not None and (wanted is None or wanted.node != before):
                ops.append((subjects.assignment_key(before, name), None))
            if wanted is not None:
                ops.append((subjects.assignment_key(wanted.node, name), codec.encode(wanted)))
        await _apply(kv, ops)

    async def full_sync(self) -> None:
        """Make the bucket match the projection exactly (start-up repair)."""
        kv = await self._bucket()
        wanted: dict[str, bytes] = {}
        loaded: dict[str, VolumeView | None] = {}
        for task in queries.list_tasks(self._follower.store.db):
            assignment = self._assignment(task, loaded)
            if assignment is not None:
                key = subjects.assignment_key(assignment.node, assignment.task)
                wanted[key] = codec.encode(assignment)
        try:
            existing = set(await kv.keys())
        except NoKeysError:
            existing = set()
        ops: list[tuple[str, bytes | None]] = [(k, None) for k in existing - set(wanted)]
        for key, value in wanted.items():
            try:
                entry = await kv.get(key)
                if entry.value == value:
                    continue
            except KeyNotFoundError:
                pass
            ops.append((key, value))
        await _apply(kv, ops)
        log.info("assignments in sync: %d keys, %d written or deleted", len(wanted), len(ops))


async def _apply(kv: KeyValue, ops: Iterable[tuple[str, bytes | None]]) -> None:
    slots = asyncio.Semaphore(_KV_CONCURRENCY)

    async def one(key: str, value: bytes | None) -> None:
        async with slots:
            if value is None:
                with contextlib.suppress(KeyNotFoundError):
                    await kv.delete(key)
            else:
                await kv.put(key, value)
            metrics.ASSIGNMENT_WRITES.labels(op="delete" if value is None else "put").inc()

    await asyncio.gather(*(one(k, v) for k, v in ops))
