"""CORE: the CLI's own argument syntax: ``KEY=VALUE`` pairs, ``KIND[/NAME]`` and ``--since``.

Pure: text (and ``now``) in, values out; a problem is a ``ValueError`` whose message the command
shows as a usage error. What a value *means* (a valid label, port, memory size) is the server's
to judge: the CLI sends what it was given and reports the server's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from voiyd.api.units import parse_duration

KIND_ALIASES = {
    "task": "task",
    "tasks": "task",
    "t": "task",
    "node": "node",
    "nodes": "node",
    "no": "node",
}
_SEQ_RE = re.compile(r"^\d+$")


def parse_pairs(values: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}`` (the value may contain ``=``)."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not KEY=VALUE")
        out[key.strip()] = value
    return out


def parse_kind(text: str) -> str:
    kind = KIND_ALIASES.get(text.lower())
    if kind is None:
        raise ValueError(f"unknown kind {text!r}: expected one of tasks, nodes")
    return kind


def parse_target(kind: str, name: str | None) -> tuple[str, str | None]:
    """``("task", "web")`` from ``task web`` or ``task/web``."""
    if "/" in kind:
        if name is not None:
            raise ValueError(f"give {kind!r} or a kind and a name, not both")
        kind, _, name = kind.partition("/")
        if not name:
            raise ValueError(f"{kind}/: the name is missing")
    return parse_kind(kind), name


def parse_since(text: str | None, now: datetime) -> tuple[int | None, datetime | None]:
    """``(start_seq, start_time)`` for ``--since``: ``42`` = after sequence 42, ``10m`` = by time.

    A bare integer is a stream sequence (exclusive: events with a greater sequence are shown);
    anything else is a duration back from ``now`` (``30s``, ``10m``, ``1h30m``, ``2d``).
    """
    if text is None:
        return None, None
    stripped = text.strip()
    if _SEQ_RE.match(stripped):
        return int(stripped) + 1, None
    try:
        ago = parse_duration(stripped)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a sequence number (42) nor a duration (10m, 1h30m)"
        ) from None
    return None, now - max(ago, timedelta(0))
