"""CORE: how the agent turns a container's raw output into numbered, split, batched log lines.

- **Numbers** count per placement (task, epoch) from 1, across the containers of that placement
  (restarts), and never repeat. A dropped line still takes its number, so a reader sees the gap
  where lines are missing; ``LogBatch.dropped`` counts them.
- **Splitting**: a part carries at most ``MAX_LINE`` bytes; valid UTF-8 is cut between characters
  and travels as text, anything else as bytes.
- **Batches** hold consecutive numbers of one container only (never across a gap), up to
  ``BATCH_BYTES``; a batch goes when it is full, when its oldest line waited ``BATCH_AGE_S``, or
  when the output ended. Its ``Nats-Msg-Id`` is ``<task>.<epoch>.<first n>``.
- **Checkpoint** (one per placement, in the agent's data dir), written *before* each batch is
  published: the cursor where that batch starts in the container's output, its first and last
  number, and the drop count. After a restart the agent reads the output again from the cursor,
  numbers from the same first number and cuts the same first batch, so a batch that had been
  stored already is a duplicate the stream drops; nothing is shipped twice or skipped.
A cursor assumes a runtime replays its output in the same order with the same times, and that
times do not go backwards within one stream (the Runtime contract). Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from voiyd.agent.runtimes.protocol import LogStream, RawLine
from voiyd.api.logs import MAX_LINE

BATCH_BYTES = 64 * 1024
BATCH_AGE_S = 0.1
LINE_OVERHEAD = 320
"""What a queued line costs besides its bytes: the agent's bookkeeping for it (number, time,
cursor; about 300 bytes measured on CPython 3.11), so the buffer bounds memory, not just text."""
WIRE_OVERHEAD = 64
"""What a line adds to a batch's msgpack besides its bytes (its keys, number and time)."""
CHECKPOINT_VERSION = 1
KEEP_DONE = 16
"""Finished containers a checkpoint remembers (more than a placement keeps at once)."""
_UTF8_CONT = 0b1100_0000
_UTF8_CONT_BITS = 0b1000_0000
_STREAMS: tuple[LogStream, LogStream] = ("stdout", "stderr")

# ---- lines ----------------------------------------------------------------------------------


def split_line(data: bytes, limit: int = MAX_LINE) -> list[bytes]:
    """``data`` in parts of at most ``limit`` bytes; valid UTF-8 is never cut inside a character."""
    if len(data) <= limit:
        return [data]
    text = is_utf8(data)
    parts: list[bytes] = []
    start = 0
    while len(data) - start > limit:
        end = start + limit
        if text:
            while end > start and data[end] & _UTF8_CONT == _UTF8_CONT_BITS:
                end -= 1  # back off continuation bytes to the start of the character
        parts.append(data[start:end])
        start = end
    parts.append(data[start:])
    return parts


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def line_value(part: bytes) -> str | bytes:
    """What a part travels as: text when it is UTF-8, else the bytes as they are."""
    try:
        return part.decode("utf-8")
    except UnicodeDecodeError:
        return part


@functools.lru_cache(maxsize=256)  # lines read together share their time
def wire_time(t: datetime) -> str:
    """A time as the wire carries it (pydantic's JSON form: ISO 8601, UTC as ``Z``)."""
    return t.isoformat().replace("+00:00", "Z")


def line_dict(n: int, t: str, stream: LogStream, part: bytes, partial: bool) -> dict[str, Any]:
    """One ``LogLine`` in its wire shape (built by hand: pydantic's JSON mode cannot hold bytes)."""
    return {"n": n, "t": t, "s": stream, "line": line_value(part), "partial": partial}


def line_cost(part: bytes) -> int:
    """What a queued part takes of the node's buffer."""
    return len(part) + LINE_OVERHEAD


def wire_size(part: bytes) -> int:
    """What a part adds to a batch on the wire (about)."""
    return len(part) + WIRE_OVERHEAD


@dataclass(frozen=True, slots=True)
class Part:
    """One numbered line as shipped: a whole raw line, or one part of a split one."""

    n: int
    data: bytes
    partial: bool
    before: Cursor
    """Where the output stands just before this part (a batch starting here resumes there)."""


def parts_of(raw: RawLine, first: int, n: int, before: Cursor) -> list[Part]:
    """The parts of ``raw`` from part ``first`` on (earlier ones were settled), numbered from
    ``n``; ``before`` is the cursor before ``raw``. A runtime's ``partial`` piece makes its last
    part partial too: the line goes on in the next piece."""
    if first == 0 and len(raw.data) <= MAX_LINE:  # nearly every line
        return [Part(n, raw.data, raw.partial, before.at_part(raw.stream, 0))]
    pieces = split_line(raw.data)
    last = len(pieces) - 1
    return [
        Part(n + i - first, pieces[i], i < last or raw.partial, before.at_part(raw.stream, i))
        for i in range(first, len(pieces))
    ]


# ---- cursors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """The last line taken from one stream: its time, and how many lines with that time."""

    t: datetime
    count: int


@dataclass(frozen=True, slots=True)
class Cursor:
    """A place in a container's output: every line before it is settled (shipped or dropped).

    ``parts`` parts of the next line of ``parts_stream`` are settled too (a batch may end
    inside a line that was split)."""

    stdout: Mark | None = None
    stderr: Mark | None = None
    parts: int = 0
    parts_stream: LogStream = "stdout"

    def mark(self, stream: LogStream) -> Mark | None:
        return self.stdout if stream == "stdout" else self.stderr

    def since(self) -> datetime | None:
        """Where a runtime must start reading to find everything after this cursor."""
        times = [m.t for m in (self.stdout, self.stderr) if m is not None]
        return min(times) if times else None

    def at_part(self, stream: LogStream, index: int) -> Cursor:
        """The place before part ``index`` of the next line of ``stream``."""
        if index == 0 and self.parts == 0:
            return self
        return replace(self, parts=index, parts_stream=stream)

    def after(self, raw: RawLine) -> Cursor:
        """The place after the whole line ``raw``."""
        old = self.mark(raw.stream)
        mark = Mark(raw.t, old.count + 1 if old is not None and old.t == raw.t else 1)
        if raw.stream == "stdout":
            return Cursor(mark, self.stderr)
        return Cursor(self.stdout, mark)


ALL_PARTS = 1 << 30


@dataclass(frozen=True)
class Resume:
    """Reading a container's output again from a cursor: which parts were settled before."""

    cursor: Cursor = field(default_factory=Cursor)
    seen_stdout: int = 0
    seen_stderr: int = 0
    parts_done: bool = False


def skip(resume: Resume, raw: RawLine) -> tuple[int, Resume]:
    """How many parts of ``raw`` to skip (``ALL_PARTS``: all of them), and the resume after it."""
    mark = resume.cursor.mark(raw.stream)
    if mark is not None and raw.t <= mark.t:
        if raw.t < mark.t:
            return ALL_PARTS, resume
        if raw.stream == "stdout" and resume.seen_stdout < mark.count:
            return ALL_PARTS, replace(resume, seen_stdout=resume.seen_stdout + 1)
        if raw.stream == "stderr" and resume.seen_stderr < mark.count:
            return ALL_PARTS, replace(resume, seen_stderr=resume.seen_stderr + 1)
    cursor = resume.cursor
    if not resume.parts_done and cursor.parts and raw.stream == cursor.parts_stream:
        return cursor.parts, replace(resume, parts_done=True)
    return 0, resume


# ---- batches --------------------------------------------------------------------------------


def batch_length(
    pending: Iterable[tuple[int, int, str]], max_bytes: int = BATCH_BYTES, last: int | None = None
) -> int:
    """How many pending lines ``(n, wire size, container id)`` from the front make the next batch:
    consecutive numbers of one container, at most ``max_bytes`` (at least one line), and none
    numbered past ``last`` (the batch that was in flight when the agent stopped)."""
    count = total = 0
    prev_n, prev_c = 0, ""
    for n, size, container in pending:
        if count and (n != prev_n + 1 or container != prev_c):
            break
        if (last is not None and n > last) or (count and total + size > max_bytes):
            break
        count, total, prev_n, prev_c = count + 1, total + size, n, container
    return count


def send_now(
    pending_bytes: int, oldest_age_s: float, ended: bool, reaches_last: bool = False
) -> bool:
    """Whether the next batch goes now: full, old enough, the output ended, or a replayed batch
    is complete again."""
    return pending_bytes >= BATCH_BYTES or oldest_age_s >= BATCH_AGE_S or ended or reaches_last


def msg_id(task: str, epoch: int, first_n: int) -> str:
    return f"{task}.{epoch}.{first_n}"


def eof_msg_id(task: str, epoch: int, container_id: str) -> str:
    """The end of one container's output (a placement may run several containers)."""
    return f"{task}.{epoch}.eof.{container_id}"


def batch_dict(
    task: str,
    node: str,
    epoch: int,
    container_id: str,
    lines: Sequence[dict[str, Any]],
    dropped: int,
    eof: bool = False,
) -> dict[str, Any]:
    """A ``LogBatch`` in its wire shape."""
    return {
        "task": task,
        "node": node,
        "epoch": epoch,
        "container_id": container_id,
        "lines": list(lines),
        "dropped": dropped,
        "eof": eof,
    }


def report_due(dropped: int, reported: int, since_last_s: float | None, every_s: float) -> bool:
    """Whether to report a placement's drop count: it grew, and the last report is old enough."""
    return dropped > reported and (since_last_s is None or since_last_s >= every_s)


# ---- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """Where shipping a placement's output stands, as persisted before each batch."""

    task: str
    epoch: int
    container_id: str = ""
    """The container the cursor is in ("" before the first batch)."""
    cursor: Cursor = field(default_factory=Cursor)
    next_n: int = 1
    """The number of the first line at ``cursor``."""
    inflight_last: int | None = None
    """The last number of the batch published from ``cursor`` (not known to be stored)."""
    dropped: int = 0
    eof: bool = False
    """``container_id``'s output is completely shipped; the next container starts at next_n."""
    done: tuple[str, ...] = ()

    def finished(self, container_id: str, next_n: int) -> Checkpoint:
        done = (*[d for d in self.done if d != container_id], container_id)[-KEEP_DONE:]
        return replace(
            self,
            container_id=container_id,
            cursor=Cursor(),
            next_n=next_n,
            inflight_last=None,
            eof=True,
            done=done,
        )


def _mark_json(mark: Mark | None) -> list[Any] | None:
    return [mark.t.isoformat(), mark.count] if mark is not None else None


def _mark(value: Any) -> Mark | None:
    if value is None:
        return None
    t, count = value
    return Mark(datetime.fromisoformat(t), int(count))


def checkpoint_text(cp: Checkpoint) -> str:
    c = cp.cursor
    return json.dumps(
        {
            "v": CHECKPOINT_VERSION,
            "task": cp.task,
            "epoch": cp.epoch,
            "container_id": cp.container_id,
            "cursor": {
                "stdout": _mark_json(c.stdout),
                "stderr": _mark_json(c.stderr),
                "parts": c.parts,
                "parts_stream": c.parts_stream,
            },
            "next_n": cp.next_n,
            "inflight_last": cp.inflight_last,
            "dropped": cp.dropped,
            "eof": cp.eof,
            "done": list(cp.done),
        }
    )


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in ``text``; ``ValueError`` if it is not one this version wrote."""
    try:
        d = json.loads(text)
        if d.get("v") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {d.get('v')!r}")
        c = d["cursor"]
        stream = c["parts_stream"]
        if stream not in _STREAMS:
            raise ValueError(f"unknown stream {stream!r}")
        return Checkpoint(
            task=str(d["task"]),
            epoch=int(d["epoch"]),
            container_id=str(d["container_id"]),
            cursor=Cursor(_mark(c["stdout"]), _mark(c["stderr"]), int(c["parts"]), stream),
            next_n=int(d["next_n"]),
            inflight_last=None if d["inflight_last"] is None else int(d["inflight_last"]),
            dropped=int(d["dropped"]),
            eof=bool(d["eof"]),
            done=tuple(str(x) for x in d["done"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed checkpoint: {exc!r}") from exc


@dataclass(frozen=True)
class Start:
    """How to read one container: from where, numbering from what, and what to settle first."""

    cursor: Cursor
    next_n: int
    inflight_last: int | None = None
    unfinished: str = ""
    """A container of this placement whose end was never shipped (gone meanwhile)."""


def plan_start(cp: Checkpoint, container_id: str) -> Start | None:
    """Where reading ``container_id`` starts after ``cp``; None when it is shipped already."""
    if container_id in cp.done:
        return None
    if cp.container_id == container_id and not cp.eof:
        return Start(cp.cursor, cp.next_n, cp.inflight_last)
    if cp.container_id and not cp.eof:
        # That container went away before its output was all shipped; what was in flight may
        # be stored, so its numbers are used up.
        after = (cp.inflight_last if cp.inflight_last is not None else cp.next_n - 1) + 1
        return Start(Cursor(), after, unfinished=cp.container_id)
    return Start(Cursor(), cp.next_n)
