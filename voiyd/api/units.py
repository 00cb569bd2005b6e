"""CORE: memory sizes and durations as operators write them (``256m``, ``1Gi``, ``10m``)."""

from __future__ import annotations

import re
from datetime import timedelta

_MEM_RE = re.compile(r"^\s*(?P<num>\d+(\.\d+)?)\s*(?P<unit>[a-zA-Z]*)\s*$")
_MEM_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "ki": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "ti": 1024**4,
    "tib": 1024**4,
}
MAX_MEMORY = 2**63 - 1
"""The largest size accepted: a signed 64-bit integer, as Docker and SQLite store it."""
_DUR_RE = re.compile(r"(?P<num>\d+(\.\d+)?)(?P<unit>ms|s|m|h|d)")
_DUR_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_memory(text: str) -> int:
    """Bytes in ``text`` (``256m``, ``1Gi``, ``1048576``); binary units, as Docker reads them."""
    m = _MEM_RE.match(text)
    if not m or m["unit"].lower() not in _MEM_UNITS:
        raise ValueError(
            f"{text!r} is not a memory size: use a number and an optional unit (k, m, g, Mi, Gi)"
        )
    size = float(m["num"]) * _MEM_UNITS[m["unit"].lower()]
    if size > MAX_MEMORY:
        raise ValueError(f"{text!r} is more memory than any host has (at most {MAX_MEMORY} bytes)")
    return int(size)


def format_memory(size: int) -> str:
    """The shortest exact form of ``size`` bytes (``256Mi``), or plain bytes."""
    for unit, factor in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def parse_duration(text: str) -> timedelta:
    """A duration such as ``90s``, ``10m``, ``1h30m``, ``500ms`` or a bare number of seconds."""
    stripped = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", stripped):
        return _seconds(float(stripped), text)
    pos = 0
    total = 0.0
    for m in _DUR_RE.finditer(stripped):
        if m.start() != pos:
            break
        total += float(m["num"]) * _DUR_UNITS[m["unit"]]
        pos = m.end()
    if pos != len(stripped) or not stripped:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 10m, 1h30m or 2d")
    return _seconds(total, text)


def _seconds(total: float, text: str) -> timedelta:
    try:
        return timedelta(seconds=total)
    except OverflowError:  # also what an infinite float (a few hundred digits) becomes
        raise ValueError(f"{text!r} is too long a duration") from None


def human_age(seconds: float) -> str:
    """kubectl-style age: ``45s``, ``12m``, ``3h``, ``5d``."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"
