"""CORE: every event voiyd appends, as frozen pydantic models in one discriminated union.

The envelope is ``{id, type, v, at, actor, data}``; ``type`` is the wire name (never changes),
``v`` the shape version of ``data``; old shapes are upgraded by the pure upcasters in
``voiyd.events.upcast`` before validation. ``data.name`` names the aggregate, whose subject is
``voiyd.events.<kind>.<name>``. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from voiyd.api.specs import (
    Labels,
    Name,
    SetConfig,
    SetDoc,
    TaskConfig,
    TaskDoc,
    VolumeConfig,
    VolumeDoc,
)
from voiyd.api.views import NodeCapacity
from voiyd.events.upcast import upcast


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(_Frozen):
    """Envelope fields shared by every event."""

    id: str = Field(min_length=1, max_length=64)
    v: int = 1
    at: AwareDatetime
    actor: str = Field(max_length=128)


# ---- task -------------------------------------------------------------------------------------


class TaskRef(_Frozen):
    name: Name


class TaskSpecData(_Frozen):
    name: Name
    labels: Labels = Field(default_factory=dict)
    config: TaskConfig

    @classmethod
    def from_doc(cls, doc: TaskDoc) -> TaskSpecData:
        # The document is validated already; constructing skips validating it a second time.
        return cls.model_construct(name=doc.meta.name, labels=doc.meta.labels, config=doc.config)


class TaskCreated(Event):
    type: Literal["task.created"] = "task.created"
    data: TaskSpecData


class TaskUpdated(Event):
    type: Literal["task.updated"] = "task.updated"
    data: TaskSpecData


class TaskDeleted(Event):
    type: Literal["task.deleted"] = "task.deleted"
    data: TaskRef


class TaskStartRequested(Event):
    type: Literal["task.start-requested"] = "task.start-requested"
    data: TaskRef


class TaskStopRequested(Event):
    type: Literal["task.stop-requested"] = "task.stop-requested"
    data: TaskRef


class PlacementData(_Frozen):
    name: Name
    node: Name
    epoch: int = Field(ge=1)


class TaskScheduled(Event):
    type: Literal["task.scheduled"] = "task.scheduled"
    data: PlacementData


class UnschedulableData(_Frozen):
    name: Name
    reason: str


class TaskUnschedulable(Event):
    type: Literal["task.unschedulable"] = "task.unschedulable"
    data: UnschedulableData


class EvictedData(PlacementData):
    reason: str


class TaskEvicted(Event):
    """The placement ``epoch`` on ``node`` is revoked (node lost, drained, selector changed)."""

    type: Literal["task.evicted"] = "task.evicted"
    data: EvictedData


class PullingData(PlacementData):
    image: str


class TaskPulling(Event):
    type: Literal["task.pulling"] = "task.pulling"
    data: PullingData


class TaskStarting(Event):
    type: Literal["task.starting"] = "task.starting"
    data: PlacementData


class StartedData(PlacementData):
    container_id: str
    ip: str | None = None
    pid: int | None = None


class TaskStarted(Event):
    type: Literal["task.started"] = "task.started"
    data: StartedData


class HealthData(PlacementData):
    healthy: bool
    message: str = ""


class TaskHealthChanged(Event):
    type: Literal["task.health-changed"] = "task.health-changed"
    data: HealthData


class ExitedData(PlacementData):
    exit_code: int
    reason: str = ""


class TaskExited(Event):
    type: Literal["task.exited"] = "task.exited"
    data: ExitedData


class RestartedData(PlacementData):
    restarts: int = Field(ge=1)
    delay_s: float = Field(ge=0)


class TaskRestarted(Event):
    type: Literal["task.restarted"] = "task.restarted"
    data: RestartedData


class TaskStopped(Event):
    type: Literal["task.stopped"] = "task.stopped"
    data: PlacementData


class LogsDroppedData(PlacementData):
    dropped: int = Field(ge=1)


class TaskLogsDropped(Event):
    """The placement's agent had to drop log lines; ``dropped`` is its total so far."""

    type: Literal["task.logs-dropped"] = "task.logs-dropped"
    data: LogsDroppedData


class FailedData(_Frozen):
    name: Name
    node: Name | None = None
    epoch: int = 0
    reason: str
    exit_code: int | None = None


class TaskFailed(Event):
    type: Literal["task.failed"] = "task.failed"
    data: FailedData


# ---- node -------------------------------------------------------------------------------------


class NodeJoinedData(_Frozen):
    name: Name
    labels: Labels = Field(default_factory=dict)
    runtimes: list[str] = Field(default_factory=list)
    capacity: NodeCapacity = Field(default_factory=NodeCapacity)
    agent_version: str = ""


class NodeJoined(Event):
    type: Literal["node.joined"] = "node.joined"
    data: NodeJoinedData


class NodeRef(_Frozen):
    name: Name


class NodeReasonData(NodeRef):
    reason: str = ""


class NodeReady(Event):
    type: Literal["node.ready"] = "node.ready"
    data: NodeRef


class NodeNotReady(Event):
    type: Literal["node.not-ready"] = "node.not-ready"
    data: NodeReasonData


class NodeLost(Event):
    type: Literal["node.lost"] = "node.lost"
    data: NodeReasonData


class NodeCordoned(Event):
    type: Literal["node.cordoned"] = "node.cordoned"
    data: NodeRef


class NodeUncordoned(Event):
    type: Literal["node.uncordoned"] = "node.uncordoned"
    data: NodeRef


class NodeDrainData(NodeRef):
    deadline_at: AwareDatetime | None = None
    """After this, tasks still on the node are moved regardless of their Set's max_parallel."""


class NodeDraining(Event):
    type: Literal["node.draining"] = "node.draining"
    data: NodeDrainData


class NodeLabelsData(NodeRef):
    labels: Labels


class NodeLabeled(Event):
    type: Literal["node.labeled"] = "node.labeled"
    data: NodeLabelsData


class NodeDeleted(Event):
    type: Literal["node.deleted"] = "node.deleted"
    data: NodeRef


# ---- volume and set ---------------------------------------------------------------------------


class VolumeSpecData(_Frozen):
    name: Name
    labels: Labels = Field(default_factory=dict)
    config: VolumeConfig

    @classmethod
    def from_doc(cls, doc: VolumeDoc) -> VolumeSpecData:
        return cls.model_construct(name=doc.meta.name, labels=doc.meta.labels, config=doc.config)


class VolumeCreated(Event):
    type: Literal["volume.created"] = "volume.created"
    data: VolumeSpecData


class VolumeUpdated(Event):
    """Labels or a template's files changed (a volume's type and node never change)."""

    type: Literal["volume.updated"] = "volume.updated"
    data: VolumeSpecData


class VolumeRef(_Frozen):
    name: Name


class VolumeDeleted(Event):
    type: Literal["volume.deleted"] = "volume.deleted"
    data: VolumeRef


class SetSpecData(_Frozen):
    name: Name
    labels: Labels = Field(default_factory=dict)
    config: SetConfig
    cause: str = Field(default="", max_length=1024)
    """Why: empty for an operator's change, ``rollback to revision N``, ``automatic rollback``."""

    @classmethod
    def from_doc(cls, doc: SetDoc, cause: str = "") -> SetSpecData:
        return cls.model_construct(
            name=doc.meta.name, labels=doc.meta.labels, config=doc.config, cause=cause
        )


class SetCreated(Event):
    type: Literal["set.created"] = "set.created"
    data: SetSpecData


class SetUpdated(Event):
    """A new spec; a changed template is a new template revision and starts a rollout."""

    type: Literal["set.updated"] = "set.updated"
    data: SetSpecData


class SetScaledData(_Frozen):
    name: Name
    replicas: int = Field(ge=0, le=10_000)


class SetScaled(Event):
    type: Literal["set.scaled"] = "set.scaled"
    data: SetScaledData


class SetRef(_Frozen):
    name: Name


class SetRestarted(Event):
    """A new template revision with the same template: every member is replaced (rolling)."""

    type: Literal["set.restarted"] = "set.restarted"
    data: SetRef


class RolloutData(_Frozen):
    name: Name
    revision: int = Field(ge=1)
    """The template revision the rollout was moving to."""


class SetRolloutCompleted(Event):
    type: Literal["set.rollout-completed"] = "set.rollout-completed"
    data: RolloutData


class RolloutFailedData(RolloutData):
    reason: str = Field(max_length=4096)


class SetRolloutFailed(Event):
    type: Literal["set.rollout-failed"] = "set.rollout-failed"
    data: RolloutFailedData


class SetDeleted(Event):
    type: Literal["set.deleted"] = "set.deleted"
    data: SetRef


AnyEvent = Annotated[
    TaskCreated
    | TaskUpdated
    | TaskDeleted
    | TaskStartRequested
    | TaskStopRequested
    | TaskScheduled
    | TaskUnschedulable
    | TaskEvicted
    | TaskPulling
    | TaskStarting
    | TaskStarted
    | TaskHealthChanged
    | TaskExited
    | TaskRestarted
    | TaskStopped
    | TaskFailed
    | TaskLogsDropped
    | NodeJoined
    | NodeReady
    | NodeNotReady
    | NodeLost
    | NodeCordoned
    | NodeUncordoned
    | NodeDraining
    | NodeLabeled
    | NodeDeleted
    | VolumeCreated
    | VolumeUpdated
    | VolumeDeleted
    | SetCreated
    | SetUpdated
    | SetScaled
    | SetRestarted
    | SetRolloutCompleted
    | SetRolloutFailed
    | SetDeleted,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
EVENT_TYPES: tuple[str, ...] = tuple(
    sorted(m.model_fields["type"].default for m in AnyEvent.__origin__.__args__)  # type: ignore[attr-defined]
)


def decode_event(payload: dict[str, Any]) -> AnyEvent:
    """Validate an envelope (already upcast) into its event model."""
    return _ADAPTER.validate_python(upcast(payload))


def event_kind(event: AnyEvent) -> str:
    """The aggregate kind an event belongs to: the part of ``type`` before the dot."""
    return event.type.partition(".")[0]


def event_name(event: AnyEvent) -> str:
    """The aggregate name an event belongs to."""
    return event.data.name


def event_time(event: AnyEvent) -> datetime:
    return event.at
