"""CORE: reading logs through ``voiyd.api.v1.logs.read`` (served by ``voiyd-logs``).

The protocol is a client-driven cursor: each reply carries ``cursor`` (per task, the stream
sequence of the last log message delivered), and the next request sends it back as ``after``.
The relay keeps nothing between requests, so any replica can serve the next one, a slow client
just asks less often, a vanished one costs nothing, and a client whose relay died asks another
with the same cursor: no gap, no duplicate. ``follow`` turns a request into a long poll of up to
``wait_s`` seconds; ``eos`` says the stream has ended (the task ended and its output was
delivered, or, without ``follow``, everything stored has been delivered).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, field_validator, model_validator

from voiyd.api.logs import LogLine, Stream
from voiyd.api.specs import Frozen, Name
from voiyd.api.units import parse_duration

MAX_LINES = 100_000
DEFAULT_LINES = 10_000
MAX_WAIT_S = 30.0
MAX_MEMBERS = 1000
"""Most tasks one request may cover (a set's replicas)."""
MAX_AGO = timedelta(days=36_500)


def parse_when(text: str, now: datetime) -> datetime:
    """``10m`` (that long before ``now``) or an RFC 3339 time with a zone, as a datetime."""
    stripped = text.strip()
    try:
        ago = parse_duration(stripped)
    except ValueError:
        ago = None
    if ago is not None:
        if ago > MAX_AGO:
            raise ValueError(f"{text!r} is too long ago (at most {MAX_AGO.days} days)")
        return now - ago
    try:
        when = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (10m, 1h30m) nor a time (2025-03-14T09:26:53Z)"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z or +01:00")
    return when


def _check_when(value: str | None) -> str | None:
    if value is not None:
        parse_when(value, datetime(2000, 1, 1).astimezone())
    return value


class Position(Frozen):
    """Where a reader is in one task's log: every message up to ``seq`` is delivered, and
    ``skip`` lines of the next one (a message too large for one reply is split)."""

    seq: int = Field(ge=0)
    skip: int = Field(default=0, ge=0)


class ReadLogs(Frozen):
    """``logs.read``: one task's log, or a set's (``set``: the tasks ``<set>-<n>``)."""

    task: Name | None = None
    set: Name | None = None
    tail: int | None = Field(default=None, ge=0)
    """Start with the last ``tail`` lines (per task) rather than the first stored one."""
    since: str | None = None
    """Only lines written at or after this time (``10m`` = ten minutes ago, or RFC 3339)."""
    until: str | None = None
    """Only lines written at or before this time."""
    stream: Stream | None = None
    follow: bool = False
    wait_s: float = Field(default=0.0, ge=0, le=MAX_WAIT_S)
    """With ``follow``: wait up to this long for new lines before answering with none."""
    max_lines: int = Field(default=DEFAULT_LINES, ge=1, le=MAX_LINES)
    after: dict[Name, Position] = Field(default_factory=dict, max_length=MAX_MEMBERS)
    """The ``cursor`` of the previous reply; empty on the first request."""

    _since = field_validator("since")(_check_when)
    _until = field_validator("until")(_check_when)

    @model_validator(mode="after")
    def _one_target(self) -> ReadLogs:
        if (self.task is None) == (self.set is None):
            raise ValueError("give exactly one of task and set")
        if self.task is not None and set(self.after) - {self.task}:
            raise ValueError(f"after: names tasks other than {self.task!r}")
        return self

    @property
    def target(self) -> str:
        return self.task if self.task is not None else f"set/{self.set}"


class LogChunk(Frozen):
    """Consecutive lines of one stored batch (``seq``), as the agent sent them."""

    task: Name
    seq: int
    node: Name
    epoch: int
    lines: list[LogLine]
    dropped: int = 0
    eof: bool = False


class ReadLogsReply(Frozen):
    chunks: list[LogChunk]
    cursor: dict[Name, Position]
    eos: bool
    reason: str = ""
    """Why the stream ended (``eos``), for people."""
