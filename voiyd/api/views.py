"""CORE: what queries answer: tasks and nodes with their status, and events as listed.

Views are read models built by the projection; they are what ``voiydctl get -o json`` prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from voiyd.api.specs import Frozen, Meta, SetConfig, SetMeta, TaskConfig, VolumeConfig

TaskPhase = Literal[
    "pending",
    "scheduled",
    "pulling",
    "starting",
    "running",
    "stopping",
    "stopped",
    "exited",
    "failed",
    "unschedulable",
]
NodePhase = Literal["ready", "not-ready", "lost", "draining"]


class Condition(Frozen):
    type: str
    status: bool
    reason: str = ""
    message: str = ""
    at: datetime


class TaskStatus(Frozen):
    phase: TaskPhase = "pending"
    desired: Literal["running", "stopped"] = "running"
    node: str | None = None
    epoch: int = 0
    container_id: str | None = None
    ip: str | None = None
    pid: int | None = None
    exit_code: int | None = None
    restarts: int = 0
    healthy: bool | None = None
    reason: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    logs_dropped: int = 0
    """Log lines of the current placement its agent dropped (buffer full while NATS was away)."""


class TaskView(Frozen):
    version: Literal["task/v1"] = "task/v1"
    meta: Meta
    config: TaskConfig
    status: TaskStatus
    revision: int
    generation: int
    created_at: datetime
    updated_at: datetime


class NodeCapacity(Frozen):
    cpus: float = 0.0
    memory: int = 0


class NodeView(Frozen):
    version: Literal["node/v1"] = "node/v1"
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    phase: NodePhase = "ready"
    schedulable: bool = True
    runtimes: list[str] = Field(default_factory=list)
    capacity: NodeCapacity = Field(default_factory=NodeCapacity)
    allocated: NodeCapacity = Field(default_factory=NodeCapacity)
    agent_version: str = ""
    draining: bool = False
    """A drain was asked and not ended by ``uncordon`` (kept while the node is not ready)."""
    drain_deadline: datetime | None = None
    """While draining: when every task left on the node is moved regardless of Set budgets."""
    tasks: int = 0
    revision: int
    created_at: datetime
    updated_at: datetime


RolloutState = Literal["progressing", "complete", "failed"]


class RolloutStatus(Frozen):
    state: RolloutState = "progressing"
    revision: int = 1
    """The template revision this rollout moves the Set's tasks to."""
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SetRevision(Frozen):
    """One template revision of a Set, as the event log recorded it."""

    revision: int
    template: TaskConfig
    cause: str = ""
    """Why it was made: created, updated, restart, rollback to revision N, automatic rollback."""
    at: datetime
    seq: int
    """The stream sequence of the event that made it."""


class SetStatus(Frozen):
    template_revision: int = 1
    restart_revision: int = 0
    """The template revision made by the latest ``rollout restart`` (0: never restarted)."""
    rollout: RolloutStatus = Field(default_factory=RolloutStatus)
    tasks: int = 0
    """Member tasks that exist (counted when read)."""
    updated: int = 0
    """Members at ``template_revision`` (counted when read)."""
    available: int = 0
    """Members running and healthy (counted when read)."""


class SetView(Frozen):
    version: Literal["set/v1"] = "set/v1"
    meta: SetMeta
    config: SetConfig
    status: SetStatus = Field(default_factory=SetStatus)
    history: list[SetRevision] = Field(default_factory=list)
    """The latest template revisions, oldest first (at most ``HISTORY_MAX``)."""
    revision: int
    created_at: datetime
    updated_at: datetime


class VolumeStatus(Frozen):
    used_by: list[str] = Field(default_factory=list)
    """Tasks and Sets that mount this volume (found when read)."""


class VolumeView(Frozen):
    version: Literal["volume/v1"] = "volume/v1"
    meta: Meta
    config: VolumeConfig
    status: VolumeStatus = Field(default_factory=VolumeStatus)
    revision: int
    created_at: datetime
    updated_at: datetime


HISTORY_MAX = 10
"""Template revisions a Set remembers for ``rollout history`` and ``rollout undo``."""


class EventView(Frozen):
    seq: int
    subject: str
    event: dict[str, Any]
    """The event envelope as stored: ``{id, type, v, at, actor, data}``."""
