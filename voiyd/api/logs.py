"""CORE: the shapes of task logs on ``voiyd.logs.<node>.<task>`` (stream ``VOIYD_LOGS``).

An agent ships a task's output in small batches: each ``LogBatch`` carries the placement
(node, epoch) and lines numbered per placement (``n`` starts at 1 for each epoch and never
repeats, so a reader can tell gaps and duplicates). A line longer than ``MAX_LINE`` is split
into parts (``partial`` on all but the last); output that is not UTF-8 travels as bytes.
When a container's output ends, the agent sends a batch with ``eof`` set (after every line of
that container), so a follower can end cleanly instead of guessing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from voiyd.api.specs import Frozen, Name

MAX_LINE = 16 * 1024
"""Longest line carried in one piece; longer ones are split, never cut."""

Stream = Literal["stdout", "stderr"]


class LogLine(Frozen):
    n: int = Field(ge=1)
    """Line number within the placement (task, epoch)."""
    t: AwareDatetime
    """When the runtime saw the line."""
    s: Stream
    line: str | bytes
    partial: bool = False


class LogBatch(Frozen):
    task: Name
    node: Name
    epoch: int = Field(ge=1)
    container_id: str = ""
    lines: list[LogLine] = Field(default_factory=list)
    dropped: int = Field(default=0, ge=0)
    """Lines this agent had to drop for this placement so far (buffer full while NATS was away)."""
    eof: bool = False
    """The container's output has ended and every line before this batch was shipped."""
