"""CORE: log lines as ``voiydctl logs`` prints them: the bytes the task wrote, as is.

Each line is followed by a newline unless it is a part of a split line (``partial``), whose
next part continues it. ``--timestamps`` puts the time the runtime saw the line in front, and a
set's lines start with ``[task]``; neither is repeated on a continuation. If another task's line
comes while a split line is open, the open one is ended first, so lines never run together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LogFormat:
    timestamps: bool = False
    prefix: bool = False
    """Start each line with ``[task] `` (a set's replicas)."""
    open_task: str | None = None
    """The task whose last line printed was a part of a split line."""
    dropped: dict[tuple[str, int], int] = field(default_factory=dict)
    """Per (task, epoch), how many lines the agent said it dropped."""

    def render(self, chunks: Iterable[Mapping[str, Any]]) -> bytes:
        out: list[bytes] = []
        for chunk in chunks:
            self._chunk(chunk, out)
        return b"".join(out)

    def _chunk(self, chunk: Mapping[str, Any], out: list[bytes]) -> None:
        task = str(chunk["task"])
        head = f"[{task}] ".encode() if self.prefix else b""
        plain = not head and not self.timestamps and self.open_task is None
        if plain and _fast(chunk["lines"], out):
            return
        for line in chunk["lines"]:
            text = line["line"]
            data = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
            partial = bool(line.get("partial", False))
            if plain and not partial:
                out.append(data + b"\n")
                continue
            self._line(task, head, line, data, partial, out)
            plain = not head and not self.timestamps and self.open_task is None

    def _line(
        self,
        task: str,
        head: bytes,
        line: Mapping[str, Any],
        data: bytes,
        partial: bool,
        out: list[bytes],
    ) -> None:
        if self.open_task is not None and self.open_task != task:
            out.append(b"\n")
            self.open_task = None
        if self.open_task is None:
            out.append(head)
            if self.timestamps:
                out.append(f"{line['t']} ".encode())
        out.append(data if partial else data + b"\n")
        self.open_task = task if partial else None

    def drop_notes(self, chunks: Iterable[Mapping[str, Any]]) -> list[str]:
        """A note for each placement whose agent reports more dropped lines than before."""
        notes: list[str] = []
        for chunk in chunks:
            key = (str(chunk["task"]), int(chunk.get("epoch", 0)))
            dropped = int(chunk.get("dropped", 0) or 0)
            if dropped > self.dropped.get(key, 0):
                notes.append(
                    f"note: the agent on {chunk.get('node')} dropped {dropped} line(s) of task "
                    f"{key[0]} (epoch {key[1]}) so far: its buffer was full"
                )
                self.dropped[key] = dropped
        return notes


def _fast(lines: list[Mapping[str, Any]], out: list[bytes]) -> bool:
    """Whole text lines joined in one go (the common case); False if any is bytes or a part."""
    texts = [line["line"] for line in lines]
    if any(line.get("partial") for line in lines) or not all(type(t) is str for t in texts):
        return False
    if texts:
        out.append(("\n".join(texts) + "\n").encode("utf-8", "replace"))
    return True
