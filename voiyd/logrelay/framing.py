"""CORE: what the log relay decides, with no I/O: stored log batches in, reply chunks out.

- ``decode``: a stored ``voiyd.logs.<node>.<task>`` message as a checked plain map (or None);
- ``take``: the lines after a position that fit a reply's line and byte budget, and the new
  position (a message too large for one reply is split: ``Position.skip``);
- ``locate_tail``: where the last N lines (that pass the filters) begin;
- ``merge``: a set's chunks from several tasks, in time order, each task's order kept;
- ``task_end`` and ``stream_end``: whether a follow is over (the task ended and the output of
  its last container was delivered up to the agent's end-of-output mark, or no mark can come).

Lines travel as the agent wrote them (checked, never rebuilt), so that a relay adds little per
line. Nothing here reads a clock: ``now`` is always a parameter.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NotRequired

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from voiyd.api.logread import Position, ReadLogs, parse_when
from voiyd.api.views import TaskView
from voiyd.bus import codec
from voiyd.errors import FieldError, InvalidRequestError

LINE_OVERHEAD = 64
"""Bytes a line adds to a reply besides its text (its map keys, number, time and stream)."""
CHUNK_OVERHEAD = 128
SINCE_MARGIN = timedelta(seconds=10)
"""Lines are stored a little after they are written (batching, clock skew): a search by the
stream's storage time starts this much before ``since``, and the lines' own times decide."""

Chunk = dict[str, Any]
"""``{task, seq, node, epoch, lines, dropped, eof}``: the wire shape ``LogChunk`` documents."""


class LineShape(TypedDict):
    n: int
    t: str
    s: Literal["stdout", "stderr"]
    line: str | bytes
    partial: NotRequired[bool]


class BatchShape(TypedDict):
    task: str
    node: str
    epoch: int
    container_id: NotRequired[str]
    lines: list[LineShape]
    dropped: NotRequired[int]
    eof: NotRequired[bool]


_BATCH = TypeAdapter(BatchShape)


@dataclass(frozen=True)
class Message:
    """One stored log batch: stream sequence, when the stream stored it, size, contents."""

    seq: int
    stored: datetime
    size: int
    batch: BatchShape


def decode(seq: int, stored: datetime, data: bytes) -> Message | None:
    """The message as a checked batch, or None when it is not one (never raises)."""
    try:
        batch = _BATCH.validate_python(codec.decode_map(data, trusted=True))
    except (InvalidRequestError, ValidationError):
        return None
    return Message(seq=seq, stored=stored, size=len(data), batch=batch)


# ---- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    since: datetime | None = None
    until: datetime | None = None
    stream: str | None = None

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None

    @property
    def none(self) -> bool:
        return not self.timed and self.stream is None

    def keeps(self, line: LineShape) -> bool:
        if self.stream is not None and line["s"] != self.stream:
            return False
        if not self.timed:
            return True
        t = line_time(line)
        if t is None:
            return False
        return (self.since is None or t >= self.since) and (self.until is None or t <= self.until)


def line_time(line: LineShape) -> datetime | None:
    try:
        t = datetime.fromisoformat(line["t"])
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def filter_of(req: ReadLogs, now: datetime) -> Filter:
    """The request's filters, with ``since``/``until`` resolved against ``now``."""
    return Filter(
        since=_when(req.since, now, "since"),
        until=_when(req.until, now, "until"),
        stream=req.stream,
    )


def _when(text: str | None, now: datetime, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_when(text, now)
    except ValueError as exc:
        raise InvalidRequestError(f"{field}: {exc}", [FieldError(field, str(exc))]) from None


# ---- taking lines within a budget ---------------------------------------------------------------


@dataclass
class Budget:
    lines: int
    bytes: int
    spent: bool = False
    """Something was taken already (a reply always takes at least one line, to progress)."""

    def fits(self, cost: int) -> bool:
        return self.lines > 0 and (cost <= self.bytes or not self.spent)

    def take(self, lines: int, cost: int) -> None:
        self.lines -= lines
        self.bytes -= cost
        self.spent = True

    def share(self, among: int) -> Budget:
        """An equal part for one of ``among`` tasks (so one busy task cannot starve a set's
        others); give it back with ``absorb``."""
        parts = max(1, among)
        lines = max(min(self.lines, 1), self.lines // parts)
        return Budget(lines, self.bytes // parts, self.spent)

    def absorb(self, part: Budget, given: Budget) -> None:
        """Charge what ``part`` (made as ``given``) used."""
        self.take(given.lines - part.lines, given.bytes - part.bytes)
        self.spent = self.spent or part.spent


@dataclass(frozen=True)
class Taken:
    chunks: list[Chunk]
    position: Position
    cut: bool
    """The budget ran out before these messages did."""


def chunk(task: str, msg: Message, lines: list[LineShape]) -> Chunk:
    b = msg.batch
    return {
        "task": task,
        "seq": msg.seq,
        "node": b["node"],
        "epoch": b["epoch"],
        "lines": lines,
        "dropped": b.get("dropped", 0),
        "eof": b.get("eof", False),
    }


def _whole(msg: Message, skip: int, flt: Filter, budget: Budget) -> list[LineShape] | None:
    """The message's lines from ``skip`` if they all fit at once, else None (go line by line)."""
    lines = msg.batch["lines"][skip:] if skip else msg.batch["lines"]
    cost = msg.size + CHUNK_OVERHEAD
    if not flt.none or len(lines) > budget.lines or cost > budget.bytes:
        return None
    budget.take(len(lines), cost)
    return lines


def _partly(
    msg: Message, skip: int, flt: Filter, budget: Budget
) -> tuple[list[LineShape], int | None]:
    """The lines from ``skip`` that pass and fit, and where the budget ran out (None: never)."""
    kept: list[LineShape] = []
    lines = msg.batch["lines"]
    for i in range(skip, len(lines)):
        line = lines[i]
        if not flt.keeps(line):
            continue
        cost = len(line["line"]) + LINE_OVERHEAD
        if not budget.fits(cost):
            return kept, i
        budget.take(1, cost)
        kept.append(line)
    return kept, None


def take(
    task: str, messages: Iterable[Message], after: Position, flt: Filter, budget: Budget
) -> Taken:
    """The chunks of ``messages`` (those after ``after``, in order) that fit ``budget``."""
    out: list[Chunk] = []
    position = after
    for msg in messages:
        if msg.seq <= position.seq:
            continue
        skip = position.skip
        lines = _whole(msg, skip, flt, budget)
        cut_at = None
        if lines is None:
            lines, cut_at = _partly(msg, skip, flt, budget)
        if lines or (msg.batch.get("eof", False) and cut_at is None):
            out.append(chunk(task, msg, lines))
        if cut_at is not None:
            return Taken(out, Position(seq=msg.seq - 1, skip=cut_at), cut=True)
        position = Position(seq=msg.seq)
    return Taken(out, position, cut=False)


def locate_tail(newest_first: Iterable[Message], need: int, flt: Filter) -> Position | int:
    """Where the last ``need`` passing lines begin, or how many more lines older messages must
    hold (when these do not hold enough)."""
    if need <= 0:
        raise ValueError("locate_tail needs at least one line")
    for msg in newest_first:
        lines = msg.batch["lines"]
        for i in range(len(lines) - 1, -1, -1):
            if flt.keeps(lines[i]):
                need -= 1
                if need == 0:
                    return Position(seq=msg.seq - 1, skip=i)
    return need


# ---- sets ---------------------------------------------------------------------------------------


def set_members(set_name: str, names: Iterable[str]) -> list[str]:
    """The tasks of set ``set_name`` (``<set>-<n>``) among ``names``, by replica number."""
    pattern = re.compile(rf"^{re.escape(set_name)}-(\d+)$")
    found = {m.group(0): int(m.group(1)) for name in names if (m := pattern.match(name))}
    return sorted(found, key=lambda name: (found[name], name))


def check_after(req: ReadLogs) -> None:
    """A set request's cursor may only name tasks of that set."""
    if req.set is None:
        return
    strangers = sorted(set(req.after) - set(set_members(req.set, req.after)))
    if strangers:
        message = f"names tasks that are not in set {req.set}: {', '.join(strangers[:5])}"
        raise InvalidRequestError(f"after: {message}", [FieldError("after", message)])


def _first_time(c: Chunk) -> tuple[datetime | None, str]:
    lines = c["lines"]
    return (line_time(lines[0]) if lines else None), c["task"]


def merge(per_task: Sequence[list[Chunk]]) -> list[Chunk]:
    """Chunks of several tasks in the order their first lines were written; each task's own
    order is kept (a chunk without a time goes as soon as it is at its task's head)."""
    if len(per_task) == 1:
        return per_task[0]

    def key(c: Chunk) -> tuple[int, float, str]:
        t, task = _first_time(c)
        return (0, 0.0, task) if t is None else (1, t.timestamp(), task)

    return list(heapq.merge(*per_task, key=key))


# ---- the end of a stream ------------------------------------------------------------------------


@dataclass(frozen=True)
class Tracked:
    """What the event log says of one task, folded by the relay."""

    view: TaskView | None
    deleted: bool
    changed: datetime
    """When the stream stored the task's last event."""
    last: TaskView | None = None
    """The task before it was deleted (its last placement), or ``view``."""


@dataclass(frozen=True)
class TaskEnd:
    reason: str
    epoch: int
    at: datetime
    node: str | None
    started: bool
    """A container ran in the last placement (so its agent will mark the end of its output)."""


@dataclass(frozen=True)
class LastLog:
    """The last message on a task's log subjects."""

    seq: int
    eof: bool
    epoch: int
    stored: datetime
    """When the stream stored it."""


def _will_restart(view: TaskView) -> bool:
    """An exit the agent answers with a restart (or, out of retries, with ``task.failed``)."""
    if view.status.desired == "stopped":
        return False
    policy = view.config.restart.policy
    if policy == "always":
        return True
    return policy == "on-failure" and view.status.exit_code != 0


def _end_reason(name: str, tracked: Tracked) -> str:
    view = tracked.view
    if tracked.deleted:
        return f"task {name} was deleted"
    if view is None:
        return ""
    phase = view.status.phase
    if phase == "failed":
        detail = view.status.reason
        return f"task {name} failed: {detail}" if detail else f"task {name} failed"
    if phase == "stopped":
        return f"task {name} stopped"
    if phase == "exited" and not _will_restart(view):
        return f"task {name} exited with code {view.status.exit_code}"
    return ""


def task_end(name: str, tracked: Tracked) -> TaskEnd | None:
    """Why the task has ended for good, or None while it may still write."""
    reason = _end_reason(name, tracked)
    if not reason:
        return None
    last = tracked.last or tracked.view
    status = last.status if last is not None else None
    return TaskEnd(
        reason=reason,
        epoch=status.epoch if status else 0,
        at=tracked.changed,
        node=status.node if status else None,
        started=bool(status and status.container_id),
    )


def stream_end(
    end: TaskEnd | None,
    last: LastLog | None,
    at: Position,
    now: datetime,
    *,
    node_gone: bool,
    patience: timedelta,
) -> str | None:
    """Why a follow of one task is over, or None.

    It is over when the task has ended and everything stored was delivered, up to the
    end-of-output mark of its last placement. No mark will come when no container ran in that
    placement, or when its node is gone (not ready, lost, deleted); and a mark that a live
    agent has not sent after ``patience`` of silence (nothing stored since the task ended) is
    given up on.
    """
    if end is None or (last is not None and at.seq < last.seq):
        return None
    if last is not None and last.eof and last.epoch >= end.epoch:
        return end.reason
    if not end.started or node_gone:
        return end.reason
    quiet_since = end.at if last is None else max(end.at, last.stored)
    if now - quiet_since >= patience:
        return f"{end.reason} (its agent sent no end-of-output mark)"
    return None


def set_end(set_name: str, reasons: Mapping[str, str | None]) -> str | None:
    """A set's follow is over when every one of its tasks' is."""
    if not reasons or any(r is None for r in reasons.values()):
        return None
    if len(reasons) == 1:
        return next(iter(reasons.values()))
    return f"all {len(reasons)} tasks of set {set_name} ended"


def until_end(flt: Filter, now: datetime) -> str | None:
    """A follow with ``until`` is over once that time (and a margin for late lines) has passed."""
    if flt.until is not None and now >= flt.until + SINCE_MARGIN:
        return "reached --until"
    return None
