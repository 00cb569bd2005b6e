"""CORE: ``voiydctl describe``'s text: a task's, Set's, volume's or node's spec, status, events.

Pure: views, events and ``now`` in, lines out. Labels are aligned in one column per section;
an unset value reads ``<none>`` so that every field is always shown in the same place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from voiyd.api import members
from voiyd.api.specs import TaskConfig, UpdateStrategy
from voiyd.api.views import (
    Condition,
    EventView,
    NodeView,
    RolloutStatus,
    SetView,
    TaskStatus,
    TaskView,
    VolumeView,
)
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


def _schedulable(node: NodeView) -> str:
    if node.schedulable:
        return "yes"
    if node.draining or node.phase == "draining":
        deadline = node.drain_deadline
        return (
            f"no (draining, deadline {render.timestamp(deadline)})" if deadline else "no (draining)"
        )
    return "no (cordoned)"


def describe_node(node: NodeView, recent: Sequence[EventView], now: datetime) -> str:
    cap, used = node.capacity, node.allocated
    head = fields(
        [
            ("Name", node.name),
            ("Labels", render.pairs(node.labels)),
            ("Phase", node.phase),
            ("Schedulable", _schedulable(node)),
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


def _strategy(update: UpdateStrategy) -> list[Field]:
    return [
        ("Order", update.order),
        ("Max parallel", str(update.max_parallel)),
        ("Min healthy", f"{update.min_healthy_s:g}s"),
        ("Deadline", f"{update.deadline_s:g}s"),
        ("Auto rollback", "yes" if update.auto_rollback else "no"),
    ]


def _rollout(rollout: RolloutStatus, now: datetime) -> list[Field]:
    started, finished = rollout.started_at, rollout.finished_at
    return [
        ("State", rollout.state),
        ("To revision", str(rollout.revision)),
        ("Reason", _opt(rollout.reason)),
        ("Started", _created(started, now) if started else NONE),
        ("Finished", _created(finished, now) if finished else NONE),
    ]


def _history(view: SetView) -> list[str]:
    if not view.history:
        return [f"{_INDENT}{NONE}"]
    table = render.format_table(render.HISTORY_HEADERS, render.history_rows(view))
    return [_INDENT + line for line in table]


MEMBER_HEADERS = ("NAME", "PHASE", "NODE", "REVISION", "AVAILABLE", "REASON")


def member_rows(view: SetView, tasks: Sequence[TaskView], now: datetime) -> list[list[str]]:
    min_healthy = view.config.update.min_healthy_s
    return [
        [
            t.meta.name,
            t.status.phase,
            t.status.node or NONE,
            str(members.member_revision(t) or NONE),
            "yes" if members.available(t, min_healthy, now) else "no",
            t.status.reason or NONE,
        ]
        for t in members.members(tasks, view.meta.name)
    ]


def _members(view: SetView, tasks: Sequence[TaskView], now: datetime) -> list[str]:
    rows = member_rows(view, tasks, now)
    if not rows:
        return [f"{_INDENT}{NONE}"]
    return [_INDENT + line for line in render.format_table(MEMBER_HEADERS, rows)]


def describe_set(
    view: SetView, tasks: Sequence[TaskView], recent: Sequence[EventView], now: datetime
) -> str:
    """A Set with its template, strategy, rollout, history and members (``tasks``: any tasks)."""
    st = view.status
    head = fields(
        [
            ("Name", view.meta.name),
            ("Labels", render.pairs(view.meta.labels)),
            ("Replicas", f"{view.config.replicas} desired, {st.tasks} exist"),
            ("Up to date", f"{st.updated} (template revision {st.template_revision})"),
            ("Available", str(st.available)),
            ("Revision", str(view.revision)),
            ("Created", _created(view.created_at, now)),
            ("Updated", _created(view.updated_at, now)),
        ]
    )
    lines = [*head, "Strategy:", *fields(_strategy(view.config.update), _INDENT)]
    lines += ["Template:", *fields(task_spec(view.config.template), _INDENT)]
    lines += ["Rollout:", *fields(_rollout(st.rollout, now), _INDENT)]
    lines += ["History:", *_history(view)]
    lines += ["Members:", *_members(view, tasks, now)]
    lines += ["Events:", *events(recent, now)]
    return "\n".join(lines)


def describe_volume(view: VolumeView, recent: Sequence[EventView], now: datetime) -> str:
    cfg = view.config
    head = [
        ("Name", view.meta.name),
        ("Labels", render.pairs(view.meta.labels)),
        ("Type", cfg.type),
        ("Node", cfg.node or render.ANY_NODE),
        ("Used by", ", ".join(view.status.used_by) or NONE),
        ("Revision", str(view.revision)),
        ("Created", _created(view.created_at, now)),
        ("Updated", _created(view.updated_at, now)),
    ]
    lines = fields(head)
    if cfg.type == "template":
        sizes = [(path, f"{len(content.encode())} bytes") for path, content in cfg.files.items()]
        lines += ["Files:", *fields(sizes, _INDENT)]
    return "\n".join([*lines, "Events:", *events(recent, now)])
