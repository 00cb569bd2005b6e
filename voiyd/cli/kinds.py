"""The kinds ``get`` and ``describe`` know (tasks, Sets, volumes, nodes), and how to fetch them.

A ``Kind`` bundles what differs between kinds (its reply keys, table columns, how to read a
name and labels off a view, its ``describe`` text and the tasks that text shows: a Set's
members); the fetch functions are the same for all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voiyd.api.requests import EventListReply
from voiyd.api.specs import SET_LABEL
from voiyd.api.views import EventView, NodeView, SetView, TaskView, VolumeView
from voiyd.cli import describe, render
from voiyd.cli.client import Session, parse_reply

View = dict[str, Any]
"""A view as the server sent it: what ``-o json`` prints unchanged."""
EVENT_PAGE = 1000
RECENT_EVENTS = 20


@dataclass(frozen=True)
class Kind:
    name: str
    plural: str
    headers: Sequence[str]
    wide_headers: Sequence[str]
    row: Callable[[View, datetime, bool], list[str]]
    name_of: Callable[[View], str]
    labels_of: Callable[[View], dict[str, str]]
    describe: Callable[[View, Sequence[EventView], Sequence[View], datetime], str]
    """The ``describe`` text from the view, its recent events and its ``related`` tasks."""
    related: Callable[[str], str] | None = None
    """The label selector of the tasks ``describe`` shows for the object NAME (None: none)."""

    def ref(self, name: str) -> str:
        return f"{self.name}/{name}"


def _task(view: View) -> TaskView:
    return parse_reply(TaskView, view)


def _node(view: View) -> NodeView:
    return parse_reply(NodeView, view)


def _set(view: View) -> SetView:
    return parse_reply(SetView, view)


def _volume(view: View) -> VolumeView:
    return parse_reply(VolumeView, view)


def _meta_name(view: View) -> str:
    return str(view["meta"]["name"])


def _meta_labels(view: View) -> dict[str, str]:
    return dict(view["meta"].get("labels") or {})


TASK = Kind(
    name="task",
    plural="tasks",
    headers=render.TASK_HEADERS,
    wide_headers=render.TASK_WIDE_HEADERS,
    row=lambda v, now, wide: render.task_row(_task(v), now, wide=wide),
    name_of=_meta_name,
    labels_of=_meta_labels,
    describe=lambda v, events, _, now: describe.describe_task(_task(v), events, now),
)
SET = Kind(
    name="set",
    plural="sets",
    headers=render.SET_HEADERS,
    wide_headers=render.SET_WIDE_HEADERS,
    row=lambda v, now, wide: render.set_row(_set(v), now, wide=wide),
    name_of=_meta_name,
    labels_of=_meta_labels,
    describe=lambda v, events, tasks, now: describe.describe_set(
        _set(v), [_task(t) for t in tasks], events, now
    ),
    related=lambda name: f"{SET_LABEL}={name}",
)
VOLUME = Kind(
    name="volume",
    plural="volumes",
    headers=render.VOLUME_HEADERS,
    wide_headers=render.VOLUME_WIDE_HEADERS,
    row=lambda v, now, wide: render.volume_row(_volume(v), now, wide=wide),
    name_of=_meta_name,
    labels_of=_meta_labels,
    describe=lambda v, events, _, now: describe.describe_volume(_volume(v), events, now),
)
NODE = Kind(
    name="node",
    plural="nodes",
    headers=render.NODE_HEADERS,
    wide_headers=render.NODE_HEADERS,
    row=lambda v, now, wide: render.node_row(_node(v), now),
    name_of=lambda v: str(v["name"]),
    labels_of=lambda v: dict(v.get("labels") or {}),
    describe=lambda v, events, _, now: describe.describe_node(_node(v), events, now),
)
KINDS = {k.name: k for k in (TASK, SET, VOLUME, NODE)}


async def list_views(session: Session, kind: Kind, selector: str = "") -> tuple[list[View], int]:
    """Every view of ``kind`` matching ``selector``, and the revision the list was read at."""
    reply = await session.query(kind.name, "list", {"selector": selector})
    return list(reply[kind.plural]), int(reply["revision"])


async def get_view(session: Session, kind: Kind, name: str, *, min_revision: int = 0) -> View:
    reply = await session.query(kind.name, "get", {"name": name}, min_revision=min_revision)
    return dict(reply[kind.name])


async def recent_events(
    session: Session, kind: Kind, name: str, count: int = RECENT_EVENTS
) -> list[EventView]:
    """The last ``count`` events of one object (``event.list``, page by page)."""
    recent: deque[EventView] = deque(maxlen=count)
    since = 0
    while True:
        body = {"kind": kind.name, "name": name, "since_seq": since, "limit": EVENT_PAGE}
        reply = parse_reply(EventListReply, await session.call("event", "list", body))
        recent.extend(reply.events)
        if len(reply.events) < EVENT_PAGE:
            return list(recent)
        since = reply.events[-1].seq
