"""CORE: the request and reply bodies of ``voiyd.api.v1.<kind>.<verb>``.

Each endpoint takes one request model (unknown fields rejected) and answers one reply model.
Writes answer the ``revision`` they produced so that a caller can read its own write by passing
it as ``min_revision`` to a query.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from voiyd.api.selectors import SelectorError, parse_selector
from voiyd.api.specs import MAX_REPLICAS, Frozen, Name, SetDoc, TaskDoc, VolumeDoc
from voiyd.api.views import EventView, NodeView, SetView, TaskView, VolumeView

MAX_LIST = 10_000


class WriteOptions(Frozen):
    expected_revision: int | None = Field(default=None, ge=0)
    dry_run: bool = False
    actor: str = Field(default="api", max_length=128)


class CreateTask(WriteOptions):
    task: TaskDoc


class ApplyTask(WriteOptions):
    task: TaskDoc


class UpdateTask(WriteOptions):
    task: TaskDoc


class PatchTask(WriteOptions):
    name: Name
    labels: dict[str, str | None] = Field(default_factory=dict)
    """Label changes: a value sets the label, ``None`` removes it."""
    config: dict[str, Any] = Field(default_factory=dict)
    """A JSON merge patch (RFC 7386) applied to the task's config."""


class NamedTask(WriteOptions):
    name: Name


class DeleteTask(NamedTask):
    pass


class StartTask(NamedTask):
    pass


class StopTask(NamedTask):
    pass


# ---- sets ---------------------------------------------------------------------------------------


class CreateSet(WriteOptions):
    set: SetDoc


class ApplySet(WriteOptions):
    set: SetDoc


class UpdateSet(WriteOptions):
    set: SetDoc


class NamedSet(WriteOptions):
    name: Name


class DeleteSet(NamedSet):
    pass


class ScaleSet(NamedSet):
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


class UndoSet(NamedSet):
    to_revision: int | None = Field(default=None, ge=1)
    """The template revision to go back to; None: the one before the current."""


class RestartSet(NamedSet):
    pass


# ---- volumes ------------------------------------------------------------------------------------


class CreateVolume(WriteOptions):
    volume: VolumeDoc


class ApplyVolume(WriteOptions):
    volume: VolumeDoc


class DeleteVolume(WriteOptions):
    name: Name


# ---- nodes --------------------------------------------------------------------------------------


class NamedNode(WriteOptions):
    name: Name


class CordonNode(NamedNode):
    pass


class UncordonNode(NamedNode):
    pass


class DrainNode(NamedNode):
    deadline_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    """After this long, tasks still on the node move regardless of their Set's max_parallel."""


class LabelNode(NamedNode):
    labels: dict[str, str | None]
    """Label changes: a value sets the label, ``None`` removes it."""


class DeleteNode(NamedNode):
    force: bool = False
    """Delete a node that is still ready and running tasks (they are moved elsewhere)."""


class Query(Frozen):
    min_revision: int = Field(default=0, ge=0)
    """Wait (bounded) until the projection has applied this stream sequence before answering."""


class GetByName(Query):
    name: Name


class ListQuery(Query):
    selector: str = ""
    limit: int = Field(default=MAX_LIST, ge=1, le=MAX_LIST)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        try:
            return str(parse_selector(value))
        except SelectorError as exc:
            raise ValueError(str(exc)) from None


class ListEvents(Frozen):
    since_seq: int = Field(default=0, ge=0)
    """Return events with a stream sequence greater than this."""
    kind: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]*$", max_length=32)
    name: Name | None = None
    limit: int = Field(default=1000, ge=1, le=MAX_LIST)


class WriteReply(Frozen):
    revision: int
    """The stream sequence of the last event appended, or the current revision if none was."""
    changed: bool
    task: TaskView | None = None
    set: SetView | None = None
    volume: VolumeView | None = None
    node: NodeView | None = None


class TaskReply(Frozen):
    task: TaskView


class TaskListReply(Frozen):
    tasks: list[TaskView]
    revision: int


class NodeReply(Frozen):
    node: NodeView


class NodeListReply(Frozen):
    nodes: list[NodeView]
    revision: int


class SetReply(Frozen):
    set: SetView


class SetListReply(Frozen):
    sets: list[SetView]
    revision: int


class VolumeReply(Frozen):
    volume: VolumeView


class VolumeListReply(Frozen):
    volumes: list[VolumeView]
    revision: int


class EventListReply(Frozen):
    events: list[EventView]
    last_seq: int
    """The stream's last sequence when the list was read (0 for an empty stream)."""


class InfoReply(Frozen):
    version: str
    server_id: str
    projection_seq: int
    stream_last_seq: int
