"""CORE: what agents and the control plane say to each other on ``voiyd.agent.<node>.*``.

- ``Heartbeat`` (core NATS, every ~2 s): liveness, capacity, usage, runtimes, version.
- ``NodeJoin`` and ``TaskReport`` (request/reply on ``voiyd.agent.<node>.report``): facts the
  agent observed; the server appends them as events and acknowledges only after the append.
  Every task report carries the placement ``epoch`` it is about (fencing).
- ``Assignment`` (the value of ``$KV.voiyd-assignments.<node>.<task>``): what a node should run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from voiyd.api.specs import Frozen, Labels, Name, TaskConfig, VolumeConfig
from voiyd.api.views import NodeCapacity


class Heartbeat(Frozen):
    node: Name
    at: AwareDatetime
    agent_version: str = ""
    runtimes: list[str] = Field(default_factory=list)
    capacity: NodeCapacity = Field(default_factory=NodeCapacity)
    allocated: NodeCapacity = Field(default_factory=NodeCapacity)
    """What the node's assigned tasks requested."""
    used: NodeCapacity = Field(default_factory=NodeCapacity)
    """What the node's tasks actually use (runtime stats, sampled), not what they requested."""
    running: list[Name] = Field(default_factory=list)
    interval_s: float = Field(default=2.0, gt=0)


class NodeJoin(Frozen):
    kind: Literal["join"] = "join"
    node: Name
    labels: Labels = Field(default_factory=dict)
    runtimes: list[str] = Field(default_factory=list)
    capacity: NodeCapacity = Field(default_factory=NodeCapacity)
    agent_version: str = ""


TaskReportKind = Literal[
    "pulling", "starting", "started", "health", "exited", "restarted", "stopped", "failed", "logs"
]


class TaskReport(Frozen):
    kind: Literal["task"] = "task"
    report_id: str = Field(min_length=8, max_length=64)
    """Unique per observation; becomes the event id, so a re-sent report appends once."""
    node: Name
    task: Name
    epoch: int = Field(ge=1)
    state: TaskReportKind
    at: AwareDatetime
    image: str | None = None
    container_id: str | None = None
    ip: str | None = None
    pid: int | None = None
    exit_code: int | None = None
    restarts: int | None = Field(default=None, ge=1)
    delay_s: float | None = Field(default=None, ge=0)
    healthy: bool | None = None
    reason: str = Field(default="", max_length=4096)
    dropped: int | None = Field(default=None, ge=0)
    """For ``logs``: log lines of this placement the agent had to drop so far (never decreases)."""


AgentReport = Annotated[NodeJoin | TaskReport, Field(discriminator="kind")]


class ReportReply(Frozen):
    accepted: bool
    revision: int
    reason: str = ""
    """Why a report was refused: e.g. the placement moved (the agent must stop that copy)."""


class Assignment(Frozen):
    task: Name
    node: Name
    epoch: int = Field(ge=1)
    desired: Literal["running", "stopped"]
    labels: Labels = Field(default_factory=dict)
    config: TaskConfig
    restarts: int = 0
    """Restarts so far in this placement, so a restarted agent keeps counting."""
    revision: int
    """The task's revision when this assignment was written (newer wins)."""
    updated_at: datetime
    volumes: dict[Name, VolumeConfig] = Field(default_factory=dict)
    """The template volumes the task mounts, with their files (host-local ones need no more
    than their name: their data is ``<data dir>/volumes/<name>`` on this node)."""


class UpgradeRequest(Frozen):
    """``voiyd.agent.<node>.control.upgrade``: install a wheel from the object store."""

    bucket: str = Field(min_length=1, max_length=64)
    object: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    version: str = Field(min_length=1, max_length=64)
    """The version the wheel carries; the agent reports it after restarting."""


class UpgradeReply(Frozen):
    accepted: bool
    from_version: str
    to_version: str = ""
    reason: str = ""
    """Why the upgrade did not happen (checksum mismatch, install failed: pip's last lines)."""
