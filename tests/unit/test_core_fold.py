"""Events in, state out (voiyd.events.fold): what each task and node event does to its view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voiyd.api.specs import SetConfig, TaskConfig, VolumeConfig
from voiyd.api.views import HISTORY_MAX, NodeCapacity, NodeView, SetView, TaskView
from voiyd.events import models as ev
from voiyd.events.fold import (
    NodeEvent,
    SetEvent,
    TaskEvent,
    evolve_node,
    evolve_set,
    evolve_task,
    evolve_volume,
    fold_node,
    fold_set,
    fold_task,
    fold_volume,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = TaskConfig.model_validate({"image": "nginx:alpine"})


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def env(minutes: int = 1) -> dict[str, Any]:
    """Envelope fields for an event ``minutes`` after T0."""
    return {"id": f"e{minutes}", "at": at(minutes), "actor": "t"}


def created(labels: dict[str, str] | None = None) -> ev.TaskCreated:
    data = ev.TaskSpecData(name="web", labels=labels or {"app": "web"}, config=CONFIG)
    return ev.TaskCreated(**env(0), data=data)


def place(node: str = "n1", epoch: int = 1) -> dict[str, Any]:
    return {"name": "web", "node": node, "epoch": epoch}


def fold(*events: TaskEvent, task: TaskView | None = None, start_seq: int = 1) -> TaskView:
    for seq, event in enumerate(events, start=start_seq):
        task = evolve_task(task, event, seq)
    assert task is not None
    return task


def running(epoch: int = 1) -> TaskView:
    """A task placed on n1 at ``epoch`` and running there (revision 3)."""
    return fold(
        created(),
        ev.TaskScheduled(**env(1), data=ev.PlacementData(**place(epoch=epoch))),
        ev.TaskStarted(**env(2), data=ev.StartedData(**place(epoch=epoch), container_id="c1")),
    )


# ---- created, updated, deleted ----------------------------------------------------------------


def test_created_task_is_pending_at_generation_1() -> None:
    task = fold(created())
    assert (task.status.phase, task.status.desired, task.status.node) == (
        "pending",
        "running",
        None,
    )
    assert (task.revision, task.generation) == (1, 1)
    assert task.created_at == task.updated_at == T0
    assert task.meta.labels == {"app": "web"}


def test_created_again_after_delete_starts_over() -> None:
    gone = evolve_task(running(), ev.TaskDeleted(**env(3), data=ev.TaskRef(name="web")), 4)
    assert gone is None
    again = fold(created(), task=gone, start_seq=5)
    assert (again.revision, again.generation, again.status.phase) == (5, 1, "pending")


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(ev.TaskDeleted(**env(), data=ev.TaskRef(name="web")), id="deleted"),
        pytest.param(ev.TaskStartRequested(**env(), data=ev.TaskRef(name="web")), id="start"),
        pytest.param(ev.TaskStopRequested(**env(), data=ev.TaskRef(name="web")), id="stop"),
        pytest.param(ev.TaskScheduled(**env(), data=ev.PlacementData(**place())), id="sched"),
        pytest.param(
            ev.TaskUpdated(**env(), data=ev.TaskSpecData(name="web", config=CONFIG)),
            id="updated",
        ),
        pytest.param(
            ev.TaskStarted(**env(), data=ev.StartedData(**place(), container_id="c")),
            id="started",
        ),
        pytest.param(
            ev.TaskFailed(**env(), data=ev.FailedData(name="web", reason="x")), id="failed"
        ),
    ],
)
def test_event_for_a_task_that_does_not_exist_changes_nothing(event: TaskEvent) -> None:
    assert evolve_task(None, event, 9) is None


def test_updated_labels_only_keep_the_status_and_generation() -> None:
    task = running()
    data = ev.TaskSpecData(name="web", labels={"app": "web", "tier": "a"}, config=CONFIG)
    after = fold(ev.TaskUpdated(**env(3), data=data), task=task, start_seq=4)
    assert after.meta.labels == {"app": "web", "tier": "a"}
    assert after.status == task.status
    assert (after.generation, after.revision, after.updated_at) == (1, 4, at(3))


@pytest.mark.parametrize(
    ("desired", "phase"),
    [pytest.param("running", "pending", id="wanted-running"), pytest.param("stopped", "stopped")],
)
def test_updated_config_of_a_placed_task_unplaces_it(desired: str, phase: str) -> None:
    task = running()
    task = task.model_copy(update={"status": task.status.model_copy(update={"desired": desired})})
    new = TaskConfig.model_validate({"image": "nginx:1.27"})
    after = fold(
        ev.TaskUpdated(**env(3), data=ev.TaskSpecData(name="web", config=new)),
        task=task,
        start_seq=4,
    )
    status = after.status
    assert (status.phase, status.node, status.container_id) == (phase, None, None)
    assert status.reason == "config changed"
    assert (after.generation, after.config) == (2, new)


def test_updated_config_of_an_unplaced_task_bumps_only_the_generation() -> None:
    task = fold(created())
    new = TaskConfig.model_validate({"image": "nginx:1.27"})
    after = fold(
        ev.TaskUpdated(**env(3), data=ev.TaskSpecData(name="web", config=new)),
        task=task,
        start_seq=2,
    )
    assert (after.generation, after.status) == (2, task.status)


# ---- start and stop requests ------------------------------------------------------------------


def test_stop_requested_of_an_unplaced_task_stops_it_at_once() -> None:
    after = fold(ev.TaskStopRequested(**env(1), data=ev.TaskRef(name="web")), task=fold(created()))
    assert (after.status.phase, after.status.desired) == ("stopped", "stopped")


def test_stop_requested_of_a_running_task_is_stopping_until_the_agent_reports() -> None:
    after = fold(
        ev.TaskStopRequested(**env(3), data=ev.TaskRef(name="web")), task=running(), start_seq=4
    )
    assert (after.status.phase, after.status.desired, after.status.node) == (
        "stopping",
        "stopped",
        "n1",
    )


def test_stop_requested_of_an_exited_task_keeps_the_exit() -> None:
    exited = fold(
        ev.TaskExited(**env(3), data=ev.ExitedData(**place(), exit_code=3)),
        task=running(),
        start_seq=4,
    )
    after = fold(ev.TaskStopRequested(**env(4), data=ev.TaskRef(name="web")), task=exited)
    assert (after.status.phase, after.status.desired, after.status.exit_code) == (
        "exited",
        "stopped",
        3,
    )


@pytest.mark.parametrize(
    "settle",
    [
        pytest.param(
            ev.TaskExited(**env(3), data=ev.ExitedData(**place(), exit_code=1)), id="exited"
        ),
        pytest.param(ev.TaskStopped(**env(3), data=ev.PlacementData(**place())), id="stopped"),
        pytest.param(
            ev.TaskFailed(**env(3), data=ev.FailedData(**place(), reason="oom")), id="failed"
        ),
    ],
)
def test_start_requested_of_a_settled_task_makes_it_pending_afresh(settle: TaskEvent) -> None:
    settled = fold(settle, task=running(), start_seq=4)
    after = fold(ev.TaskStartRequested(**env(4), data=ev.TaskRef(name="web")), task=settled)
    s = after.status
    assert (s.phase, s.desired, s.node, s.exit_code, s.restarts, s.pid) == (
        "pending",
        "running",
        None,
        None,
        0,
        None,
    )


def test_start_requested_of_a_running_task_only_sets_the_desire() -> None:
    task = running()
    after = fold(ev.TaskStartRequested(**env(3), data=ev.TaskRef(name="web")), task=task)
    assert after.status == task.status


# ---- scheduling -------------------------------------------------------------------------------


def test_scheduled_places_the_task_with_its_epoch() -> None:
    after = fold(
        created(), ev.TaskScheduled(**env(1), data=ev.PlacementData(**place("n2", epoch=4)))
    )
    s = after.status
    assert (s.phase, s.node, s.epoch) == ("scheduled", "n2", 4)
    assert [(c.type, c.status, c.at) for c in s.conditions] == [("Scheduled", True, at(1))]


def test_unschedulable_keeps_the_reason() -> None:
    after = fold(
        created(),
        ev.TaskUnschedulable(**env(1), data=ev.UnschedulableData(name="web", reason="no port")),
    )
    s = after.status
    assert (s.phase, s.node, s.reason) == ("unschedulable", None, "no port")
    assert [(c.type, c.status) for c in s.conditions] == [("Scheduled", False)]


@pytest.mark.parametrize(
    ("desired", "phase"),
    [pytest.param("running", "pending", id="wanted-running"), pytest.param("stopped", "stopped")],
)
def test_evicted_current_placement_unplaces_the_task(desired: str, phase: str) -> None:
    task = running()
    task = task.model_copy(update={"status": task.status.model_copy(update={"desired": desired})})
    after = fold(
        ev.TaskEvicted(**env(3), data=ev.EvictedData(**place(), reason="node lost")),
        task=task,
        start_seq=4,
    )
    s = after.status
    assert (s.phase, s.node, s.container_id, s.reason) == (phase, None, None, "node lost")


# ---- agent reports ----------------------------------------------------------------------------


def test_pulling_then_starting_then_started_then_exited() -> None:
    task = fold(created(), ev.TaskScheduled(**env(1), data=ev.PlacementData(**place())))
    pulling = fold(
        ev.TaskPulling(**env(2), data=ev.PullingData(**place(), image="nginx")),
        task=task,
        start_seq=3,
    )
    assert (pulling.status.phase, pulling.status.reason) == ("pulling", "pulling nginx")
    starting = fold(
        ev.TaskStarting(**env(3), data=ev.PlacementData(**place())), task=pulling, start_seq=4
    )
    assert (starting.status.phase, starting.status.reason) == ("starting", "")
    started = fold(
        ev.TaskStarted(
            **env(4), data=ev.StartedData(**place(), container_id="c9", ip="10.0.0.2", pid=42)
        ),
        task=starting,
        start_seq=5,
    )
    s = started.status
    assert (s.phase, s.container_id, s.ip, s.pid) == ("running", "c9", "10.0.0.2", 42)
    exited = fold(
        ev.TaskExited(**env(5), data=ev.ExitedData(**place(), exit_code=3)),
        task=started,
        start_seq=6,
    )
    s = exited.status
    assert (s.phase, s.exit_code, s.pid, s.reason) == ("exited", 3, None, "exited with code 3")
    assert {c.type: (c.status, c.at) for c in s.conditions}["Running"] == (False, at(5))
    assert exited.revision == 6


def test_exited_keeps_the_agents_reason() -> None:
    after = fold(
        ev.TaskExited(**env(3), data=ev.ExitedData(**place(), exit_code=137, reason="OOMKilled")),
        task=running(),
    )
    assert after.status.reason == "OOMKilled"


@pytest.mark.parametrize(
    ("healthy", "message", "reason"),
    [
        pytest.param(True, "", "", id="healthy"),
        pytest.param(False, "connection refused", "unhealthy: connection refused", id="unhealthy"),
    ],
)
def test_health_changed_sets_the_flag_and_condition(
    healthy: bool, message: str, reason: str
) -> None:
    after = fold(
        ev.TaskHealthChanged(
            **env(3), data=ev.HealthData(**place(), healthy=healthy, message=message)
        ),
        task=running(),
    )
    assert (after.status.healthy, after.status.reason) == (healthy, reason)
    assert {c.type: c.status for c in after.status.conditions}["Healthy"] is healthy


def test_condition_time_moves_only_when_its_status_flips() -> None:
    task = running()  # Running became true at minute 2
    again = fold(
        ev.TaskStarted(**env(5), data=ev.StartedData(**place(), container_id="c2")), task=task
    )
    assert {c.type: c.at for c in again.status.conditions}["Running"] == at(2)


def test_restarted_counts_and_explains_the_delay() -> None:
    after = fold(
        ev.TaskRestarted(**env(3), data=ev.RestartedData(**place(), restarts=2, delay_s=4.0)),
        task=running(),
    )
    assert (after.status.phase, after.status.restarts, after.status.reason) == (
        "starting",
        2,
        "restart 2 in 4s",
    )


def test_stopped_report_settles_the_task() -> None:
    after = fold(ev.TaskStopped(**env(3), data=ev.PlacementData(**place())), task=running())
    assert (after.status.phase, after.status.pid) == ("stopped", None)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(ev.FailedData(**place(), reason="pull failed", exit_code=None), id="placed"),
        pytest.param(ev.FailedData(name="web", reason="bad spec"), id="without-a-placement"),
    ],
)
def test_failed_marks_the_task_failed(data: ev.FailedData) -> None:
    after = fold(ev.TaskFailed(**env(3), data=data), task=running())
    assert (after.status.phase, after.status.reason) == ("failed", data.reason)


STALE_REPORTS = [
    pytest.param(ev.TaskPulling(**env(9), data=ev.PullingData(**place(), image="x")), id="pulling"),
    pytest.param(ev.TaskStarting(**env(9), data=ev.PlacementData(**place())), id="starting"),
    pytest.param(
        ev.TaskStarted(**env(9), data=ev.StartedData(**place(), container_id="old")),
        id="started",
    ),
    pytest.param(
        ev.TaskHealthChanged(**env(9), data=ev.HealthData(**place(), healthy=False)),
        id="health-changed",
    ),
    pytest.param(ev.TaskExited(**env(9), data=ev.ExitedData(**place(), exit_code=1)), id="exited"),
    pytest.param(
        ev.TaskRestarted(**env(9), data=ev.RestartedData(**place(), restarts=1, delay_s=1)),
        id="restarted",
    ),
    pytest.param(ev.TaskStopped(**env(9), data=ev.PlacementData(**place())), id="stopped"),
    pytest.param(ev.TaskFailed(**env(9), data=ev.FailedData(**place(), reason="x")), id="failed"),
    pytest.param(
        ev.TaskEvicted(**env(9), data=ev.EvictedData(**place(), reason="x")), id="evicted"
    ),
]


@pytest.mark.parametrize("event", STALE_REPORTS)
def test_report_of_a_stale_epoch_is_ignored_but_advances_the_revision(event: TaskEvent) -> None:
    """Epoch 1 on n1 was replaced by epoch 2: the old agent's late reports change nothing."""
    task = running(epoch=2)
    after = evolve_task(task, event, 10)
    assert after == task.model_copy(update={"revision": 10})


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            ev.TaskStarted(**env(9), data=ev.StartedData(**place("n2"), container_id="x")),
            id="started",
        ),
        pytest.param(
            ev.TaskExited(**env(9), data=ev.ExitedData(**place("n2"), exit_code=1)), id="exited"
        ),
    ],
)
def test_report_from_another_node_with_the_same_epoch_is_ignored(event: TaskEvent) -> None:
    task = running()
    assert evolve_task(task, event, 10) == task.model_copy(update={"revision": 10})


def test_fold_task_refuses_a_node_event() -> None:
    joined = ev.NodeJoined(**env(), data=ev.NodeJoinedData(name="n1"))
    with pytest.raises(TypeError, match=r"node\.joined is not a task event"):
        fold_task(None, joined, 1)


# ---- nodes ------------------------------------------------------------------------------------


def joined(minutes: int = 0, labels: dict[str, str] | None = None, cpus: float = 2) -> NodeEvent:
    data = ev.NodeJoinedData(
        name="n1",
        labels=labels if labels is not None else {"os": "linux", "arch": "amd64"},
        runtimes=["docker"],
        capacity=NodeCapacity(cpus=cpus, memory=2**30),
        agent_version="0.1.0",
    )
    return ev.NodeJoined(**env(minutes), data=data)


def node_after(*events: NodeEvent, node: NodeView | None = None) -> NodeView:
    for seq, event in enumerate(events, start=1):
        node = evolve_node(node, event, seq)
    assert node is not None
    return node


def ref(cls: type[Any], minutes: int = 1, **data: Any) -> NodeEvent:
    data_cls: type[Any] = ev.NodeReasonData if "reason" in data else ev.NodeRef
    if cls is ev.NodeDraining:
        data_cls = ev.NodeDrainData
    event: NodeEvent = cls(**env(minutes), data=data_cls(name="n1", **data))
    return event


def test_joined_node_is_ready_and_schedulable() -> None:
    node = node_after(joined())
    assert (node.phase, node.schedulable, node.runtimes) == ("ready", True, ["docker"])
    assert (node.capacity.cpus, node.agent_version, node.revision) == (2, "0.1.0", 1)
    assert node.labels == {"arch": "amd64", "os": "linux"}


@pytest.mark.parametrize(
    ("events", "phase", "schedulable"),
    [
        pytest.param([ref(ev.NodeNotReady, reason="missed")], "not-ready", True, id="not-ready"),
        pytest.param([ref(ev.NodeLost, reason="gone")], "lost", True, id="lost"),
        pytest.param(
            [ref(ev.NodeNotReady, reason="x"), ref(ev.NodeReady)], "ready", True, id="back"
        ),
        pytest.param([ref(ev.NodeCordoned)], "ready", False, id="cordoned"),
        pytest.param([ref(ev.NodeCordoned), ref(ev.NodeUncordoned)], "ready", True, id="uncord"),
        pytest.param([ref(ev.NodeDraining)], "draining", False, id="draining"),
        pytest.param(
            [ref(ev.NodeDraining), ref(ev.NodeReady)], "draining", False, id="ready-keeps-drain"
        ),
        pytest.param(
            [ref(ev.NodeDraining), ref(ev.NodeNotReady, reason="x"), ref(ev.NodeReady)],
            "draining",
            False,
            id="not-ready-then-ready-keeps-drain",
        ),
        pytest.param(
            [ref(ev.NodeDraining), ref(ev.NodeUncordoned)], "ready", True, id="uncordon-drain"
        ),
        pytest.param(
            [ref(ev.NodeNotReady, reason="x"), ref(ev.NodeUncordoned)],
            "not-ready",
            True,
            id="uncordon-keeps-not-ready",
        ),
    ],
)
def test_node_phase_and_schedulable_follow_its_events(
    events: list[NodeEvent], phase: str, schedulable: bool
) -> None:
    node = node_after(joined(), *events)
    assert (node.phase, node.schedulable) == (phase, schedulable)
    assert node.revision == len(events) + 1
    assert node.updated_at == at(1)


def test_labeled_replaces_the_labels() -> None:
    labeled = ev.NodeLabeled(**env(1), data=ev.NodeLabelsData(name="n1", labels={"zone": "a"}))
    assert node_after(joined(), labeled).labels == {"zone": "a"}


def test_rejoin_keeps_the_operators_labels_and_takes_the_new_facts() -> None:
    operator = {"os": "linux", "arch": "amd64", "zone": "a"}
    labeled = ev.NodeLabeled(**env(1), data=ev.NodeLabelsData(name="n1", labels=operator))
    rejoin = joined(2, labels={"os": "linux", "arch": "arm64", "zone": "b", "gpu": "1"}, cpus=8)
    node = node_after(joined(), labeled, rejoin)
    assert node.labels == {"arch": "amd64", "gpu": "1", "os": "linux", "zone": "a"}
    assert list(node.labels) == sorted(node.labels)
    assert (node.capacity.cpus, node.created_at, node.updated_at) == (8, T0, at(2))


@pytest.mark.parametrize(
    ("before", "phase"),
    [
        pytest.param(ref(ev.NodeLost, reason="gone"), "ready", id="lost-node-returns-ready"),
        pytest.param(ref(ev.NodeDraining), "draining", id="draining-stays-draining"),
    ],
)
def test_rejoin_sets_the_phase(before: NodeEvent, phase: str) -> None:
    assert node_after(joined(), before, joined(2)).phase == phase


def test_deleted_node_is_gone() -> None:
    assert evolve_node(node_after(joined()), ref(ev.NodeDeleted), 2) is None


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(ref(ev.NodeReady), id="ready"),
        pytest.param(ref(ev.NodeCordoned), id="cordoned"),
        pytest.param(ref(ev.NodeDeleted), id="deleted"),
    ],
)
def test_node_event_for_an_unknown_node_changes_nothing(event: NodeEvent) -> None:
    assert evolve_node(None, event, 1) is None


def test_fold_node_refuses_a_task_event() -> None:
    with pytest.raises(TypeError, match=r"task\.created is not a node event"):
        fold_node(None, created(), 1)


# ---- dropped log lines ------------------------------------------------------------------------


def dropped(count: int, minutes: int = 3, node: str = "n1", epoch: int = 1) -> ev.TaskLogsDropped:
    data = ev.LogsDroppedData(**place(node=node, epoch=epoch), dropped=count)
    return ev.TaskLogsDropped(**env(minutes), data=data)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([dropped(5)], 5, id="first-report"),
        pytest.param([dropped(5), dropped(9, 4)], 9, id="running-total"),
        pytest.param([dropped(9), dropped(5, 4)], 9, id="never-goes-back"),
        pytest.param([dropped(5, node="n2")], 0, id="other-node-changes-nothing"),
        pytest.param([dropped(5, epoch=2)], 0, id="other-epoch-changes-nothing"),
    ],
)
def test_logs_dropped_folds_the_current_placements_total(
    events: list[ev.TaskLogsDropped], expected: int
) -> None:
    after = fold(*events, task=running(), start_seq=4)
    assert after.status.logs_dropped == expected
    assert after.revision == 3 + len(events)
    assert after.status.phase == "running"


def test_a_new_placement_starts_with_no_dropped_lines() -> None:
    moved = ev.TaskScheduled(**env(5), data=ev.PlacementData(**place(node="n2", epoch=2)))
    after = fold(dropped(7), moved, task=running(), start_seq=4)
    assert after.status.logs_dropped == 0


# ---- sets ---------------------------------------------------------------------------------------


def set_spec(image: str = "nginx:1", replicas: int = 2, cause: str = "") -> ev.SetSpecData:
    config = SetConfig.model_validate({"replicas": replicas, "template": {"image": image}})
    return ev.SetSpecData(name="web", labels={"app": "web"}, config=config, cause=cause)


def set_after(*events: SetEvent) -> SetView:
    view: SetView | None = None
    for seq, event in enumerate(events, start=1):
        view = evolve_set(view, event, seq)
    assert view is not None
    return view


def test_created_set_is_revision_1_progressing_with_one_history_entry() -> None:
    view = set_after(ev.SetCreated(**env(0), data=set_spec()))
    assert (view.status.template_revision, view.status.rollout.state) == (1, "progressing")
    assert [(h.revision, h.cause, h.seq) for h in view.history] == [(1, "created", 1)]


def test_only_a_changed_template_or_a_restart_makes_a_new_revision() -> None:
    view = set_after(
        ev.SetCreated(**env(0), data=set_spec()),
        ev.SetUpdated(**env(1), data=set_spec(replicas=5)),
        ev.SetScaled(**env(2), data=ev.SetScaledData(name="web", replicas=1)),
        ev.SetUpdated(**env(3), data=set_spec("nginx:2", replicas=1)),
        ev.SetRestarted(**env(4), data=ev.SetRef(name="web")),
        ev.SetUpdated(**env(5), data=set_spec("nginx:1", 1, cause="rollback to revision 1")),
    )
    assert view.config.replicas == 1
    assert [(h.revision, h.cause, h.template.image) for h in view.history] == [
        (1, "created", "nginx:1"),
        (2, "updated", "nginx:2"),
        (3, "restart", "nginx:2"),
        (4, "rollback to revision 1", "nginx:1"),
    ]


def test_set_history_keeps_the_last_ten_revisions() -> None:
    events: list[SetEvent] = [ev.SetCreated(**env(0), data=set_spec())]
    events += [ev.SetUpdated(**env(i), data=set_spec(f"nginx:{i}")) for i in range(2, 15)]
    view = set_after(*events)
    assert len(view.history) == HISTORY_MAX
    assert view.history[-1].revision == view.status.template_revision == 14


def test_rollout_end_of_the_current_revision_is_recorded_and_a_stale_one_ignored() -> None:
    created_set = ev.SetCreated(**env(0), data=set_spec())
    stale = ev.SetRolloutFailed(
        **env(2), data=ev.RolloutFailedData(name="web", revision=1, reason="x")
    )
    done = ev.SetRolloutCompleted(**env(3), data=ev.RolloutData(name="web", revision=2))
    view = set_after(created_set, ev.SetUpdated(**env(1), data=set_spec("nginx:2")), stale, done)
    assert (view.status.rollout.state, view.status.rollout.finished_at) == ("complete", at(3))
    assert view.revision == 4


def test_set_deleted_is_gone_and_fold_set_refuses_other_kinds() -> None:
    gone = evolve_set(
        set_after(ev.SetCreated(**env(0), data=set_spec())),
        ev.SetDeleted(**env(1), data=ev.SetRef(name="web")),
        2,
    )
    assert gone is None
    with pytest.raises(TypeError):
        fold_set(None, created(), 1)


# ---- volumes ------------------------------------------------------------------------------------


def test_volume_is_created_updated_and_deleted() -> None:
    config = VolumeConfig(type="template", files={"a": "1"})
    data = ev.VolumeSpecData(name="conf", config=config)
    view = evolve_volume(None, ev.VolumeCreated(**env(0), data=data), 1)
    assert view is not None and view.config.files == {"a": "1"}
    newer = VolumeConfig(type="template", files={"a": "2"})
    changed = ev.VolumeUpdated(**env(1), data=ev.VolumeSpecData(name="conf", config=newer))
    view = evolve_volume(view, changed, 2)
    assert view is not None
    assert (view.config.files, view.revision, view.created_at) == ({"a": "2"}, 2, T0)
    deleted = ev.VolumeDeleted(**env(2), data=ev.VolumeRef(name="conf"))
    assert fold_volume(view, deleted, 3) is None
    assert evolve_volume(None, changed, 4) is None


# ---- draining survives ------------------------------------------------------------------------


def test_a_draining_node_stays_draining_across_a_rejoin_and_ready() -> None:
    deadline = at(30)
    draining = node_after(
        joined(), ev.NodeDraining(**env(1), data=ev.NodeDrainData(name="n1", deadline_at=deadline))
    )
    still = node_after(joined(2), ref(ev.NodeReady, 3), node=draining)
    assert (still.phase, still.schedulable, still.drain_deadline) == ("draining", False, deadline)
