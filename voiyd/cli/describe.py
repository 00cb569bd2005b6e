"""CORE: ``voiydctl describe``'s text: a task's or node's spec, status and recent events.

Pure: views, events and ``now`` in, lines out. Labels are aligned in one column per section;
an unset value reads ``<none>`` so that every field is always shown in the same place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from voiyd.api.specs import TaskConfig
from voiyd.api.views import Condition, EventView, NodeView, TaskStatus, TaskView
from voiyd.cli import render
from voiyd.cli.render import NONE

Field = tuple[str, str]
_INDENT = "  "


def fields(items: Sequence[Field], indent: str = "") -> list[str]:
    width = max((len(k) for k, _ in items), default=0) + 2
    return [f"{indent}{(k + ':').ljust(width)}{v}".rstrip() for k, v in items]


def _opt(value: object) -> str:
    return NONE if value is None or value == "" else str(value)


def _created(created: datetime, now: datetime) -> str:
    return f"{render.timestamp(created)} ({render.age(created, now)} ago)"


def task_spec(cfg: TaskConfig) -> list[Field]:
    caps = cfg.capabilities
    restart: str = cfg.restart.policy
    if cfg.restart.max_retries is not None:
        restart += f" (max {cfg.restart.max_retries} retries)"
    return [
        ("Runtime", cfg.runtime),
        ("Image", _opt(cfg.image)),
        ("Args", " ".join(cfg.args) or NONE),
        ("Workdir", _opt(cfg.workdir)),
        ("Env", render.pairs(cfg.env)),
        ("Ports", ", ".join(str(p) for p in cfg.ports) or NONE),
        (
            "Mounts",
            ", ".join(_mount(m.source, m.destination, m.read_only) for m in cfg.mounts) or NONE,
        ),
        ("Node selector", cfg.node_selector or NONE),
        ("CPUs", render.cpus(cfg.resources.cpus)),
        ("Memory", render.memory(cfg.resources.memory)),
        ("Restart", restart),
        ("Health", f"{cfg.health.type} every {cfg.health.interval_s:g}s" if cfg.health else NONE),
        ("User", _opt(cfg.user)),
        ("Privileged", "yes" if cfg.privileged else "no"),
        ("Capabilities", f"add={','.join(caps.add) or '-'} drop={','.join(caps.drop) or '-'}"),
    ]


def _mount(source: str, dest: str, read_only: bool) -> str:
    return f"{source}:{dest}{':ro' if read_only else ''}"


def task_status(st: TaskStatus) -> list[Field]:
    return [
        ("Phase", st.phase),
        ("Desired", st.desired),
        ("Node", _opt(st.node)),
        ("Epoch", str(st.epoch)),
        ("Container", _opt(st.container_id)),
        ("IP", _opt(st.ip)),
        ("PID", _opt(st.pid)),
        ("Exit code", _opt(st.exit_code)),
        ("Restarts", str(st.restarts)),
        ("Healthy", NONE if st.healthy is None else ("yes" if st.healthy else "no")),
        ("Logs dropped", str(st.logs_dropped)),
        ("Reason", _opt(st.reason)),
    ]


def conditions(items: Sequence[Condition], now: datetime) -> list[str]:
    if not items:
        return [f"{_INDENT}{NONE}"]
    rows = [
        [c.type, "true" if c.status else "false", c.reason or NONE, render.age(c.at, now)]
        for c in items
    ]
    table = render.format_table(("TYPE", "STATUS", "REASON", "SINCE"), rows)
    return [_INDENT + line for line in table]


def events(items: Sequence[EventView], now: datetime) -> list[str]:
    if not items:
        return [f"{_INDENT}{NONE}"]
    rows = [render.object_event_row(e.seq, e.event, now) for e in items]
    return [_INDENT + line for line in render.format_table(render.OBJECT_EVENT_HEADERS, rows)]


def describe_task(task: TaskView, recent: Sequence[EventView], now: datetime) -> str:
    head = fields(
        [
            ("Name", task.meta.name),
            ("Labels", render.pairs(task.meta.labels)),
            ("Revision", str(task.revision)),
            ("Generation", str(task.generation)),
            ("Created", _created(task.created_at, now)),
            ("Updated", _created(task.updated_at, now)),
        ]
    )
    lines = [*head, "Spec:", *fields(task_spec(task.config), _INDENT)]
    lines += ["Status:", *fields(task_status(task.status), _INDENT)]
    lines += ["Conditions:", *conditions(task.status.conditions, now)]
    lines += ["Events:", *events(recent, now)]
    return "\n".join(lines)


def describe_node(node: NodeView, recent: Sequence[EventView], now: datetime) -> str:
    cap, used = node.capacity, node.allocated
    head = fields(
        [
            ("Name", node.name),
            ("Labels", render.pairs(node.labels)),
            ("Phase", node.phase),
            ("Schedulable", "yes" if node.schedulable else "no (cordoned)"),
            ("Runtimes", ", ".join(node.runtimes) or NONE),
            ("Agent version", node.agent_version or NONE),
            ("CPUs", f"{used.cpus:g} allocated of {cap.cpus:g}"),
            ("Memory", f"{render.memory(used.memory)} allocated of {render.memory(cap.memory)}"),
            ("Tasks", str(node.tasks)),
            ("Revision", str(node.revision)),
            ("Joined", _created(node.created_at, now)),
            ("Updated", _created(node.updated_at, now)),
        ]
    )
    return "\n".join([*head, "Events:", *events(recent, now)])
