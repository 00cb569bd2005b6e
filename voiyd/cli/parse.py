"""CORE: the CLI's own argument syntax: ``KEY=VALUE``, label changes, ``KIND[/NAME]``, ``--since``.

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
    "set": "set",
    "sets": "set",
    "volume": "volume",
    "volumes": "volume",
    "vol": "volume",
}
KIND_NAMES = "tasks, sets, volumes, nodes"
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


def parse_label_changes(values: Iterable[str]) -> dict[str, str | None]:
    """``["a=1", "b-"]`` -> ``{"a": "1", "b": None}``: set a, remove b (kubectl's syntax)."""
    out: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if sep:
            if not key.strip():
                raise ValueError(f"{item!r} has no key: use KEY=VALUE or KEY-")
            out[key.strip()] = value
        elif item.endswith("-") and len(item) > 1:
            out[item[:-1]] = None
        else:
            raise ValueError(f"{item!r} is neither KEY=VALUE (set) nor KEY- (remove)")
    if not out:
        raise ValueError("no label changes given: use KEY=VALUE to set, KEY- to remove")
    return out


def parse_file_spec(text: str) -> tuple[str, str | None]:
    """``--from-file PATH[=NAME]`` -> ``(PATH, NAME)``; NAME is the file's path in the volume."""
    path, sep, name = text.partition("=")
    if not path:
        raise ValueError(f"{text!r}: the path is missing (use PATH or PATH=NAME)")
    if sep and not name:
        raise ValueError(f"{text!r}: the name after '=' is missing (use PATH or PATH=NAME)")
    return path, (name if sep else None)


def parse_kind(text: str) -> str:
    kind = KIND_ALIASES.get(text.lower())
    if kind is None:
        raise ValueError(f"unknown kind {text!r}: expected one of {KIND_NAMES}")
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


def parse_ref(kind: str, name: str | None, expected: str) -> str:
    """The name in ``set/web`` or ``set web`` when the kind must be ``expected``."""
    parsed, found = parse_target(kind, name)
    if parsed != expected:
        raise ValueError(f"this command works on {expected}s, not {parsed}s")
    if not found:
        raise ValueError(f"which {expected}? give {expected}/NAME or {expected} NAME")
    return found


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
