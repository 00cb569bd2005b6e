"""CORE: events in, state out. How each event changes a Task or a Node view.

The projection, the server's decisions and the scheduler's in-memory view all fold with these
functions, so there is one definition of what an event means. ``seq`` is the event's stream
sequence (the aggregate's new revision). Events of a stale placement epoch change nothing.
"""

from __future__ import annotations

from typing import assert_never

from voiyd.api.specs import SET_RESTART_LABEL, Meta, SetConfig, SetMeta, TaskConfig
from voiyd.api.views import (
    HISTORY_MAX,
    Condition,
    NodeView,
    RolloutStatus,
    SetRevision,
    SetStatus,
    SetView,
    TaskStatus,
    TaskView,
    VolumeView,
)
from voiyd.events import models as ev

TaskEvent = (
    ev.TaskCreated
    | ev.TaskUpdated
    | ev.TaskDeleted
    | ev.TaskStartRequested
    | ev.TaskStopRequested
    | ev.TaskScheduled
    | ev.TaskUnschedulable
    | ev.TaskEvicted
    | ev.TaskPulling
    | ev.TaskStarting
    | ev.TaskStarted
    | ev.TaskHealthChanged
    | ev.TaskExited
    | ev.TaskRestarted
    | ev.TaskStopped
    | ev.TaskFailed
    | ev.TaskLogsDropped
)
NodeEvent = (
    ev.NodeJoined
    | ev.NodeReady
    | ev.NodeNotReady
    | ev.NodeLost
    | ev.NodeCordoned
    | ev.NodeUncordoned
    | ev.NodeDraining
    | ev.NodeLabeled
    | ev.NodeDeleted
)
SetEvent = (
    ev.SetCreated
    | ev.SetUpdated
    | ev.SetScaled
    | ev.SetRestarted
    | ev.SetRolloutCompleted
    | ev.SetRolloutFailed
    | ev.SetDeleted
)
VolumeEvent = ev.VolumeCreated | ev.VolumeUpdated | ev.VolumeDeleted
PlacementEvent = (
    ev.TaskPulling
    | ev.TaskStarting
    | ev.TaskStarted
    | ev.TaskHealthChanged
    | ev.TaskExited
    | ev.TaskRestarted
    | ev.TaskStopped
)
_SETTLED = ("stopped", "exited", "failed")
AUTO_LABEL_PREFIX = "voiyd.io/"
"""Labels an agent sets on its node by itself; a rejoin refreshes them."""


def _condition(
    conditions: list[Condition], type_: str, status: bool, reason: str, event: ev.Event
) -> list[Condition]:
    """Conditions with ``type_`` set; the transition time moves only when the status flips."""
    out = [c for c in conditions if c.type != type_]
    previous = next((c for c in conditions if c.type == type_), None)
    at = previous.at if previous is not None and previous.status == status else event.at
    out.append(Condition(type=type_, status=status, reason=reason, at=at))
    return sorted(out, key=lambda c: c.type)


def _placed_conditions(conditions: list[Condition], event: ev.TaskScheduled) -> list[Condition]:
    """Scheduled; a new placement is not running yet, so ``Running`` since the old one ends.

    (Set availability counts ``min_healthy_s`` from the ``Running`` condition's time.)"""
    out = _condition(conditions, "Scheduled", True, "Scheduled", event)
    if any(c.type == "Running" and c.status for c in out):
        out = _condition(out, "Running", False, "Rescheduled", event)
    return out


def _with_status(task: TaskView, event: ev.Event, seq: int, **changes: object) -> TaskView:
    status = task.status.model_copy(update=changes)
    return task.model_copy(update={"status": status, "revision": seq, "updated_at": event.at})


def _created(event: ev.TaskCreated, seq: int) -> TaskView:
    data = event.data
    # Everything here was validated with the event; constructing skips validating it again.
    return TaskView.model_construct(
        meta=Meta.model_construct(name=data.name, labels=data.labels),
        config=data.config,
        # Epochs start at the creation's sequence: a task deleted and created again never reuses
        # an epoch of its earlier life (its old reports, logs and containers stay fenced off).
        status=TaskStatus(epoch=seq),
        revision=seq,
        generation=1,
        created_at=event.at,
        updated_at=event.at,
    )


def _updated(task: TaskView, event: ev.TaskUpdated, seq: int) -> TaskView:
    data = event.data
    # A Set member is replaced by ``rollout restart`` even though its config is the same.
    config_changed = data.config != task.config or data.labels.get(
        SET_RESTART_LABEL
    ) != task.meta.labels.get(SET_RESTART_LABEL)
    status = task.status
    if config_changed and status.node is not None:
        # A new config is a new placement: the agent stops the old copy, the scheduler re-places.
        status = status.model_copy(
            update={
                "phase": "pending" if status.desired == "running" else "stopped",
                "node": None,
                "container_id": None,
                "ip": None,
                "pid": None,
                "reason": "config changed",
            }
        )
    return task.model_copy(
        update={
            "meta": Meta(name=data.name, labels=data.labels),
            "config": data.config,
            "status": status,
            "generation": task.generation + (1 if config_changed else 0),
            "revision": seq,
            "updated_at": event.at,
        }
    )


def _start_requested(task: TaskView, event: ev.TaskStartRequested, seq: int) -> TaskView:
    if task.status.phase in _SETTLED or task.status.phase == "stopping":
        return _with_status(
            task,
            event,
            seq,
            desired="running",
            phase="pending",
            node=None,
            exit_code=None,
            restarts=0,
            reason="",
            pid=None,
            container_id=None,
            ip=None,
            healthy=None,
        )
    return _with_status(task, event, seq, desired="running")


def _stop_requested(task: TaskView, event: ev.TaskStopRequested, seq: int) -> TaskView:
    if task.status.node is None:
        return _with_status(task, event, seq, desired="stopped", phase="stopped", reason="")
    if task.status.phase in _SETTLED:
        return _with_status(task, event, seq, desired="stopped")
    return _with_status(task, event, seq, desired="stopped", phase="stopping")


def _placement(task: TaskView, event: PlacementEvent, seq: int) -> TaskView:
    """Reports from the agent that holds the current placement."""
    d = event.data
    if d.epoch != task.status.epoch or d.node != task.status.node:
        return task.model_copy(update={"revision": seq})
    conds = task.status.conditions
    match event:
        case ev.TaskPulling():
            return _with_status(
                task, event, seq, phase="pulling", reason=f"pulling {event.data.image}"
            )
        case ev.TaskStarting():
            return _with_status(task, event, seq, phase="starting", reason="")
        case ev.TaskStarted():
            s = event.data
            return _with_status(
                task,
                event,
                seq,
                phase="running",
                container_id=s.container_id,
                ip=s.ip,
                pid=s.pid,
                exit_code=None,
                healthy=None,
                reason="",
                conditions=_condition(conds, "Running", True, "Started", event),
            )
        case ev.TaskHealthChanged():
            h = event.data
            reason = "Healthy" if h.healthy else "Unhealthy"
            return _with_status(
                task,
                event,
                seq,
                healthy=h.healthy,
                reason="" if h.healthy else f"unhealthy: {h.message}",
                conditions=_condition(conds, "Healthy", h.healthy, reason, event),
            )
        case ev.TaskExited():
            x = event.data
            return _with_status(
                task,
                event,
                seq,
                phase="exited",
                exit_code=x.exit_code,
                pid=None,
                reason=x.reason or f"exited with code {x.exit_code}",
                conditions=_condition(conds, "Running", False, "Exited", event),
            )
        case ev.TaskRestarted():
            r = event.data
            return _with_status(
                task,
                event,
                seq,
                phase="starting",
                restarts=r.restarts,
                reason=f"restart {r.restarts} in {r.delay_s:g}s",
            )
        case ev.TaskStopped():
            return _with_status(
                task,
                event,
                seq,
                phase="stopped",
                pid=None,
                reason="",
                conditions=_condition(conds, "Running", False, "Stopped", event),
            )
        case _:
            assert_never(event)


def _logs_dropped(task: TaskView, event: ev.TaskLogsDropped, seq: int) -> TaskView:
    """The agent's running total for the current placement; a stale placement changes nothing."""
    d = event.data
    if d.epoch != task.status.epoch or d.node != task.status.node:
        return task.model_copy(update={"revision": seq})
    return _with_status(task, event, seq, logs_dropped=max(task.status.logs_dropped, d.dropped))


def evolve_task(  # noqa: C901 - one case per event type, so mypy checks that none is missing
    task: TaskView | None, event: TaskEvent, seq: int
) -> TaskView | None:
    """The task after ``event``; None when it does not exist (not yet, or deleted)."""
    if isinstance(event, ev.TaskCreated):
        return _created(event, seq)
    if task is None:
        return None  # an event for a task that is gone: nothing to change
    match event:
        case ev.TaskUpdated():
            return _updated(task, event, seq)
        case ev.TaskDeleted():
            return None
        case ev.TaskStartRequested():
            return _start_requested(task, event, seq)
        case ev.TaskStopRequested():
            return _stop_requested(task, event, seq)
        case ev.TaskScheduled():
            p = event.data
            return _with_status(
                task,
                event,
                seq,
                phase="scheduled",
                node=p.node,
                epoch=p.epoch,
                reason="",
                container_id=None,
                ip=None,
                pid=None,
                exit_code=None,
                healthy=None,
                logs_dropped=0,
                conditions=_placed_conditions(task.status.conditions, event),
            )
        case ev.TaskUnschedulable():
            return _with_status(
                task,
                event,
                seq,
                phase="unschedulable",
                node=None,
                reason=event.data.reason,
                conditions=_condition(
                    task.status.conditions, "Scheduled", False, "Unschedulable", event
                ),
            )
        case ev.TaskEvicted():
            if event.data.epoch != task.status.epoch:
                return task.model_copy(update={"revision": seq})
            phase = "pending" if task.status.desired == "running" else "stopped"
            return _with_status(
                task,
                event,
                seq,
                phase=phase,
                node=None,
                container_id=None,
                ip=None,
                pid=None,
                reason=event.data.reason,
            )
        case ev.TaskFailed():
            f = event.data
            if f.epoch and f.epoch != task.status.epoch:
                return task.model_copy(update={"revision": seq})
            return _with_status(
                task, event, seq, phase="failed", reason=f.reason, exit_code=f.exit_code, pid=None
            )
        case ev.TaskLogsDropped():
            return _logs_dropped(task, event, seq)
        case (
            ev.TaskPulling()
            | ev.TaskStarting()
            | ev.TaskStarted()
            | ev.TaskHealthChanged()
            | ev.TaskExited()
            | ev.TaskRestarted()
            | ev.TaskStopped()
        ):
            return _placement(task, event, seq)
        case ev.TaskCreated():
            raise AssertionError("handled above")
        case _:
            assert_never(event)


def _node_joined(node: NodeView | None, event: ev.NodeJoined, seq: int) -> NodeView:
    d = event.data
    if node is None:
        return NodeView(
            name=d.name,
            labels=d.labels,
            runtimes=d.runtimes,
            capacity=d.capacity,
            agent_version=d.agent_version,
            revision=seq,
            created_at=event.at,
            updated_at=event.at,
        )
    # A rejoin keeps labels an operator set (upstream reset them from a file on every join);
    # the agent's own ``voiyd.io/`` labels (version, runtimes...) take the agent's new values.
    labels = {**d.labels, **node.labels}
    labels.update({k: v for k, v in d.labels.items() if k.startswith(AUTO_LABEL_PREFIX)})
    return node.model_copy(
        update={
            "labels": dict(sorted(labels.items())),
            "runtimes": d.runtimes,
            "capacity": d.capacity,
            "agent_version": d.agent_version,
            "phase": "draining" if node.draining else "ready",
            "revision": seq,
            "updated_at": event.at,
        }
    )


def evolve_node(  # noqa: C901 - one case per event type, so mypy checks that none is missing
    node: NodeView | None, event: NodeEvent, seq: int
) -> NodeView | None:
    """The node after ``event``; None when it does not exist."""
    if isinstance(event, ev.NodeJoined):
        return _node_joined(node, event, seq)
    if node is None:
        return None
    base: dict[str, object] = {"revision": seq, "updated_at": event.at}
    match event:
        case ev.NodeReady():
            phase = "draining" if node.draining else "ready"
            return node.model_copy(update={**base, "phase": phase})
        case ev.NodeNotReady():
            return node.model_copy(update={**base, "phase": "not-ready"})
        case ev.NodeLost():
            return node.model_copy(update={**base, "phase": "lost"})
        case ev.NodeCordoned():
            return node.model_copy(update={**base, "schedulable": False})
        case ev.NodeUncordoned():
            phase = "ready" if node.phase == "draining" else node.phase
            return node.model_copy(
                update={
                    **base,
                    "schedulable": True,
                    "phase": phase,
                    "draining": False,
                    "drain_deadline": None,
                }
            )
        case ev.NodeDraining():
            return node.model_copy(
                update={
                    **base,
                    "schedulable": False,
                    "phase": "draining",
                    "draining": True,
                    "drain_deadline": event.data.deadline_at,
                }
            )
        case ev.NodeLabeled():
            return node.model_copy(update={**base, "labels": event.data.labels})
        case ev.NodeDeleted():
            return None
        case ev.NodeJoined():
            raise AssertionError("handled above")
        case _:
            assert_never(event)


def _history(
    view: SetView | None, template: TaskConfig, cause: str, event: ev.Event, seq: int, revision: int
) -> list[SetRevision]:
    entry = SetRevision.model_construct(
        revision=revision, template=template, cause=cause, at=event.at, seq=seq
    )
    old = view.history if view is not None else []
    return [*old, entry][-HISTORY_MAX:]


def _progressing(revision: int, event: ev.Event) -> RolloutStatus:
    return RolloutStatus(state="progressing", revision=revision, started_at=event.at)


def _set_created(event: ev.SetCreated, seq: int) -> SetView:
    d = event.data
    return SetView(
        meta=SetMeta.model_construct(name=d.name, labels=d.labels),
        config=d.config,
        status=SetStatus(template_revision=1, rollout=_progressing(1, event)),
        history=_history(None, d.config.template, d.cause or "created", event, seq, 1),
        revision=seq,
        created_at=event.at,
        updated_at=event.at,
    )


def _new_revision(view: SetView, event: ev.Event, seq: int, cause: str, **spec: object) -> SetView:
    """``view`` with a new template revision (the template in ``spec`` or the current one)."""
    config = spec.get("config", view.config)
    assert isinstance(config, SetConfig)
    revision = view.status.template_revision + 1
    template = config.template
    status = view.status.model_copy(
        update={"template_revision": revision, "rollout": _progressing(revision, event)}
    )
    return view.model_copy(
        update={
            **spec,
            "status": status,
            "history": _history(view, template, cause, event, seq, revision),
            "revision": seq,
            "updated_at": event.at,
        }
    )


def _rollout_end(view: SetView, event: ev.Event, seq: int, revision: int, **end: object) -> SetView:
    base: dict[str, object] = {"revision": seq, "updated_at": event.at}
    if revision != view.status.template_revision or view.status.rollout.state != "progressing":
        return view.model_copy(update=base)  # about a rollout that is no longer current
    rollout = view.status.rollout.model_copy(update={**end, "finished_at": event.at})
    status = view.status.model_copy(update={"rollout": rollout})
    return view.model_copy(update={**base, "status": status})


def evolve_set(  # noqa: C901 - one case per event type, so mypy checks that none is missing
    view: SetView | None, event: SetEvent, seq: int
) -> SetView | None:
    """The Set after ``event``; None when it does not exist."""
    if isinstance(event, ev.SetCreated):
        return _set_created(event, seq)
    if view is None:
        return None
    base: dict[str, object] = {"revision": seq, "updated_at": event.at}
    match event:
        case ev.SetUpdated():
            d = event.data
            meta = SetMeta.model_construct(name=d.name, labels=d.labels)
            if d.config.template != view.config.template:
                return _new_revision(
                    view, event, seq, d.cause or "updated", config=d.config, meta=meta
                )
            return view.model_copy(update={**base, "config": d.config, "meta": meta})
        case ev.SetScaled():
            config = view.config.model_copy(update={"replicas": event.data.replicas})
            return view.model_copy(update={**base, "config": config})
        case ev.SetRestarted():
            restarted = _new_revision(view, event, seq, "restart")
            status = restarted.status.model_copy(
                update={"restart_revision": restarted.status.template_revision}
            )
            return restarted.model_copy(update={"status": status})
        case ev.SetRolloutCompleted():
            return _rollout_end(view, event, seq, event.data.revision, state="complete")
        case ev.SetRolloutFailed():
            d2 = event.data
            return _rollout_end(view, event, seq, d2.revision, state="failed", reason=d2.reason)
        case ev.SetDeleted():
            return None
        case ev.SetCreated():
            raise AssertionError("handled above")
        case _:
            assert_never(event)


def evolve_volume(view: VolumeView | None, event: VolumeEvent, seq: int) -> VolumeView | None:
    """The volume after ``event``; None when it does not exist."""
    match event:
        case ev.VolumeCreated():
            d = event.data
            return VolumeView(
                meta=Meta.model_construct(name=d.name, labels=d.labels),
                config=d.config,
                revision=seq,
                created_at=event.at,
                updated_at=event.at,
            )
        case ev.VolumeUpdated():
            if view is None:
                return None
            d = event.data
            return view.model_copy(
                update={
                    "meta": Meta.model_construct(name=d.name, labels=d.labels),
                    "config": d.config,
                    "revision": seq,
                    "updated_at": event.at,
                }
            )
        case ev.VolumeDeleted():
            return None
        case _:
            assert_never(event)


def fold_set(view: SetView | None, event: ev.AnyEvent, seq: int) -> SetView | None:
    if not isinstance(event, SetEvent):
        raise TypeError(f"{event.type} is not a set event")
    return evolve_set(view, event, seq)


def fold_volume(view: VolumeView | None, event: ev.AnyEvent, seq: int) -> VolumeView | None:
    if not isinstance(event, VolumeEvent):
        raise TypeError(f"{event.type} is not a volume event")
    return evolve_volume(view, event, seq)


def fold_task(task: TaskView | None, event: ev.AnyEvent, seq: int) -> TaskView | None:
    """``evolve_task`` for an event known to be about a task (anything else is a bug)."""
    if not isinstance(event, TaskEvent):
        raise TypeError(f"{event.type} is not a task event")
    return evolve_task(task, event, seq)


def fold_node(node: NodeView | None, event: ev.AnyEvent, seq: int) -> NodeView | None:
    """``evolve_node`` for an event known to be about a node (anything else is a bug)."""
    if not isinstance(event, NodeEvent):
        raise TypeError(f"{event.type} is not a node event")
    return evolve_node(node, event, seq)
