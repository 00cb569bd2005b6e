"""The scheduler's in-memory view of the cluster: tasks, nodes, Sets and volumes, from the log.

Events are folded with ``voiyd.events.fold`` (the one definition of what an event means), so
this view agrees with the server's projection. ``seq`` is the last stream sequence applied;
re-applying an older one is a no-op. ``revisions`` holds every subject's last sequence, deleted
aggregates included: re-creating a deleted Set member must expect the deleted task's last event
(0 only for a name never used). An event that does not decode is skipped and reported to the
caller (its sequence still counts), never a crash loop. No I/O here: the runner feeds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydantic import ValidationError

from voiyd.api.views import NodeView, SetView, TaskView, VolumeView
from voiyd.bus import codec, subjects
from voiyd.bus.subjects import parse_event_subject
from voiyd.errors import InvalidRequestError
from voiyd.events import models as ev
from voiyd.events.fold import (
    NodeEvent,
    SetEvent,
    TaskEvent,
    VolumeEvent,
    evolve_node,
    evolve_set,
    evolve_task,
    evolve_volume,
)

_T = TypeVar("_T")


class Message(Protocol):
    """One message of the event log (``voiyd.bus.reader.RawEvent`` is one)."""

    @property
    def seq(self) -> int: ...

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True)
class Skipped:
    seq: int
    subject: str
    problem: str


@dataclass
class Applied:
    """What one batch did to the view."""

    applied: int = 0
    skipped: list[Skipped] = field(default_factory=list)


def decode(msg: Message) -> ev.AnyEvent:
    """The event in ``msg``; ``ValueError`` when it does not decode or is on the wrong subject."""
    try:
        event = ev.decode_event(codec.decode_map(msg.data, trusted=True))
    except (InvalidRequestError, ValidationError) as exc:
        raise ValueError(f"undecodable: {exc}") from exc
    kind, name = parse_event_subject(msg.subject)
    if (kind, name) != (ev.event_kind(event), ev.event_name(event)):
        raise ValueError(f"subject does not match {ev.event_kind(event)}/{ev.event_name(event)}")
    return event


class View:
    """Tasks, nodes, Sets and volumes by name, as of stream sequence ``seq``."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskView] = {}
        self.nodes: dict[str, NodeView] = {}
        self.sets: dict[str, SetView] = {}
        self.volumes: dict[str, VolumeView] = {}
        self.revisions: dict[str, int] = {}
        """Subject -> the stream sequence of its last event (what an append expects)."""
        self.seq = 0

    def revision(self, kind: str, name: str) -> int:
        """The last sequence of ``<kind>/<name>``'s subject; 0 when it never had an event."""
        return self.revisions.get(subjects.event(kind, name), 0)

    def apply(self, msgs: Iterable[Message]) -> Applied:
        """Fold ``msgs`` (in stream order) into the view."""
        result = Applied()
        for msg in msgs:
            if msg.seq <= self.seq:
                continue
            self.seq = msg.seq
            self.revisions[msg.subject] = msg.seq
            try:
                event = decode(msg)
            except ValueError as exc:
                result.skipped.append(Skipped(msg.seq, msg.subject, str(exc)))
                continue
            self._fold(event, msg.seq)
            result.applied += 1
        return result

    def _fold(self, event: ev.AnyEvent, seq: int) -> None:
        name = ev.event_name(event)
        if isinstance(event, TaskEvent):
            _put(self.tasks, name, evolve_task(self.tasks.get(name), event, seq))
        elif isinstance(event, NodeEvent):
            _put(self.nodes, name, evolve_node(self.nodes.get(name), event, seq))
        elif isinstance(event, SetEvent):
            _put(self.sets, name, evolve_set(self.sets.get(name), event, seq))
        elif isinstance(event, VolumeEvent):
            _put(self.volumes, name, evolve_volume(self.volumes.get(name), event, seq))


def _put(table: dict[str, _T], name: str, value: _T | None) -> None:
    if value is None:
        table.pop(name, None)
    else:
        table[name] = value
