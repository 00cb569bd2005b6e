"""Scheduling rounds over a view folded from events: schedule, unschedulable, evict."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voiyd.api.specs import SET_LABEL, SET_REVISION_LABEL, SetConfig, TaskConfig, VolumeConfig
from voiyd.api.views import NodeCapacity
from voiyd.bus import codec, subjects
from voiyd.events import models as ev
from voiyd.scheduler import rounds
from voiyd.scheduler.placement import Demand, Placed, place_demand
from voiyd.scheduler.plan import (
    Evict,
    MarkUnschedulable,
    Schedule,
    evictions,
    node_states,
    plan,
    to_event,
    wants_node,
)
from voiyd.scheduler.view import View

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
GIB = 1024**3


@dataclass(frozen=True)
class Msg:
    seq: int
    subject: str
    data: bytes


class Log:
    """An event log in memory, folded into a scheduler ``View`` as it grows."""

    def __init__(self) -> None:
        self.view = View()
        self.seq = 0

    def add(self, *events: ev.AnyEvent) -> Log:
        for event in events:
            self.seq += 1
            subject = subjects.event(ev.event_kind(event), ev.event_name(event))
            self.view.apply([Msg(self.seq, subject, codec.encode(event))])
        return self

    def apply(self, decisions: list[Any]) -> Log:
        """Append what a plan decided, as the runner would."""
        return self.add(
            *(to_event(d, event_id=f"d{i}", actor="test") for i, d in enumerate(decisions))
        )

    def plan(self) -> list[Any]:
        return plan(self.view, NOW)


_IDS = itertools.count(1)


def _envelope() -> dict[str, Any]:
    return {"id": f"e{next(_IDS)}", "at": NOW, "actor": "test"}


def joined(
    name: str,
    *,
    cpus: float = 4,
    memory: int = 8 * GIB,
    labels: dict[str, str] | None = None,
    runtimes: tuple[str, ...] = ("docker", "exec"),
) -> ev.NodeJoined:
    data = ev.NodeJoinedData(
        name=name,
        labels=labels or {},
        runtimes=list(runtimes),
        capacity=NodeCapacity(cpus=cpus, memory=memory),
    )
    return ev.NodeJoined(**_envelope(), data=data)


def created(name: str, labels: dict[str, str] | None = None, **config: Any) -> ev.TaskCreated:
    config.setdefault("image", "busybox")
    data = ev.TaskSpecData(name=name, labels=labels or {}, config=TaskConfig.model_validate(config))
    return ev.TaskCreated(**_envelope(), data=data)


def scheduled(name: str, node: str, epoch: int = 1) -> ev.TaskScheduled:
    return ev.TaskScheduled(**_envelope(), data=ev.PlacementData(name=name, node=node, epoch=epoch))


def started(name: str, node: str, epoch: int = 1) -> ev.TaskStarted:
    data = ev.StartedData(name=name, node=node, epoch=epoch, container_id="c1")
    return ev.TaskStarted(**_envelope(), data=data)


def node_event(kind: type[ev.Event], name: str) -> ev.AnyEvent:
    data: dict[str, Any] = {"name": name}
    result: ev.AnyEvent = kind.model_validate({**_envelope(), "data": data})  # type: ignore[assignment]
    return result


def _placements(decisions: list[Any]) -> list[tuple[str, str]]:
    return [(d.task, d.node) for d in decisions if isinstance(d, Schedule)]


# ---- scheduling -------------------------------------------------------------------------------


def test_plan_schedules_a_pending_task_with_the_next_epoch_and_its_revision() -> None:
    log = Log().add(joined("n1"), created("web"))
    [decision] = log.plan()
    assert isinstance(decision, Schedule)
    # Epochs go on from the creation's sequence (2), so a re-created task reuses none.
    assert (decision.task, decision.node, decision.epoch) == ("web", "n1", 3)
    assert decision.expected_revision == log.view.tasks["web"].revision == 2
    assert decision.at == NOW


def test_a_task_created_again_never_reuses_an_epoch_of_its_earlier_life() -> None:
    log = Log().add(joined("n1"), created("web"))
    log.apply(log.plan())
    first = log.view.tasks["web"].status.epoch
    log.add(node_event(ev.TaskDeleted, "web"), created("web"))
    [decision] = log.plan()
    assert isinstance(decision, Schedule)
    assert decision.epoch > first


def test_plan_does_nothing_when_every_task_is_placed() -> None:
    log = Log().add(joined("n1"), created("web"))
    log.apply(log.plan())
    assert log.view.tasks["web"].status.phase == "scheduled"
    assert log.plan() == []


def test_plan_leaves_a_stopped_task_alone() -> None:
    log = Log().add(joined("n1"), created("web"), node_event(ev.TaskStopRequested, "web"))
    assert log.plan() == []


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        pytest.param(
            [created(f"t{i}", resources={"cpus": 1}) for i in range(3)],
            [("t0", "n1"), ("t1", "n1")],
            id="cpu",
        ),
        pytest.param(
            [created(f"t{i}", resources={"memory": "1Gi"}) for i in range(3)],
            [("t0", "n1"), ("t1", "n1")],
            id="memory",
        ),
        pytest.param(
            [created(f"t{i}", ports=["8080:80"]) for i in range(2)]
            + [created("t2", ports=["8081:80"])],
            [("t0", "n1"), ("t2", "n1")],
            id="ports",
        ),
    ],
)
def test_plan_never_over_commits_within_one_plan(
    tasks: list[ev.TaskCreated], expected: list[tuple[str, str]]
) -> None:
    log = Log().add(joined("n1", cpus=2, memory=2 * GIB), *tasks)
    decisions = log.plan()
    assert _placements(decisions) == expected
    [refused] = [d for d in decisions if isinstance(d, MarkUnschedulable)]
    assert refused.reason.startswith("0/1 nodes fit: 1 ")


def test_plan_spreads_tasks_across_two_nodes() -> None:
    log = Log().add(joined("a"), joined("b"), *(created(f"t{i}") for i in range(4)))
    assert _placements(log.plan()) == [("t0", "a"), ("t1", "b"), ("t2", "a"), ("t3", "b")]


def test_plan_spreads_a_set_away_from_its_own_tasks() -> None:
    log = Log().add(joined("a"), joined("b"), created("x"), created("y"))
    log.apply(log.plan())  # x on a, y on b
    web = {SET_LABEL: "web"}
    log.add(created("web-0", labels=web), created("other"), created("web-1", labels=web))
    assert _placements(log.plan()) == [("web-0", "a"), ("other", "b"), ("web-1", "b")]


def test_plan_places_in_revision_order() -> None:
    log = Log().add(joined("n1", cpus=1), created("zz", resources={"cpus": 1}))
    log.add(created("aa", resources={"cpus": 1}))
    decisions = log.plan()
    assert _placements(decisions) == [("zz", "n1")]
    assert [d.task for d in decisions] == ["zz", "aa"]


def test_plan_is_deterministic() -> None:
    log = Log().add(
        joined("b"), joined("a"), *(created(f"t{i}", resources={"cpus": 1}) for i in range(12))
    )
    assert log.plan() == log.plan()


def test_plan_counts_tasks_already_running_on_a_node() -> None:
    log = Log().add(
        joined("n1", cpus=2), joined("n2", cpus=2), created("old", resources={"cpus": 2})
    )
    log.add(scheduled("old", "n1"), started("old", "n1"), created("new", resources={"cpus": 2}))
    assert _placements(log.plan()) == [("new", "n2")]


# ---- unschedulable ----------------------------------------------------------------------------


def test_plan_marks_a_task_unschedulable_with_the_reason() -> None:
    log = Log().add(joined("n1", labels={"zone": "a"}), created("web", node_selector="zone=b"))
    [decision] = log.plan()
    assert decision == MarkUnschedulable(
        "web", "0/1 nodes fit: 1 not matching node_selector zone=b", 2, NOW
    )


def test_plan_marks_a_task_unschedulable_when_there_are_no_nodes() -> None:
    [decision] = Log().add(created("web")).plan()
    assert isinstance(decision, MarkUnschedulable)
    assert decision.reason == "no nodes"


def test_plan_does_not_repeat_an_unchanged_unschedulable_reason() -> None:
    log = Log().add(joined("n1", labels={"zone": "a"}), created("web", node_selector="zone=b"))
    log.apply(log.plan())
    assert log.view.tasks["web"].status.phase == "unschedulable"
    assert log.plan() == []


def test_plan_records_a_changed_unschedulable_reason() -> None:
    log = Log().add(joined("n1", labels={"zone": "a"}), created("web", node_selector="zone=b"))
    log.apply(log.plan())
    log.add(node_event(ev.NodeCordoned, "n1"))
    [decision] = log.plan()
    assert isinstance(decision, MarkUnschedulable)
    assert decision.reason == "0/1 nodes fit: 1 cordoned"


def test_plan_places_an_unschedulable_task_once_a_node_fits() -> None:
    log = Log().add(joined("n1", labels={"zone": "a"}), created("web", node_selector="zone=b"))
    log.apply(log.plan())
    log.add(joined("n2", labels={"zone": "b"}))
    [decision] = log.plan()
    assert isinstance(decision, Schedule)
    assert (decision.node, decision.epoch) == ("n2", log.view.tasks["web"].status.epoch + 1)
    assert decision.expected_revision == log.view.tasks["web"].revision


def test_plan_places_an_unschedulable_task_once_a_node_is_uncordoned() -> None:
    log = Log().add(joined("n1"), node_event(ev.NodeCordoned, "n1"), created("web"))
    log.apply(log.plan())
    log.add(node_event(ev.NodeUncordoned, "n1"))
    assert _placements(log.plan()) == [("web", "n1")]


# ---- node trouble -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trouble", "reason"),
    [
        pytest.param(ev.NodeLost, "node n1 lost", id="lost"),
        pytest.param(ev.NodeDraining, "node n1 draining", id="draining"),
        pytest.param(ev.NodeDeleted, "node n1 deleted", id="deleted"),
    ],
)
def test_plan_evicts_the_tasks_of_a_node_that_is_gone(trouble: type[ev.Event], reason: str) -> None:
    log = Log().add(joined("n1"), joined("n2"), created("web"), scheduled("web", "n1"))
    log.add(started("web", "n1"), node_event(trouble, "n1"))
    revision = log.view.tasks["web"].revision
    assert log.plan() == [Evict("web", "n1", 1, reason, revision, NOW)]


def test_plan_re_places_an_evicted_task_with_the_next_epoch() -> None:
    log = Log().add(joined("n1"), joined("n2"), created("web"), scheduled("web", "n1"))
    log.add(node_event(ev.NodeLost, "n1"))
    log.apply(log.plan())
    assert log.view.tasks["web"].status.reason == "node n1 lost"
    [decision] = log.plan()
    assert isinstance(decision, Schedule)
    assert (decision.node, decision.epoch) == ("n2", 2)


def test_plan_keeps_tasks_on_a_not_ready_node() -> None:
    log = Log().add(joined("n1"), joined("n2"), created("web"), scheduled("web", "n1"))
    log.add(node_event(ev.NodeNotReady, "n1"))
    assert log.plan() == []


def test_plan_does_not_evict_a_stopped_task_from_a_lost_node() -> None:
    log = Log().add(joined("n1"), created("web"), scheduled("web", "n1"))
    log.add(node_event(ev.TaskStopRequested, "web"))
    log.add(ev.TaskStopped(**_envelope(), data=ev.PlacementData(name="web", node="n1", epoch=1)))
    log.add(node_event(ev.NodeLost, "n1"))
    assert log.plan() == []


def test_plan_evicts_before_it_places() -> None:
    log = Log().add(joined("n1"), joined("n2"), created("a"), scheduled("a", "n1"), created("b"))
    log.add(node_event(ev.NodeLost, "n1"))
    decisions = log.plan()
    assert [type(d) for d in decisions] == [Evict, Schedule]
    assert _placements(decisions) == [("b", "n2")]


# ---- events and the view ----------------------------------------------------------------------


def test_to_event_records_each_decision() -> None:
    sched = to_event(Schedule("web", "n1", 3, 1.5, 7, NOW), event_id="x", actor="s")
    assert isinstance(sched, ev.TaskScheduled)
    assert sched.data == ev.PlacementData(name="web", node="n1", epoch=3)
    evict = to_event(Evict("web", "n1", 3, "node n1 lost", 7, NOW), event_id="y", actor="s")
    assert isinstance(evict, ev.TaskEvicted)
    assert (evict.data.epoch, evict.data.reason) == (3, "node n1 lost")
    why = to_event(MarkUnschedulable("web", "no nodes", 7, NOW), event_id="z", actor="s")
    assert isinstance(why, ev.TaskUnschedulable)
    assert (why.id, why.actor, why.at, why.data.reason) == ("z", "s", NOW, "no nodes")


def test_view_skips_an_undecodable_event_but_counts_its_sequence() -> None:
    view = View()
    result = view.apply([Msg(1, "voiyd.events.task.web", b"\xc1garbage")])
    assert (result.applied, view.seq, [s.seq for s in result.skipped]) == (0, 1, [1])


def test_view_skips_an_event_on_the_wrong_subject() -> None:
    view = View()
    event = created("web")
    result = view.apply([Msg(1, "voiyd.events.task.other", codec.encode(event))])
    assert result.applied == 0
    assert view.tasks == {}


def test_view_ignores_a_sequence_it_has_applied() -> None:
    log = Log().add(created("web"))
    again = Msg(1, "voiyd.events.task.web", codec.encode(created("web", labels={"a": "b"})))
    assert log.view.apply([again]).applied == 0
    assert log.view.tasks["web"].meta.labels == {}


def test_view_forgets_deleted_tasks_and_nodes() -> None:
    log = Log().add(joined("n1"), created("web"))
    log.add(node_event(ev.TaskDeleted, "web"), node_event(ev.NodeDeleted, "n1"))
    assert (log.view.tasks, log.view.nodes) == ({}, {})


# ---- the heap agrees with a full scan ---------------------------------------------------------


def _random_log(rng: random.Random) -> Log:
    log = Log()
    for i in range(rng.randint(0, 6)):
        labels = {"zone": rng.choice("ab")}
        log.add(
            joined(
                f"n{i}", cpus=rng.choice([1, 2, 4]), memory=rng.choice([1, 2]) * GIB, labels=labels
            )
        )
        if rng.random() < 0.2:
            log.add(node_event(rng.choice([ev.NodeCordoned, ev.NodeNotReady]), f"n{i}"))
    log.add(volume_created("v1", "n0"), volume_created("v2", "n1", "template"))
    for i in range(rng.randint(0, 30)):
        config: dict[str, Any] = {
            "resources": {
                "cpus": rng.choice([None, 0.5, 1]),
                "memory": rng.choice([None, "256Mi"]),
            },
            "ports": rng.choice([[], ["8080:80"], ["127.0.0.1:8080:80"], ["9090:90/udp"]]),
            "node_selector": rng.choice(["", "zone=a", "zone!=a"]),
            "mounts": rng.choice([[], [], ["v1:/a"], ["v2:/b"], ["v1:/a", "v2:/b"], ["v3:/c"]]),
        }
        labels = {SET_LABEL: rng.choice("xy")} if rng.random() < 0.5 else {}
        log.add(created(f"t{i}", labels=labels, **config))
    return log


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(40)])
def test_plan_places_like_place_called_once_per_task(seed: int) -> None:
    log = _random_log(random.Random(seed))
    view = log.view
    states = {s.name: s for s in node_states(view.nodes, view.tasks)}
    expected: list[tuple[str, str]] = []
    pending = sorted((t for t in view.tasks.values() if wants_node(t)), key=lambda t: t.revision)
    for t in pending:
        d = Demand.of(t, view.volumes)
        outcome = place_demand(d, list(states.values()))
        if isinstance(outcome, Placed):
            expected.append((t.meta.name, outcome.node))
            states[outcome.node] = states[outcome.node].with_demands([d])
    assert _placements(log.plan()) == expected


# ---- drain, labels, volumes -------------------------------------------------------------------


def set_created(name: str, replicas: int, **update: Any) -> ev.SetCreated:
    config = SetConfig.model_validate(
        {"replicas": replicas, "template": {"image": "busybox"}, "update": update}
    )
    return ev.SetCreated(**_envelope(), data=ev.SetSpecData(name=name, config=config))


def member(set_name: str, index: int) -> ev.TaskCreated:
    labels = {SET_LABEL: set_name, SET_REVISION_LABEL: "1"}
    return created(f"{set_name}-{index}", labels=labels)


def running_on(log: Log, node: str, *names: str) -> Log:
    for name in names:
        log.add(scheduled(name, node), started(name, node))
    return log


def draining(node: str, deadline: datetime | None = None) -> ev.NodeDraining:
    return ev.NodeDraining(**_envelope(), data=ev.NodeDrainData(name=node, deadline_at=deadline))


def _evicted(decisions: list[Any]) -> list[str]:
    return [d.task for d in decisions if isinstance(d, Evict)]


def test_drain_evicts_tasks_outside_sets_at_once() -> None:
    log = Log().add(joined("n1"), joined("n2"), created("a"), created("b"))
    running_on(log, "n1", "a", "b").add(draining("n1"))
    decisions = evictions(log.view, NOW)
    assert _evicted(decisions) == ["a", "b"]
    assert {d.reason for d in decisions} == {"node n1 draining"}


def test_drain_moves_a_sets_members_max_parallel_at_a_time() -> None:
    log = Log().add(joined("n1"), joined("n2"), set_created("web", 3, max_parallel=1))
    log.add(*(member("web", i) for i in (1, 2, 3)))
    running_on(log, "n1", "web-1", "web-2", "web-3").add(draining("n1"))
    assert _evicted(log.plan()) == ["web-1"]
    log.apply(log.plan())
    # web-1 waits for a node: the Set misses one replica, so nothing else leaves yet.
    decisions = log.plan()
    assert (_evicted(decisions), _placements(decisions)) == ([], [("web-1", "n2")])
    log.apply(decisions)
    assert _evicted(log.plan()) == []  # placed is not available: it must run first
    log.add(started("web-1", "n2", epoch=2))
    assert _evicted(log.plan()) == ["web-2"]


def test_drain_counts_members_unavailable_elsewhere_against_the_budget() -> None:
    log = Log().add(joined("n1"), joined("n2"), set_created("web", 3, max_parallel=2))
    log.add(*(member("web", i) for i in (1, 2, 3)))
    running_on(log, "n1", "web-1", "web-2").add(scheduled("web-3", "n2"))  # web-3 not running
    log.add(draining("n1"))
    assert _evicted(log.plan()) == ["web-1"]


def test_drain_moves_a_member_that_is_not_available_at_once() -> None:
    log = Log().add(joined("n1"), joined("n2"), set_created("web", 2, max_parallel=1))
    log.add(*(member("web", i) for i in (1, 2)))
    running_on(log, "n1", "web-1").add(scheduled("web-2", "n1"), draining("n1"))
    # web-2 is not running: moving it costs nothing; web-1 must wait, one replica is missing.
    assert _evicted(log.plan()) == ["web-2"]


def test_drain_respects_min_healthy_s_of_the_set() -> None:
    log = Log().add(joined("n1"), joined("n2"), set_created("web", 2, min_healthy_s=30))
    log.add(*(member("web", i) for i in (1, 2)))
    running_on(log, "n1", "web-1").add(draining("n1"))
    # web-1 started at NOW: not available for 30s, so moving it costs nothing; web-2 is missing.
    assert _evicted(log.plan()) == ["web-1"]


def test_drain_moves_everything_left_once_its_deadline_has_passed() -> None:
    log = Log().add(joined("n1"), joined("n2"), set_created("web", 3, max_parallel=1))
    log.add(*(member("web", i) for i in (1, 2, 3)))
    running_on(log, "n1", "web-1", "web-2", "web-3")
    log.add(draining("n1", deadline=NOW + timedelta(minutes=5)))
    assert _evicted(log.plan()) == ["web-1"]
    later = NOW + timedelta(minutes=5)
    assert rounds.wake_at(log.view, NOW) == later
    assert _evicted(plan(log.view, later)) == ["web-1", "web-2", "web-3"]


def test_a_label_change_evicts_tasks_whose_selector_no_longer_matches() -> None:
    log = Log().add(joined("n1", labels={"zone": "a"}), joined("n2", labels={"zone": "b"}))
    log.add(created("pinned", node_selector="zone=a"), created("free"))
    running_on(log, "n1", "pinned", "free")
    assert log.plan() == []
    labeled = ev.NodeLabelsData(name="n1", labels={"zone": "c"})
    log.add(ev.NodeLabeled(**_envelope(), data=labeled))
    [evict] = log.plan()
    assert isinstance(evict, Evict)
    assert (evict.task, evict.reason) == (
        "pinned",
        "node n1 no longer matches node_selector zone=a",
    )
    log.apply([evict])
    [again] = log.plan()
    assert isinstance(again, MarkUnschedulable)  # nowhere left with zone=a


def volume_created(name: str, node: str | None, kind: str = "host-local") -> ev.VolumeCreated:
    files = {"a.conf": "x"} if kind == "template" else {}
    config = VolumeConfig.model_validate({"type": kind, "node": node, "files": files})
    return ev.VolumeCreated(**_envelope(), data=ev.VolumeSpecData(name=name, config=config))


def test_a_task_mounting_a_host_local_volume_is_placed_on_its_node() -> None:
    log = Log().add(joined("n1"), joined("n2"), volume_created("data", "n2"))
    log.add(created("busy"), created("db", mounts=["data:/var/lib/db"]))
    running_on(log, "n2", "busy")  # n2 is the worse node by score, but holds the data
    assert _placements(log.plan()) == [("db", "n2")]


def test_a_task_whose_volume_node_does_not_fit_is_unschedulable_with_the_reason() -> None:
    log = Log().add(joined("n1"), joined("n2"), volume_created("data", "n2"))
    log.add(node_event(ev.NodeCordoned, "n2"), created("db", mounts=["data:/var/lib/db"]))
    [decision] = log.plan()
    assert isinstance(decision, MarkUnschedulable)
    assert decision.reason == "0/2 nodes fit: 1 volume data is on node n2, 1 cordoned"


def test_a_task_mounting_a_missing_volume_is_unschedulable() -> None:
    log = Log().add(joined("n1"), created("db", mounts=["data:/var/lib/db", "logs:/logs"]))
    [decision] = log.plan()
    assert isinstance(decision, MarkUnschedulable)
    assert decision.reason == "volumes data, logs do not exist"
    log.apply([decision]).add(volume_created("data", "n1"), volume_created("logs", "n1"))
    assert _placements(log.plan()) == [("db", "n1")]


def test_a_template_volume_without_a_node_goes_anywhere_and_with_one_pins() -> None:
    log = Log().add(joined("n1"), joined("n2"), volume_created("conf", None, "template"))
    log.add(volume_created("local-conf", "n2", "template"))
    log.add(created("a", mounts=["conf:/etc/a"]), created("b", mounts=["local-conf:/etc/b"]))
    assert _placements(log.plan()) == [("a", "n1"), ("b", "n2")]


def test_view_folds_sets_and_volumes_and_remembers_deleted_revisions() -> None:
    log = Log().add(set_created("web", 1), volume_created("data", "n1"), created("web-1"))
    log.add(node_event(ev.TaskDeleted, "web-1"))
    view = log.view
    assert set(view.sets) == {"web"}
    assert set(view.volumes) == {"data"}
    assert "web-1" not in view.tasks
    assert view.revision("task", "web-1") == 4
    assert view.revision("task", "never") == 0
    log.add(node_event(ev.SetDeleted, "web"))
    assert (view.sets, view.revision("set", "web")) == ({}, 5)
