"""The agent's pure reconcile: desired assignments against observed containers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voiyd.agent.reconcile import (
    Exited,
    Memory,
    Start,
    Stop,
    after_exit,
    backoff_delay,
    reconcile,
)
from voiyd.agent.runtimes.protocol import Observed
from voiyd.api.agent import Assignment
from voiyd.api.specs import RestartPolicy, TaskConfig

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def assignment(
    task: str = "web", epoch: int = 1, restart: str = "always", restarts: int = 0
) -> Assignment:
    config = TaskConfig.model_validate({"image": "busybox", "restart": restart})
    return Assignment(
        task=task,
        node="n1",
        epoch=epoch,
        desired="running",
        config=config,
        restarts=restarts,
        revision=1,
        updated_at=NOW,
    )


def container(
    task: str = "web",
    epoch: int = 1,
    state: str = "running",
    cid: str = "c1",
    exit_code: int | None = None,
    started: int = 0,
) -> Observed:
    return Observed(
        id=cid,
        task=task,
        epoch=epoch,
        node="n1",
        state=state,  # type: ignore[arg-type]
        exit_code=exit_code,
        started_at=NOW + timedelta(seconds=started),
    )


def test_reconcile_starts_an_assigned_task_with_no_container() -> None:
    plan = reconcile({"web": assignment()}, [], {}, NOW)
    assert [type(a) for a in plan.actions] == [Start]


def test_reconcile_adopts_a_running_container_of_the_same_epoch() -> None:
    plan = reconcile({"web": assignment()}, [container()], {}, NOW)
    assert plan.actions == []


@pytest.mark.parametrize(
    ("desired", "observed", "why"),
    [
        pytest.param({}, container(), "no longer assigned", id="unassigned"),
        pytest.param(
            {"web": assignment(epoch=2)}, container(epoch=1), "epoch 1 replaced", id="old-epoch"
        ),
    ],
)
def test_reconcile_stops_what_is_not_this_nodes_placement(
    desired: dict[str, Assignment], observed: Observed, why: str
) -> None:
    plan = reconcile(desired, [observed], {}, NOW)
    stops = [a for a in plan.actions if isinstance(a, Stop)]
    assert len(stops) == 1 and why in stops[0].reason


def test_a_new_placement_starts_only_once_the_old_copy_here_has_stopped() -> None:
    desired = {"web": assignment(epoch=2)}
    first = reconcile(desired, [container(epoch=1)], {}, NOW)
    assert [type(a) for a in first.actions] == [Stop]  # not Start yet: same ports, same volumes
    assert "web" in first.memory
    stopped = reconcile(desired, [container(epoch=1, state="exited", exit_code=0)], {}, NOW)
    assert sorted(type(a).__name__ for a in stopped.actions) == ["Start", "Stop"]
    gone = reconcile(desired, [], first.memory, NOW)
    assert [type(a) for a in gone.actions] == [Start]


def test_another_tasks_old_copy_does_not_hold_a_start_back() -> None:
    desired = {"web": assignment(epoch=2), "db": assignment(task="db")}
    plan = reconcile(desired, [container(epoch=1)], {}, NOW)
    assert sorted(type(a).__name__ for a in plan.actions) == ["Start", "Stop"]
    assert [a.assignment.task for a in plan.actions if isinstance(a, Start)] == ["db"]


def test_reconcile_removes_a_duplicate_copy_and_keeps_the_running_one() -> None:
    plan = reconcile(
        {"web": assignment()},
        [container(cid="old", state="exited", exit_code=0), container(cid="new", started=5)],
        {},
        NOW,
    )
    assert [(type(a), a.container.id) for a in plan.actions if isinstance(a, Stop)] == [
        (Stop, "old")
    ]
    assert len(plan.actions) == 1


@pytest.mark.parametrize(
    ("policy", "code", "restarts", "then"),
    [
        pytest.param("always", 0, 0, "restart", id="always-restarts-on-success"),
        pytest.param("never", 1, 0, "stay", id="never-stays"),
        pytest.param("on-failure", 0, 0, "stay", id="on-failure-exit-0-stays"),
        pytest.param("on-failure:3", 1, 2, "restart", id="on-failure-below-max"),
        pytest.param("on-failure:3", 1, 3, "fail", id="on-failure-at-max-fails"),
        pytest.param("on-failure", 1, 100, "restart", id="on-failure-unlimited"),
    ],
)
def test_after_exit_follows_the_restart_policy(
    policy: str, code: int, restarts: int, then: str
) -> None:
    assert after_exit(assignment(restart=policy).config.restart, code, restarts)[0] == then


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RestartPolicy(backoff_s=1, max_backoff_s=10)
    assert [backoff_delay(policy, n) for n in range(6)] == [1, 2, 4, 8, 10, 10]


def test_an_exit_is_reported_once_then_restarted_after_the_backoff() -> None:
    a = assignment(restart="on-failure:3")
    dead = container(state="exited", exit_code=1)
    first = reconcile({"web": a}, [dead], {}, NOW)
    (exited,) = first.actions
    assert isinstance(exited, Exited) and exited.then == "restart" and exited.restarts == 1
    assert exited.delay_s == 1.0
    waiting = reconcile({"web": a}, [dead], first.memory, NOW + timedelta(seconds=0.5))
    assert waiting.actions == []
    due = reconcile({"web": a}, [dead], first.memory, NOW + timedelta(seconds=1))
    (start,) = due.actions
    assert isinstance(start, Start) and start.replaces == "c1"


def test_on_failure_gives_up_after_max_retries() -> None:
    a = assignment(restart="on-failure:1")
    memory = {"web": Memory(epoch=1, restarts=1)}
    plan = reconcile({"web": a}, [container(state="exited", exit_code=2)], memory, NOW)
    (exited,) = plan.actions
    assert isinstance(exited, Exited) and exited.then == "fail"
    assert (
        reconcile({"web": a}, [container(state="exited", exit_code=2)], plan.memory, NOW).actions
        == []
    )


def test_a_new_epoch_starts_counting_from_the_assignment() -> None:
    memory = {"web": Memory(epoch=1, restarts=5, gave_up=True)}
    plan = reconcile({"web": assignment(epoch=2, restarts=0)}, [], memory, NOW)
    assert [type(a) for a in plan.actions] == [Start]
    assert plan.memory["web"].restarts == 0
