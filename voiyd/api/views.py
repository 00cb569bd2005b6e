"""CORE: what queries answer: tasks and nodes with their status, and events as listed.

Views are read models built by the projection; they are what ``voiydctl get -o json`` prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from voiyd.api.specs import Frozen, Meta, TaskConfig

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
    tasks: int = 0
    revision: int
    created_at: datetime
    updated_at: datetime


class EventView(Frozen):
    seq: int
    subject: str
    event: dict[str, Any]
    """The event envelope as stored: ``{id, type, v, at, actor, data}``."""
