"""The server's pure decisions for agents: joins, fenced reports, liveness, assignments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voiyd.api.agent import NodeJoin, TaskReport
from voiyd.api.specs import Meta, TaskConfig
from voiyd.api.views import NodeCapacity, NodeView, TaskStatus, TaskView
from voiyd.events import models as ev
from voiyd.server.decide import Context
from voiyd.server.decide_agent import (
    LivenessRules,
    Refused,
    assignment_for,
    decide_join,
    decide_liveness,
    decide_report,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CTX = Context(now=NOW, event_id="e1", actor="test")


def node(phase: str = "ready") -> NodeView:
    return NodeView(
        name="n1",
        labels={"a": "b"},
        phase=phase,
        runtimes=["docker"],
        capacity=NodeCapacity(cpus=2, memory=1 << 30),
        revision=3,
        created_at=NOW,
        updated_at=NOW,
    )


def task(node_name: str | None = "n1", epoch: int = 2, phase: str = "scheduled") -> TaskView:
    status = TaskStatus(node=node_name, epoch=epoch, phase=phase)
    return TaskView(
        meta=Meta(name="web"),
        config=TaskConfig(image="busybox"),
        status=status,
        revision=7,
        generation=1,
        created_at=NOW,
        updated_at=NOW,
    )


def report(
    state: str = "started", node_name: str = "n1", epoch: int = 2, **kw: object
) -> TaskReport:
    return TaskReport.model_validate(
        {
            "report_id": "r-123456789",
            "node": node_name,
            "task": "web",
            "epoch": epoch,
            "state": state,
            "at": NOW,
            **kw,
        }
    )


def test_join_of_a_new_node_appends_node_joined() -> None:
    join = NodeJoin(node="n1", runtimes=["docker"])
    assert isinstance(decide_join(join, None, CTX), ev.NodeJoined)


def test_join_that_changes_nothing_appends_nothing() -> None:
    join = NodeJoin(
        node="n1",
        labels={"a": "b"},
        runtimes=["docker"],
        capacity=NodeCapacity(cpus=2, memory=1 << 30),
    )
    assert decide_join(join, node(), CTX) is None


def test_join_of_a_lost_node_appends_node_joined_again() -> None:
    join = NodeJoin(
        node="n1",
        labels={"a": "b"},
        runtimes=["docker"],
        capacity=NodeCapacity(cpus=2, memory=1 << 30),
    )
    assert isinstance(decide_join(join, node("lost"), CTX), ev.NodeJoined)


@pytest.mark.parametrize(
    ("view", "rep", "why"),
    [
        pytest.param(None, report(), "no longer exists", id="deleted-task"),
        pytest.param(task(node_name="n2"), report(), "stale", id="other-node"),
        pytest.param(task(epoch=3), report(), "stale", id="old-epoch"),
        pytest.param(task(node_name=None), report(), "no node", id="unplaced"),
    ],
)
def test_report_from_a_stale_placement_is_refused(
    view: TaskView | None, rep: TaskReport, why: str
) -> None:
    outcome = decide_report(rep, view, CTX)
    assert isinstance(outcome, Refused) and why in outcome.reason


@pytest.mark.parametrize(
    ("state", "extra", "event_type"),
    [
        ("pulling", {"image": "busybox"}, ev.TaskPulling),
        ("started", {"container_id": "c1", "pid": 5}, ev.TaskStarted),
        ("exited", {"exit_code": 3}, ev.TaskExited),
        ("restarted", {"restarts": 1, "delay_s": 1.0}, ev.TaskRestarted),
        ("stopped", {}, ev.TaskStopped),
        ("failed", {"reason": "image pull failed"}, ev.TaskFailed),
        ("health", {"healthy": False, "reason": "http 500"}, ev.TaskHealthChanged),
        ("logs", {"dropped": 40}, ev.TaskLogsDropped),
    ],
)
def test_report_from_the_current_placement_becomes_its_event(
    state: str, extra: dict[str, object], event_type: type
) -> None:
    outcome = decide_report(report(state, **extra), task(), CTX)  # type: ignore[arg-type]
    assert isinstance(outcome, event_type)
    assert getattr(outcome, "id", None) == "e1"


def test_report_that_restates_the_view_appends_nothing() -> None:
    running = task(phase="running").model_copy(
        update={"status": TaskStatus(node="n1", epoch=2, phase="running", container_id="c1")}
    )
    assert decide_report(report("started", container_id="c1"), running, CTX) is None


@pytest.mark.parametrize(
    ("phase", "silent_s", "expected"),
    [
        pytest.param("ready", 1, None, id="ready-and-heard"),
        pytest.param("ready", 7, ev.NodeNotReady, id="silent-becomes-not-ready"),
        pytest.param("not-ready", 10, None, id="not-ready-within-grace"),
        pytest.param("not-ready", 31, ev.NodeLost, id="silent-past-grace-is-lost"),
        pytest.param("ready", 31, ev.NodeLost, id="long-silent-ready-is-lost"),
        pytest.param("lost", 100, None, id="lost-stays-lost"),
        pytest.param("lost", 1, ev.NodeReady, id="lost-heard-again-is-ready"),
        pytest.param("not-ready", 1, ev.NodeReady, id="not-ready-heard-again"),
    ],
)
def test_liveness(phase: str, silent_s: float, expected: type | None) -> None:
    out = decide_liveness(node(phase), NOW - timedelta(seconds=silent_s), NOW, LivenessRules(), CTX)
    assert (type(out) if out is not None else None) is expected


def test_assignment_exists_only_for_placed_tasks_that_should_run() -> None:
    assert assignment_for(task(node_name=None)) is None
    placed = assignment_for(task())
    assert placed is not None and (placed.node, placed.epoch) == ("n1", 2)
    stopped = task().model_copy(
        update={"status": TaskStatus(node="n1", epoch=2, desired="stopped")}
    )
    assert assignment_for(stopped) is None


@pytest.mark.parametrize(
    ("already", "reported", "appends"),
    [
        pytest.param(0, 40, True, id="first-drops"),
        pytest.param(40, 90, True, id="more-drops"),
        pytest.param(40, 40, False, id="same-count-resent"),
        pytest.param(90, 40, False, id="overtaken-by-a-later-report"),
        pytest.param(0, 0, False, id="nothing-dropped"),
    ],
)
def test_a_logs_report_appends_only_a_count_the_status_has_not_reached(
    already: int, reported: int, appends: bool
) -> None:
    view = task(phase="running").model_copy(
        update={"status": TaskStatus(node="n1", epoch=2, phase="running", logs_dropped=already)}
    )
    outcome = decide_report(report("logs", dropped=reported), view, CTX)
    if appends:
        assert isinstance(outcome, ev.TaskLogsDropped)
        assert (outcome.data.node, outcome.data.epoch, outcome.data.dropped) == ("n1", 2, reported)
    else:
        assert outcome is None
