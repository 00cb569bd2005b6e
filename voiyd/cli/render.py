"""CORE: what the CLI shows, as plain values: table rows from views, one-line event summaries.

Pure: views (and ``now``) in, strings out; printing is ``output``'s job. Tables are plain text
columns separated by three spaces, like kubectl's, so they survive pipes and ``grep``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from voiyd.api.specs import TaskConfig, UpdateStrategy
from voiyd.api.units import format_memory, human_age
from voiyd.api.views import NodeView, SetView, TaskView, VolumeView
from voiyd.bus.subjects import parse_event_subject

GAP = "   "
NONE = "<none>"
ANY_NODE = "<any>"
_MAX_VALUE = 48
_SHORT_ID = 12

TASK_HEADERS = ("NAME", "PHASE", "NODE", "IMAGE", "RESTARTS", "AGE", "REVISION")
TASK_WIDE_HEADERS = (*TASK_HEADERS, "PORTS", "IP", "CONTAINER", "REASON")
NODE_HEADERS = (
    "NAME",
    "PHASE",
    "SCHEDULABLE",
    "RUNTIMES",
    "CPU",
    "MEMORY",
    "TASKS",
    "VERSION",
    "AGE",
)
SET_HEADERS = ("NAME", "REPLICAS", "READY", "UP-TO-DATE", "REVISION", "ROLLOUT", "AGE")
SET_WIDE_HEADERS = (*SET_HEADERS, "TASKS", "IMAGE", "STRATEGY", "REASON")
VOLUME_HEADERS = ("NAME", "TYPE", "NODE", "USED-BY", "AGE")
VOLUME_WIDE_HEADERS = (*VOLUME_HEADERS, "FILES", "LABELS")
HISTORY_HEADERS = ("REVISION", "CAUSE", "AT")
EVENT_HEADERS = ("SEQ", "TIME", "OBJECT", "TYPE", "ACTOR", "SUMMARY")
EVENT_WIDTHS = (5, 19, 20, 20, 16, 0)
"""Fixed minimum widths, so that a followed table stays aligned as rows arrive."""
OBJECT_EVENT_HEADERS = ("SEQ", "AGE", "TYPE", "ACTOR", "SUMMARY")

Row = Sequence[str]


# ---- tables -----------------------------------------------------------------------------------


def widths(headers: Row, rows: Sequence[Row], minimum: Sequence[int] = ()) -> list[int]:
    """Each column's width: its widest cell (or its minimum)."""
    out = [max(len(h), minimum[i] if i < len(minimum) else 0) for i, h in enumerate(headers)]
    for row in rows:
        for i, cell in enumerate(row):
            out[i] = max(out[i], len(cell))
    return out


def format_row(row: Row, column_widths: Sequence[int]) -> str:
    """One line; the last cell is never padded (no trailing spaces)."""
    cells = [
        cell.ljust(column_widths[i]) if i < len(row) - 1 and i < len(column_widths) else cell
        for i, cell in enumerate(row)
    ]
    return GAP.join(cells).rstrip()


def format_table(headers: Row, rows: Sequence[Row]) -> list[str]:
    w = widths(headers, rows)
    return [format_row(headers, w), *(format_row(r, w) for r in rows)]


# ---- values -----------------------------------------------------------------------------------


def age(then: datetime, now: datetime) -> str:
    return human_age((now - then).total_seconds())


def cpus(value: float | None) -> str:
    return f"{value:g}" if value is not None else NONE


def memory(value: int | None) -> str:
    return format_memory(value) if value is not None else NONE


def short(value: str | None, size: int = _SHORT_ID) -> str:
    return value[:size] if value else NONE


def pairs(values: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items()) or NONE


def timestamp(value: str | datetime) -> str:
    """An event time as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# ---- rows -------------------------------------------------------------------------------------


def task_image(task: TaskView) -> str:
    return template_image(task.config)


def task_row(task: TaskView, now: datetime, *, wide: bool = False) -> list[str]:
    st = task.status
    row = [
        task.meta.name,
        st.phase,
        st.node or NONE,
        task_image(task),
        str(st.restarts),
        age(task.created_at, now),
        str(task.revision),
    ]
    if wide:
        ports = ",".join(str(p) for p in task.config.ports) or NONE
        row += [ports, st.ip or NONE, short(st.container_id), st.reason or NONE]
    return row


def node_row(node: NodeView, now: datetime) -> list[str]:
    cap, used = node.capacity, node.allocated
    return [
        node.name,
        node.phase,
        "yes" if node.schedulable else "no",
        ",".join(node.runtimes) or NONE,
        f"{used.cpus:g}/{cap.cpus:g}",
        f"{format_memory(used.memory)}/{format_memory(cap.memory)}",
        str(node.tasks),
        node.agent_version or NONE,
        age(node.created_at, now),
    ]


def template_image(cfg: TaskConfig) -> str:
    if cfg.image:
        return cfg.image
    return f"exec:{cfg.args[0]}" if cfg.args else NONE


def strategy(update: UpdateStrategy) -> str:
    """``stop-first,max 2`` (the order and how many tasks are replaced at once)."""
    return f"{update.order},max {update.max_parallel}"


def set_row(view: SetView, now: datetime, *, wide: bool = False) -> list[str]:
    st = view.status
    row = [
        view.meta.name,
        str(view.config.replicas),
        f"{st.available}/{view.config.replicas}",
        str(st.updated),
        str(st.template_revision),
        st.rollout.state,
        age(view.created_at, now),
    ]
    if wide:
        row += [
            str(st.tasks),
            template_image(view.config.template),
            strategy(view.config.update),
            st.rollout.reason or NONE,
        ]
    return row


def volume_row(view: VolumeView, now: datetime, *, wide: bool = False) -> list[str]:
    cfg = view.config
    row = [
        view.meta.name,
        cfg.type,
        cfg.node or ANY_NODE,
        ",".join(view.status.used_by) or NONE,
        age(view.created_at, now),
    ]
    if wide:
        row += [str(len(cfg.files)) if cfg.type == "template" else NONE, pairs(view.meta.labels)]
    return row


def history_rows(view: SetView) -> list[list[str]]:
    """``rollout history``: one row per remembered revision, the current one marked ``*``."""
    current = view.status.template_revision
    return [
        [
            f"{h.revision}{'*' if h.revision == current else ''}",
            h.cause or NONE,
            timestamp(h.at),
        ]
        for h in view.history
    ]


def event_object(subject: str) -> str:
    """``task/web`` for ``voiyd.events.task.web`` (the subject itself if it is not an event)."""
    try:
        kind, name = parse_event_subject(subject)
    except ValueError:
        return subject
    return f"{kind}/{name}"


def event_row(seq: int, subject: str, envelope: Mapping[str, Any]) -> list[str]:
    at = envelope.get("at")
    return [
        str(seq),
        timestamp(at) if isinstance(at, str) else NONE,
        event_object(subject),
        str(envelope.get("type", "?")),
        str(envelope.get("actor", "")) or NONE,
        event_summary(envelope),
    ]


def object_event_row(seq: int, envelope: Mapping[str, Any], now: datetime) -> list[str]:
    """An event in ``describe``: how long ago instead of when."""
    at = envelope.get("at")
    when = age(datetime.fromisoformat(at), now) if isinstance(at, str) else NONE
    return [
        str(seq),
        when,
        str(envelope.get("type", "?")),
        str(envelope.get("actor", "")),
        event_summary(envelope),
    ]


# ---- event summaries --------------------------------------------------------------------------


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _value(value: Any, key: str = "") -> str:
    if isinstance(value, Mapping):
        return _clip(",".join(f"{k}={_value(v, str(k))}" for k, v in value.items()))
    if isinstance(value, list):
        return _clip(",".join(_value(v) for v in value))
    if isinstance(value, float):
        return f"{value:g}"
    if key == "memory" and isinstance(value, int) and not isinstance(value, bool):
        return format_memory(value)
    return _clip(str(value))


def _config_summary(config: Mapping[str, Any]) -> list[str]:
    template = config.get("template")
    if isinstance(template, Mapping):  # a Set's
        return [f"replicas={config.get('replicas', 1)}", *_config_summary(template)]
    if config.get("type") in ("host-local", "template"):  # a volume's
        where = f" node={config['node']}" if config.get("node") else ""
        return [f"type={config['type']}{where}"]
    out = []
    if config.get("image"):
        out.append(f"image={config['image']}")
    elif config.get("args"):
        out.append(f"cmd={_value(config['args'])}")
    if config.get("runtime") not in (None, "docker"):
        out.append(f"runtime={config['runtime']}")
    return out


def event_summary(envelope: Mapping[str, Any]) -> str:
    """The interesting part of an event's ``data`` in one short line (``node=n1 epoch=2``)."""
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        return ""
    parts: list[str] = []
    for key, value in data.items():
        if key == "name" or value in (None, "", [], {}):
            continue
        if key == "config" and isinstance(value, Mapping):
            parts += _config_summary(value)
        else:
            parts.append(f"{key}={_value(value, str(key))}")
    return " ".join(parts)
