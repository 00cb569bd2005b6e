"""The scheduler's in-memory view of the cluster: every task and node, folded from the log.

Events are folded with ``voiyd.events.fold`` (the one definition of what an event means), so
this view agrees with the server's projection. ``seq`` is the last stream sequence applied;
re-applying an older one is a no-op. An event that does not decode is skipped and reported to
the caller (its sequence still counts), never a crash loop. No I/O here: the runner feeds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from voiyd.api.views import NodeView, TaskView
from voiyd.bus import codec
from voiyd.bus.subjects import parse_event_subject
from voiyd.errors import InvalidRequestError
from voiyd.events import models as ev
from voiyd.events.fold import NodeEvent, TaskEvent, evolve_node, evolve_task


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
    """Tasks and nodes by name, as of stream sequence ``seq``."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskView] = {}
        self.nodes: dict[str, NodeView] = {}
        self.seq = 0

    def apply(self, msgs: Iterable[Message]) -> Applied:
        """Fold ``msgs`` (in stream order) into the view."""
        result = Applied()
        for msg in msgs:
            if msg.seq <= self.seq:
                continue
            self.seq = msg.seq
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
            task = evolve_task(self.tasks.get(name), event, seq)
            if task is None:
                self.tasks.pop(name, None)
            else:
                self.tasks[name] = task
        elif isinstance(event, NodeEvent):
            node = evolve_node(self.nodes.get(name), event, seq)
            if node is None:
                self.nodes.pop(name, None)
            else:
                self.nodes[name] = node
        # volume and set events do not change placement (yet).
