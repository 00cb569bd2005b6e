"""Following an exec task's output: ``stdout.log`` and ``stderr.log`` of its container directory.

The command writes both files itself (the shim only opens them), so nothing records when a line
was written. The honest time available is when the runtime *read* it: each read is appended to
``logs.idx`` in the container directory (``<o|e> <end offset> <microseconds since the epoch>``),
and a later reader replays the files through that index, chunk by chunk, in the original order
with the original times. So every reader sees the same lines, in the same order, with the same
times, and ``since`` can skip whole chunks. A line's time is the read of its first byte: within
a poll interval (20-250 ms) of when it was written while a reader follows the task; the time of
the first read after the fact for output nobody followed (e.g. while the agent was down).
Readers running at the same moment may stamp the same fresh chunk a poll apart (the first entry
in the index wins for later readers). Files are read with plain blocking reads: they are local
and were just written, so the reads come from the page cache.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TextIO

from voiyd.agent.runtimes import exec_shim as on_disk
from voiyd.agent.runtimes.lines import LineAssembler
from voiyd.agent.runtimes.protocol import LogStream, RawLine

_CHUNK = 256 * 1024
_POLL_MIN_S = 0.02
_POLL_MAX_S = 0.25
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_CODES: dict[str, LogStream] = {"o": "stdout", "e": "stderr"}
_FILES = {"o": on_disk.STDOUT_FILE, "e": on_disk.STDERR_FILE}


@dataclass(frozen=True)
class IndexEntry:
    code: str
    """``o`` (stdout) or ``e`` (stderr)."""
    end: int
    """The file offset this read ended at (it began where the previous entry of the file ended)."""
    us: int
    """When it was read, in microseconds since the epoch."""


def parse_index(text: str) -> list[IndexEntry]:
    """Entries in order; a torn last line or an entry that covers nothing new is ignored."""
    out: list[IndexEntry] = []
    ends = {"o": 0, "e": 0}
    for row in text.splitlines():
        parts = row.split(" ")
        if len(parts) != 3 or parts[0] not in ends:
            continue
        try:
            entry = IndexEntry(parts[0], int(parts[1]), int(parts[2]))
        except ValueError:
            continue
        if entry.end > ends[entry.code]:
            ends[entry.code] = entry.end
            out.append(entry)
    return out


def start_positions(entries: list[IndexEntry], since_us: int | None) -> tuple[int, dict[str, int]]:
    """Where a reader from ``since`` starts: the first entry read at or after it, and each file's
    offset there (everything before was read earlier than ``since``)."""
    positions = {"o": 0, "e": 0}
    if since_us is None:
        return 0, positions
    for i, entry in enumerate(entries):
        if entry.us >= since_us:
            return i, positions
        positions[entry.code] = entry.end
    return len(entries), positions


def _time(us: int) -> datetime:
    return _EPOCH + us * _ONE_US  # integer arithmetic: a time read back is the time written


def _us(t: datetime) -> int:
    return (t - _EPOCH) // _ONE_US


class _Tail:
    """One of the two files: read from ``pos`` on, cut into lines."""

    def __init__(self, path: Path, stream: LogStream) -> None:
        self.path = path
        self.lines = LineAssembler(stream)
        self.pos = 0
        self._file: BinaryIO | None = None

    def _open(self) -> BinaryIO | None:
        if self._file is None:
            with contextlib.suppress(FileNotFoundError):
                self._file = self.path.open("rb")  # kept open: readable after the dir is removed
        return self._file

    def read(self, end: int | None = None) -> bytes:
        """The bytes from ``pos`` up to ``end`` (or the next chunk of whatever is there)."""
        f = self._open()
        if f is None:
            return b""
        f.seek(self.pos)
        data = f.read(_CHUNK if end is None else max(0, end - self.pos))
        self.pos += len(data)
        return data

    def starts_mid_line(self) -> bool:
        f = self._open()
        if f is None or self.pos == 0:
            return False
        f.seek(self.pos - 1)
        return f.read(1) != b"\n"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def load(self) -> list[IndexEntry]:
        try:
            return parse_index(self.path.read_text())
        except FileNotFoundError:
            return []

    def append(self, code: str, end: int, us: int) -> None:
        if self._file is None:
            try:
                self._file = self.path.open("a")
            except FileNotFoundError:  # the container directory is gone: nobody will replay it
                return
        self._file.write(f"{code} {end} {us}\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class ExecLogReader:
    """The lines of one exec container; ``producing`` says whether its output may still grow."""

    def __init__(self, directory: Path, producing: Callable[[], bool]) -> None:
        self._tails = {c: _Tail(directory / name, _CODES[c]) for c, name in _FILES.items()}
        self._index = _Index(directory / on_disk.LOG_INDEX_FILE)
        self._producing = producing

    async def follow(self, since: datetime | None) -> AsyncIterator[RawLine]:
        try:
            since_us = _us(since) if since is not None else None
            for line in self._replay(since_us):
                yield line
            async for line in self._live():
                if since_us is None or _us(line.t) >= since_us:
                    yield line
        finally:
            for tail in self._tails.values():
                tail.close()
            self._index.close()

    def _replay(self, since_us: int | None) -> Iterator[RawLine]:
        """What earlier readers read, chunk by chunk, with their times."""
        entries = self._index.load()
        first, positions = start_positions(entries, since_us)
        for code, tail in self._tails.items():
            tail.pos = positions[code]
            if tail.starts_mid_line():
                tail.lines.skip_to_newline()  # that line began before ``since``
        for entry in entries[first:]:
            tail = self._tails[entry.code]
            for line in tail.lines.feed(tail.read(entry.end), _time(entry.us)):
                if since_us is None or _us(line.t) >= since_us:
                    yield line

    async def _live(self) -> AsyncIterator[RawLine]:
        delay = _POLL_MIN_S
        while True:
            lines = self._read_fresh()
            if lines:
                for line in lines:
                    yield line
                delay = _POLL_MIN_S
                await asyncio.sleep(0)
                continue
            if not self._producing():
                for line in self._drain():
                    yield line
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)

    def _read_fresh(self) -> list[RawLine]:
        now = _us(datetime.now(UTC))
        out: list[RawLine] = []
        for code, tail in self._tails.items():
            data = tail.read()
            if data:
                self._index.append(code, tail.pos, now)
                out.extend(tail.lines.feed(data, _time(now)))
        return out

    def _drain(self) -> Iterator[RawLine]:
        """The process has ended: read what is left, then the unterminated last lines."""
        while lines := self._read_fresh():
            yield from lines
        for tail in self._tails.values():
            yield from tail.lines.flush()
