"""CORE: what the server appends for agents' reports and for node liveness.

- A join appends ``node.joined`` when the node is new or anything it reports changed, and
  ``node.ready`` is implied by the fold when a not-ready/lost node rejoins.
- A task report is fenced: it must come from the node that holds the task's current placement
  epoch; otherwise it is refused and the agent stops that copy.
- Liveness turns heartbeat silence into ``node.not-ready`` then ``node.lost``, and a heartbeat
  from a not-ready or lost node into ``node.ready``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from voiyd.api.agent import Assignment, NodeJoin, TaskReport
from voiyd.api.views import NodeView, TaskView, VolumeView
from voiyd.events import models as ev
from voiyd.server.decide import Context


@dataclass(frozen=True)
class Refused:
    reason: str


def decide_join(join: NodeJoin, current: NodeView | None, ctx: Context) -> ev.NodeJoined | None:
    data = ev.NodeJoinedData(
        name=join.node,
        labels=join.labels,
        runtimes=sorted(join.runtimes),
        capacity=join.capacity,
        agent_version=join.agent_version,
    )
    if current is not None and current.phase in ("ready", "draining"):
        same = (
            all(current.labels.get(k) == v for k, v in join.labels.items())
            and current.runtimes == data.runtimes
            and current.capacity == data.capacity
            and current.agent_version == data.agent_version
        )
        if same:
            return None
    return ev.NodeJoined(id=ctx.event_id, at=ctx.now, actor=f"node:{join.node}", data=data)


def _placement(report: TaskReport) -> dict[str, object]:
    return {"name": report.task, "node": report.node, "epoch": report.epoch}


def _report_event(report: TaskReport, ctx: Context) -> ev.AnyEvent:
    env = {"id": ctx.event_id, "at": report.at, "actor": f"node:{report.node}"}
    p = _placement(report)
    match report.state:
        case "pulling":
            return ev.TaskPulling(**env, data=ev.PullingData(**p, image=report.image or ""))
        case "starting":
            return ev.TaskStarting(**env, data=ev.PlacementData(**p))
        case "started":
            return ev.TaskStarted(
                **env,
                data=ev.StartedData(
                    **p, container_id=report.container_id or "", ip=report.ip, pid=report.pid
                ),
            )
        case "health":
            return ev.TaskHealthChanged(
                **env, data=ev.HealthData(**p, healthy=bool(report.healthy), message=report.reason)
            )
        case "exited":
            return ev.TaskExited(
                **env,
                data=ev.ExitedData(
                    **p,
                    exit_code=report.exit_code if report.exit_code is not None else -1,
                    reason=report.reason,
                ),
            )
        case "restarted":
            return ev.TaskRestarted(
                **env,
                data=ev.RestartedData(
                    **p, restarts=report.restarts or 1, delay_s=report.delay_s or 0.0
                ),
            )
        case "stopped":
            return ev.TaskStopped(**env, data=ev.PlacementData(**p))
        case "logs":
            return ev.TaskLogsDropped(
                **env, data=ev.LogsDroppedData(**p, dropped=report.dropped or 0)
            )
        case "failed":
            return ev.TaskFailed(
                **env,
                data=ev.FailedData(
                    name=report.task,
                    node=report.node,
                    epoch=report.epoch,
                    reason=report.reason or "failed",
                    exit_code=report.exit_code,
                ),
            )


def _redundant(report: TaskReport, task: TaskView) -> bool:
    """A report that restates what the view already says (agents re-report after reconnects)."""
    s = task.status
    match report.state:
        case "started":
            return s.phase == "running" and s.container_id == report.container_id
        case "stopped":
            return s.phase == "stopped"
        case "exited":
            return s.phase in ("exited", "failed") and s.exit_code == report.exit_code
        case "health":
            return s.healthy == report.healthy
        case "logs":  # a count the status has reached already (re-sent, or overtaken)
            return (report.dropped or 0) <= s.logs_dropped
        case _:
            return False


def decide_report(
    report: TaskReport, task: TaskView | None, ctx: Context
) -> ev.AnyEvent | Refused | None:
    """The event for an agent's task report, None if it changes nothing, or why it is refused."""
    if task is None:
        return Refused(f"task {report.task!r} no longer exists")
    status = task.status
    if status.node != report.node or status.epoch != report.epoch:
        holder = f"{status.node} epoch {status.epoch}" if status.node else "no node"
        return Refused(
            f"placement {report.node} epoch {report.epoch} of task {report.task!r} is stale "
            f"(now {holder})"
        )
    if _redundant(report, task):
        return None
    return _report_event(report, ctx)


@dataclass(frozen=True)
class LivenessRules:
    not_ready_after: timedelta = timedelta(seconds=6)
    lost_after: timedelta = timedelta(seconds=30)


def decide_liveness(
    node: NodeView, last_seen: datetime, now: datetime, rules: LivenessRules, ctx: Context
) -> ev.AnyEvent | None:
    """``node.not-ready`` / ``node.lost`` after silence, ``node.ready`` once it is heard again."""
    silent = now - last_seen
    ref = ev.NodeReasonData(
        name=node.name, reason=f"no heartbeat for {silent.total_seconds():.0f}s"
    )
    env = {"id": ctx.event_id, "at": ctx.now, "actor": ctx.actor}
    if silent >= rules.lost_after and node.phase in ("ready", "not-ready", "draining"):
        return ev.NodeLost(**env, data=ref)
    if silent >= rules.not_ready_after and node.phase in ("ready", "draining"):
        return ev.NodeNotReady(**env, data=ref)
    if silent < rules.not_ready_after and node.phase in ("not-ready", "lost"):
        return ev.NodeReady(**env, data=ev.NodeRef(name=node.name))
    return None


def assignment_for(
    task: TaskView, volumes: Mapping[str, VolumeView | None] | None = None
) -> Assignment | None:
    """What the task's node should hold under ``<node>.<task>``; None when no node should run it.

    ``volumes``: the volumes the task mounts (None: gone). The assignment carries the config of
    each template volume (its files); a host-local volume is found on the node by its name.
    """
    s = task.status
    if s.node is None or s.desired != "running" or s.phase == "failed":
        return None  # failed is final until an operator starts it again
    templates = {
        name: view.config
        for name, view in sorted((volumes or {}).items())
        if view is not None and view.config.type == "template"
    }
    return Assignment(
        task=task.meta.name,
        node=s.node,
        epoch=s.epoch,
        desired=s.desired,
        labels=task.meta.labels,
        config=task.config,
        restarts=s.restarts,
        revision=task.revision,
        updated_at=task.updated_at,
        volumes=templates,
    )
