"""How far a wait has come: a Set's rollout (``rollout status``) and a node's drain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from voiyd.api.specs import Meta, SetConfig, SetMeta, TaskConfig
from voiyd.api.views import (
    EventView,
    RolloutStatus,
    SetRevision,
    SetStatus,
    SetView,
    TaskStatus,
    TaskView,
)
from voiyd.cli import progress

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TEMPLATE = TaskConfig(image="nginx")


def _set(
    template_revision: int, state: str, rollout_revision: int, reason: str = "", replicas: int = 2
) -> SetView:
    history = [
        SetRevision(revision=r, template=TEMPLATE, cause=c, at=NOW, seq=r)
        for r, c in ((1, "created"), (2, "updated"), (3, "automatic rollback: web-1 failed"))
    ]
    return SetView(
        meta=SetMeta(name="web"),
        config=SetConfig(replicas=replicas, template=TEMPLATE),
        status=SetStatus(
            template_revision=template_revision,
            updated=2,
            available=3,
            rollout=RolloutStatus.model_validate(
                {"state": state, "revision": rollout_revision, "reason": reason}
            ),
        ),
        history=history,
        revision=9,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("view", "verdict", "why"),
    [
        pytest.param(_set(2, "progressing", 2), None, "", id="progressing"),
        pytest.param(_set(2, "complete", 2), "complete", "", id="complete"),
        pytest.param(
            _set(2, "failed", 2, "web-3 unhealthy"), "failed", "web-3 unhealthy", id="failed"
        ),
        pytest.param(_set(2, "complete", 1), None, "", id="an-older-rollout-ended"),
        pytest.param(_set(2, "complete", 2, replicas=4), None, "", id="complete-but-scaled-up"),
        pytest.param(
            _set(3, "progressing", 3),
            "failed",
            "revision 2 was replaced by revision 3 (automatic rollback: web-1 failed)",
            id="replaced-by-a-rollback",
        ),
    ],
)
def test_rollout_verdict_for_the_revision_the_wait_started_with(
    view: SetView, verdict: str | None, why: str
) -> None:
    assert progress.rollout_verdict(view, 2) == (verdict, why)


def test_rollout_line_counts_updated_and_available() -> None:
    line = progress.rollout_line(_set(2, "progressing", 2, replicas=4), 2)
    assert line == "set/web rollout to revision 2: 2 of 4 updated, 3 available"


def _task(name: str, phase: str, node: str | None) -> TaskView:
    return TaskView(
        meta=Meta(name=name),
        config=TEMPLATE,
        status=TaskStatus.model_validate({"phase": phase, "node": node, "reason": "no node fits"}),
        revision=1,
        generation=1,
        created_at=NOW,
        updated_at=NOW,
    )


def _evicted(seq: int, name: str, node: str) -> EventView:
    data: dict[str, Any] = {"name": name, "node": node, "epoch": 1, "reason": "node draining"}
    return EventView(
        seq=seq, subject=f"voiyd.events.task.{name}", event={"type": "task.evicted", "data": data}
    )


def test_evicted_from_names_each_task_moved_off_the_node_once() -> None:
    events = [
        _evicted(5, "a", "n1"),
        _evicted(6, "b", "n2"),
        EventView(seq=7, subject="voiyd.events.task.c", event={"type": "task.created", "data": {}}),
        _evicted(8, "a", "n1"),
        _evicted(9, "c", "n1"),
    ]
    assert progress.evicted_from(events, "n1") == ["a", "c"]


@pytest.mark.parametrize("phase", ["scheduled", "pulling", "starting", "running", "stopping"])
def test_a_task_in_a_holding_phase_keeps_the_drain_going(phase: str) -> None:
    state = progress.drain_state([_task("a", phase, "n1")], [], "n1")
    assert [t.meta.name for t in state.left] == ["a"]
    assert not state.done
    assert progress.drain_line("n1", state) == "draining node/n1: 1 task left (a)"


@pytest.mark.parametrize("phase", ["stopped", "exited", "failed", "pending", "unschedulable"])
def test_a_task_that_holds_nothing_does_not_keep_the_drain_going(phase: str) -> None:
    assert progress.drain_state([_task("a", phase, "n1")], [], "n1").left == []


def test_the_drain_waits_for_evicted_tasks_to_be_placed_and_reports_the_stuck_ones() -> None:
    tasks = [
        _task("moved", "running", "n2"),
        _task("waiting", "pending", None),
        _task("stuck", "unschedulable", None),
        _task("elsewhere", "running", "n3"),
    ]
    state = progress.drain_state(tasks, ["moved", "waiting", "stuck", "gone"], "n1")
    assert not state.left
    assert state.undecided == ["waiting"]
    assert not state.done
    assert "waiting for waiting to be placed elsewhere" in progress.drain_line("n1", state)
    assert progress.stuck_lines(state) == ["task/stuck: unschedulable: no node fits"]


def test_a_drain_is_done_when_nothing_is_left_or_undecided() -> None:
    state = progress.drain_state([_task("moved", "running", "n2")], ["moved"], "n1")
    assert state.done
    assert state.stuck == []


def test_the_drain_line_lists_a_few_tasks_then_counts_the_rest() -> None:
    tasks = [_task(f"t{i}", "running", "n1") for i in range(8)]
    line = progress.drain_line("n1", progress.drain_state(tasks, [], "n1"))
    assert line == "draining node/n1: 8 tasks left (t0, t1, t2, t3, t4 and 3 more)"
