"""Cutting a stream of output bytes into ``RawLine``s; shared by the Docker and exec runtimes.

Bytes arrive in chunks, each with the time the runtime read (or recorded) it. A line is stamped
with the time of the chunk its first byte came in, so a line split across chunks has one time,
and reading the same chunks again gives the same lines with the same times. A line longer than
``MAX_RAW_LINE`` is handed over in pieces (``partial`` on all but the last), so memory stays
bounded. Pure: no I/O, no clock; bytes are never decoded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from voiyd.agent.runtimes.protocol import MAX_RAW_LINE, LogStream, RawLine

_NL = b"\n"


class LineAssembler:
    """Lines of one stream; ``feed`` chunks in order, ``flush`` once the output has ended."""

    def __init__(self, stream: LogStream, limit: int = MAX_RAW_LINE) -> None:
        self.stream: LogStream = stream
        self._limit = limit
        self._pending = bytearray()
        self._t: datetime | None = None
        self._skipping = False

    def skip_to_newline(self) -> None:
        """Drop the bytes up to the next newline: the tail of a line that started earlier."""
        self._skipping = True

    def feed(self, data: bytes, t: datetime) -> list[RawLine]:
        out: list[RawLine] = []
        start = 0
        if self._skipping:
            end = data.find(_NL)
            if end < 0:
                return out
            start, self._skipping = end + 1, False
        while (end := data.find(_NL, start)) >= 0:
            if self._t is not None:  # a line in progress since an earlier chunk
                self._pending += data[start:end]
                self._cut(out, bytes(self._pending), self._t)
                self._pending.clear()
                self._t = None
            else:
                self._cut(out, data[start:end], t)
            start = end + 1
        if start < len(data):
            if self._t is None:
                self._t = t
            self._pending += data[start:]
            self._cut_pending(out)
        return out

    def flush(self) -> list[RawLine]:
        """The last line if the output did not end with a newline."""
        out: list[RawLine] = []
        if self._t is not None:
            self._cut(out, bytes(self._pending), self._t)
        self._pending.clear()
        self._t = None
        self._skipping = False
        return out

    def _cut(self, out: list[RawLine], line: bytes, t: datetime) -> None:
        limit = self._limit
        while len(line) > limit:
            out.append(RawLine(t, self.stream, line[:limit], partial=True))
            line = line[limit:]
        out.append(RawLine(t, self.stream, line))

    def _cut_pending(self, out: list[RawLine]) -> None:
        """Hand over full pieces of a line still growing; the rest waits for more bytes."""
        limit, t = self._limit, self._t
        assert t is not None
        while len(self._pending) >= limit:
            out.append(RawLine(t, self.stream, bytes(self._pending[:limit]), partial=True))
            del self._pending[:limit]


class Seen:
    """The lines a reader has handed over, per stream: the last time and how many had it.

    Reading the same output again (times never go backwards within a stream), ``new`` tells
    the lines not handed over yet; ``since`` is where such a read must start. Call ``again``
    before each new read.
    """

    def __init__(self) -> None:
        self._marks: dict[LogStream, tuple[datetime, int]] = {}
        self._repeats: dict[LogStream, int] = {}
        self._past: set[LogStream] = set()

    def add(self, line: RawLine) -> None:
        t, count = self._marks.get(line.stream, (None, 0))
        self._marks[line.stream] = (line.t, count + 1 if t == line.t else 1)

    def new(self, line: RawLine) -> bool:
        """Whether ``line`` of this read was not handed over before."""
        stream = line.stream
        if stream in self._past:
            return True
        mark = self._marks.get(stream)
        if mark is not None and line.t < mark[0]:
            return False
        if mark is not None and line.t == mark[0]:
            self._repeats[stream] = self._repeats.get(stream, 0) + 1
            if self._repeats[stream] <= mark[1]:
                return False
        self._past.add(stream)  # everything after a new line of this stream is new too
        return True

    def since(self, margin: timedelta) -> datetime | None:
        """Where to read again: ``margin`` before the earliest last time (None: from the start)."""
        times = [t for t, _ in self._marks.values()]
        return min(times) - margin if times else None

    def again(self) -> None:
        self._repeats.clear()
        self._past.clear()
