"""The relay's reads: task logs from ``VOIYD_LOGS`` and task states from the event log.

Everything is read with direct gets (``voiyd.bus.direct``): no consumers, no server-side state,
answered by any replica of the stream. ``LogStore`` reads a task's batches after a position,
finds where a tail or a ``since`` begins (walking back from the subject's last message in
growing windows, never reading a whole long history for a short tail), and lists the tasks of
a set. ``Tracker`` folds a task's (or a node's) events into its view (``voiyd.events.fold``),
keeping the result per name so that a follow's next round reads only the events since.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Generic, TypeVar

from nats.aio.client import Client
from nats.js.errors import NotFoundError as JsNotFoundError
from pydantic import ValidationError

from voiyd.api.logread import Position
from voiyd.api.views import NodeView, TaskView
from voiyd.bus import codec, direct, subjects
from voiyd.errors import InvalidRequestError, UnavailableError
from voiyd.events.fold import fold_node, fold_task
from voiyd.events.models import AnyEvent, decode_event
from voiyd.logrelay import framing, metrics
from voiyd.logrelay.framing import Filter, LastLog, Message

log = logging.getLogger(__name__)
V = TypeVar("V", TaskView, NodeView)

READ_BATCH = 256
"""Messages one direct get asks for."""
TAIL_FIRST_SPAN = 64
TAIL_GROWTH = 4
"""A tail walks back over windows of stream sequences, each this many times the last."""
TRACKED = 4096
"""States kept between requests per tracker (least recently used go first)."""


def _empty(seq: int, stored: datetime, size: int) -> Message:
    """A stand-in for a message that is not a log batch: it holds no line, but is passed."""
    return Message(seq, stored, size, {"task": "", "node": "", "epoch": 0, "lines": []})


def as_message(stored: direct.Stored) -> Message:
    msg = framing.decode(stored.seq, stored.time, stored.data)
    if msg is None:
        metrics.BAD_MESSAGES.inc()
        log.warning("skipping %s seq %d: not a log batch", stored.subject, stored.seq)
        return _empty(stored.seq, stored.time, len(stored.data))
    return msg


@dataclass(frozen=True)
class Read:
    messages: list[Message]
    caught_up: bool


class LogStore:
    def __init__(self, nc: Client, timeout: float = direct.DEFAULT_TIMEOUT_S) -> None:
        self._nc = nc
        self._timeout = timeout

    async def read(self, task: str, after: int, max_bytes: int) -> Read:
        """The batches after sequence ``after``, up to about ``max_bytes``."""
        got = await direct.get_batch(
            self._nc,
            subjects.LOGS_STREAM,
            subjects.logs_filter(task),
            after_seq=after,
            batch=READ_BATCH,
            max_bytes=max(1, max_bytes),
            timeout=self._timeout,
        )
        return Read([as_message(m) for m in got.messages], caught_up=got.pending == 0)

    async def last(self, task: str) -> tuple[LastLog, Message] | None:
        got = await direct.get_last(
            self._nc, subjects.LOGS_STREAM, subjects.logs_filter(task), timeout=self._timeout
        )
        if got is None:
            return None
        msg = as_message(got)
        eof = bool(msg.batch.get("eof", False))
        return LastLog(seq=got.seq, eof=eof, epoch=msg.batch["epoch"], stored=got.time), msg

    async def has_logs(self, task: str) -> bool:
        return await self.last(task) is not None

    async def since(self, task: str, since: datetime) -> Position:
        """Just before the first batch stored at ``since`` (less a margin), or after the last."""
        got = await direct.get_batch(
            self._nc,
            subjects.LOGS_STREAM,
            subjects.logs_filter(task),
            start_time=since - framing.SINCE_MARGIN,
            batch=1,
            timeout=self._timeout,
        )
        if got.messages:
            return Position(seq=got.messages[0].seq - 1)
        last = await self.last(task)
        return Position(seq=last[0].seq if last else 0)

    async def tail(self, task: str, count: int, flt: Filter) -> Position:
        """Where the last ``count`` lines passing ``flt`` begin."""
        last = await self.last(task)
        if last is None:
            return Position(seq=0)
        if count == 0:
            return Position(seq=last[0].seq)
        found = framing.locate_tail([last[1]], count, flt)
        hi, span, first = last[0].seq - 1, TAIL_FIRST_SPAN, await self._first_seq()
        while isinstance(found, int) and hi >= first:
            lo = max(first, hi - span + 1)
            window = await self._window(task, lo, hi)
            found = framing.locate_tail(reversed(window), found, flt)
            if isinstance(found, int) and _before_since(window, flt):
                return Position(seq=lo - 1)
            hi, span = lo - 1, span * TAIL_GROWTH
        return found if isinstance(found, Position) else Position(seq=0)

    async def _first_seq(self) -> int:
        js = self._nc.jetstream(timeout=self._timeout)
        try:
            info = await js.stream_info(subjects.LOGS_STREAM)
        except JsNotFoundError:
            raise UnavailableError(f"stream {subjects.LOGS_STREAM} does not exist") from None
        return max(1, info.state.first_seq or 1)

    async def _window(self, task: str, lo: int, hi: int) -> list[Message]:
        """The task's batches with sequences from ``lo`` to ``hi``, oldest first."""
        out: list[Message] = []
        after = lo - 1
        while after < hi:
            got = await direct.get_batch(
                self._nc,
                subjects.LOGS_STREAM,
                subjects.logs_filter(task),
                after_seq=after,
                batch=min(READ_BATCH, hi - after),
                timeout=self._timeout,
            )
            out += [as_message(m) for m in got.messages if m.seq <= hi]
            if not got.messages or got.messages[-1].seq >= hi or got.pending == 0:
                return out
            after = got.messages[-1].seq
        return out

    async def task_names(self) -> set[str]:
        """Every task with logs in the stream or events in the log."""
        js = self._nc.jetstream(timeout=self._timeout)
        names: set[str] = set()
        for stream, pattern in (
            (subjects.LOGS_STREAM, f"{subjects.LOGS_PREFIX}.*.*"),
            (subjects.EVENTS_STREAM, subjects.events_filter("task")),
        ):
            try:
                info = await js.stream_info(stream, subjects_filter=pattern)
            except JsNotFoundError:
                continue
            names |= {s.rsplit(".", 1)[-1] for s in (info.state.subjects or {})}
        return names


def _before_since(window: list[Message], flt: Filter) -> bool:
    """The window reaches back past ``since``: nothing older can hold a line after it."""
    return bool(
        flt.since is not None and window and window[0].stored < flt.since - framing.SINCE_MARGIN
    )


@dataclass(frozen=True)
class Folded(Generic[V]):
    """An aggregate as its events say: the view (None once deleted), and its last one."""

    seq: int
    view: V | None
    last: V | None
    deleted: bool
    changed: datetime
    """When the stream stored its last event."""


class Tracker(Generic[V]):
    """Tasks' (or nodes') states, folded from their events and brought up to date on ``get``.

    A state is kept per name between requests (least recently used go first), so a follow's
    next round reads only the events since the last one: one direct get when nothing changed.
    """

    def __init__(
        self,
        nc: Client,
        kind: str,
        fold: Callable[[V | None, AnyEvent, int], V | None],
        timeout: float = direct.DEFAULT_TIMEOUT_S,
    ) -> None:
        self._nc = nc
        self._kind = kind
        self._fold: Callable[[V | None, AnyEvent, int], V | None] = fold
        self._timeout = timeout
        self._states: OrderedDict[str, Folded[V]] = OrderedDict()

    async def get(self, name: str) -> Folded[V] | None:
        """The aggregate as its events say, or None when it has none."""
        subject = subjects.event(self._kind, name)
        last = await direct.get_last(
            self._nc, subjects.EVENTS_STREAM, subject, timeout=self._timeout
        )
        if last is None:
            return None
        state = self._states.get(name)
        if state is None or state.seq > last.seq:
            state = Folded(0, None, None, False, last.time)
        if state.seq < last.seq:
            state = await self._catch_up(subject, state)
        self._states[name] = state
        self._states.move_to_end(name)
        while len(self._states) > TRACKED:
            self._states.popitem(last=False)
        return state

    async def _catch_up(self, subject: str, state: Folded[V]) -> Folded[V]:
        while True:
            got = await direct.get_batch(
                self._nc,
                subjects.EVENTS_STREAM,
                subject,
                after_seq=state.seq,
                batch=READ_BATCH,
                timeout=self._timeout,
            )
            for stored in got.messages:
                state = self._step(state, stored)
            if got.pending == 0 or not got.messages:
                return state

    def _step(self, state: Folded[V], stored: direct.Stored) -> Folded[V]:
        try:
            event = decode_event(codec.decode_map(stored.data, trusted=True))
        except (InvalidRequestError, ValidationError) as exc:
            log.warning("skipping event %s seq %d: %s", stored.subject, stored.seq, exc)
            return replace(state, seq=stored.seq, changed=stored.time)
        view = self._fold(state.view, event, stored.seq)
        return Folded(
            seq=stored.seq,
            view=view,
            last=view if view is not None else (state.view or state.last),
            deleted=event.type.endswith(".deleted") or (state.deleted and view is None),
            changed=stored.time,
        )


def task_tracker(nc: Client) -> Tracker[TaskView]:
    return Tracker(nc, "task", fold_task)


def node_tracker(nc: Client) -> Tracker[NodeView]:
    return Tracker(nc, "node", fold_node)
