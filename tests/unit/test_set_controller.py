"""The Set controller over a view folded from events: members, scale, rollouts, rollback.

``Cluster`` is an event log in memory with the log's optimistic concurrency (an append whose
expected revision is not its subject's last sequence is refused, as JetStream does), the
scheduler's whole round (``rounds.decide``) and fake agents that report what real ones would:
a placed task starts, then its health check passes or fails. Rounds are simulated one after
another with the clock moving, so rollouts are checked as they progress, not only at the end.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voiyd.api.members import available, member_revision
from voiyd.api.specs import SET_LABEL, SET_REVISION_LABEL, SetConfig, TaskConfig
from voiyd.api.views import NodeCapacity, TaskView
from voiyd.bus import codec, subjects
from voiyd.events import models as ev
from voiyd.scheduler import plan, sets
from voiyd.scheduler.rounds import AnyDecision, decide, wake_at
from voiyd.scheduler.sets import (
    CompleteRollout,
    CreateMember,
    DeleteMember,
    FailRollout,
    Rollback,
    UpdateMember,
)
from voiyd.scheduler.view import View

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
GIB = 1024**3
HEALTH = {"type": "tcp", "port": 80}
_IDS = itertools.count(1)


@dataclass(frozen=True)
class Msg:
    seq: int
    subject: str
    data: bytes


class Cluster:
    """An event log with OCC, the scheduler's rounds and fake agents, on a fake clock."""

    def __init__(self, nodes: int = 2) -> None:
        self.view = View()
        self.seq = 0
        self.now = T0
        self.conflicts = 0
        self.recorded: list[ev.AnyEvent] = []
        self.bad_images: set[str] = set()
        """Images whose health check fails (the fake agents report them unhealthy)."""
        for i in range(1, nodes + 1):
            self.add(joined(f"n{i}", at=self.now))

    def env(self) -> dict[str, Any]:
        return {"id": f"e{next(_IDS)}", "at": self.now, "actor": "test"}

    def add(self, *events: ev.AnyEvent) -> Cluster:
        for event in events:
            self.seq += 1
            self.recorded.append(event)
            subject = subjects.event(ev.event_kind(event), ev.event_name(event))
            self.view.apply([Msg(self.seq, subject, codec.encode(event))])
        return self

    def append(self, event: ev.AnyEvent, expected: int) -> bool:
        """Append with the log's check: False (a conflict) when ``expected`` is stale."""
        if self.view.revision(ev.event_kind(event), ev.event_name(event)) != expected:
            self.conflicts += 1
            return False
        self.add(event)
        return True

    def decide(self) -> list[Any]:
        return decide(self.view, self.now).decisions

    def commit(self, decisions: list[Any]) -> list[Any]:
        """Append decisions as the runner does; the ones the log accepted."""
        done: list[AnyDecision] = []
        for i, d in enumerate(decisions):
            if isinstance(d, plan.Schedule | plan.MarkUnschedulable | plan.Evict):
                event = plan.to_event(d, event_id=f"d{next(_IDS)}-{i}", actor="sched")
            else:
                event = sets.to_event(d, event_id=f"d{next(_IDS)}-{i}", actor="sched")
            if self.append(event, d.expected_revision):
                done.append(d)
        return done

    def step(self) -> list[Any]:
        """One scheduler round, appended."""
        return self.commit(self.decide())

    def agents(self) -> int:
        """What agents report (placed tasks start, running ones report their health check):
        the number of reports."""
        before = self.seq
        for t in list(self.view.tasks.values()):
            s = t.status
            if s.node is None or s.desired != "running":
                continue
            where = {"name": t.meta.name, "node": s.node, "epoch": s.epoch}
            if s.phase == "scheduled":
                self.add(
                    ev.TaskStarted(**self.env(), data=ev.StartedData(**where, container_id="c"))
                )
            elif s.phase == "running" and t.config.health is not None and s.healthy is None:
                ok = t.config.image not in self.bad_images
                self.add(
                    ev.TaskHealthChanged(**self.env(), data=ev.HealthData(**where, healthy=ok))
                )
        return self.seq - before

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)

    def run(self, rounds: int, check: Callable[[Cluster], None] | None = None) -> None:
        """``rounds`` of: scheduler round, agents report, one second passes, ``check``."""
        for _ in range(rounds):
            self.step()
            self.agents()
            self.tick()
            if check is not None:
                check(self)

    def members(self, name: str = "web") -> list[TaskView]:
        return sets.by_set(self.view.tasks.values()).get(name, [])

    def available(self, name: str = "web") -> int:
        s = self.view.sets[name]
        mh = s.config.update.min_healthy_s
        return sum(1 for t in self.members(name) if available(t, mh, self.now))

    def state(self, name: str = "web") -> str:
        return self.view.sets[name].status.rollout.state

    def images(self, name: str = "web") -> list[str | None]:
        return [t.config.image for t in self.members(name)]


def joined(name: str, *, at: datetime, labels: dict[str, str] | None = None) -> ev.NodeJoined:
    data = ev.NodeJoinedData(
        name=name,
        labels=labels or {},
        runtimes=["docker", "exec"],
        capacity=NodeCapacity(cpus=64, memory=64 * GIB),
    )
    return ev.NodeJoined(id=f"e{next(_IDS)}", at=at, actor="test", data=data)


def set_config(
    replicas: int = 3, image: str = "app:1", health: bool = False, **update: Any
) -> SetConfig:
    template: dict[str, Any] = {"image": image}
    if health:
        template["health"] = HEALTH
    return SetConfig.model_validate({"replicas": replicas, "template": template, "update": update})


def spec(name: str, config: SetConfig, labels: dict[str, str] | None = None) -> ev.SetSpecData:
    return ev.SetSpecData(name=name, labels=labels or {}, config=config)


def set_created(
    c: Cluster, name: str = "web", labels: dict[str, str] | None = None, **kw: Any
) -> ev.SetCreated:
    return ev.SetCreated(**c.env(), data=spec(name, set_config(**kw), labels))


def set_updated(
    c: Cluster, name: str = "web", labels: dict[str, str] | None = None, **kw: Any
) -> ev.SetUpdated:
    return ev.SetUpdated(**c.env(), data=spec(name, set_config(**kw), labels))


def set_scaled(c: Cluster, replicas: int, name: str = "web") -> ev.SetScaled:
    return ev.SetScaled(**c.env(), data=ev.SetScaledData(name=name, replicas=replicas))


def ref(c: Cluster, kind: type[ev.Event], name: str) -> ev.AnyEvent:
    event: ev.AnyEvent = kind.model_validate({**c.env(), "data": {"name": name}})  # type: ignore[assignment]
    return event


def settled(c: Cluster, rounds: int = 40) -> Cluster:
    """Run until nothing more is decided, reported or waited for (or ``rounds`` ran)."""
    for _ in range(rounds):
        done = c.step()
        reported = c.agents()
        c.tick()
        if not done and not reported:
            later = wake_at(c.view, c.now)
            if later is None:
                break
            c.now = max(c.now, later)
    return c


def running_set(replicas: int = 4, **kw: Any) -> Cluster:
    """A cluster whose Set ``web`` has ``replicas`` available members and a complete rollout."""
    c = Cluster()
    c.add(set_created(c, replicas=replicas, **kw))
    settled(c)
    assert c.state() == "complete"
    assert c.available() == replicas
    return c


def _of(decisions: list[AnyDecision], kind: type[Any]) -> list[Any]:
    return [d for d in decisions if isinstance(d, kind)]


# ---- members ----------------------------------------------------------------------------------


def test_a_new_set_gets_its_members_with_the_template_and_labels() -> None:
    c = Cluster()
    c.add(set_created(c, labels={"app": "web"}, replicas=3))
    decisions = c.decide()
    assert [type(d) for d in decisions] == [CreateMember] * 3
    assert [d.task for d in decisions] == ["web-1", "web-2", "web-3"]
    first = decisions[0]
    assert isinstance(first, CreateMember)
    assert first.labels == {"app": "web", SET_LABEL: "web", SET_REVISION_LABEL: "1"}
    assert first.config == c.view.sets["web"].config.template
    assert first.expected_revision == 0


def test_created_members_are_placed_started_and_complete_the_first_rollout() -> None:
    c = Cluster()
    c.add(set_created(c, replicas=4))
    c.step()
    placed = _of(c.step(), plan.Schedule)
    assert sorted(d.node for d in placed) == ["n1", "n1", "n2", "n2"]  # spread over two nodes
    c.agents()
    expected = c.view.revision("set", "web")
    [done] = c.step()
    assert done == CompleteRollout("web", 1, expected, c.now)
    assert c.state() == "complete"
    assert c.decide() == []


def test_scaling_up_creates_the_lowest_free_indexes() -> None:
    c = running_set(3)
    c.add(set_scaled(c, 5))
    assert [(type(d), d.task) for d in c.decide()] == [
        (CreateMember, "web-4"),
        (CreateMember, "web-5"),
    ]


def test_scaling_down_deletes_the_highest_indexes_first() -> None:
    c = running_set(5)
    c.add(set_scaled(c, 2))
    deleted = _of(c.decide(), DeleteMember)
    assert [d.task for d in deleted] == ["web-5", "web-4", "web-3"]
    assert deleted[0].reason == "scaled down to 2"


def test_scaling_down_deletes_unavailable_members_before_available_ones() -> None:
    c = running_set(4)
    c.add(ref(c, ev.TaskStopRequested, "web-2"))  # an operator stopped one
    c.add(set_scaled(c, 3))
    assert [d.task for d in _of(c.decide(), DeleteMember)] == ["web-2"]


def test_a_member_deleted_by_hand_is_re_created_expecting_its_last_revision() -> None:
    c = running_set(3)
    c.add(ref(c, ev.TaskDeleted, "web-2"))
    last = c.view.revision("task", "web-2")
    [again] = c.decide()
    assert isinstance(again, CreateMember)
    assert (again.task, again.expected_revision) == ("web-2", last)
    assert last > 0
    assert c.commit([again]) == [again]
    assert "web-2" in c.view.tasks


def test_a_re_created_member_decided_on_a_stale_view_is_refused() -> None:
    c = running_set(2)
    c.add(ref(c, ev.TaskDeleted, "web-1"))
    first, second = c.decide(), c.decide()  # two schedulers read the same view
    assert c.commit(first) == first
    assert c.commit(second) == []
    assert c.conflicts == 1
    assert len(c.members()) == 2


def test_two_schedulers_never_create_a_member_twice() -> None:
    c = Cluster()
    c.add(set_created(c, replicas=3))
    first, second = c.decide(), c.decide()
    c.commit(first)
    assert c.commit(second) == []
    assert [t.meta.name for t in c.members()] == ["web-1", "web-2", "web-3"]


def test_a_task_of_another_kind_holding_a_member_name_is_left_alone() -> None:
    c = Cluster()
    data = ev.TaskSpecData(name="web-1", config=TaskConfig(image="other"))
    c.add(ev.TaskCreated(**c.env(), data=data), set_created(c, replicas=1))
    [create] = _of(c.decide(), CreateMember)
    assert create.task == "web-2"


def test_the_members_of_a_deleted_set_are_deleted() -> None:
    c = running_set(3)
    c.add(ref(c, ev.SetDeleted, "web"))
    deleted = _of(c.decide(), DeleteMember)
    assert [d.task for d in deleted] == ["web-1", "web-2", "web-3"]
    assert deleted[0].reason == "set web deleted"
    settled(c)
    assert c.view.tasks == {}


def test_a_label_change_relabels_members_without_restarting_them() -> None:
    c = running_set(2)
    before = {t.meta.name: (t.status.node, t.status.epoch) for t in c.members()}
    c.add(set_updated(c, labels={"tier": "front"}, replicas=2))
    decisions = c.decide()
    assert [(type(d), d.action) for d in decisions] == [(UpdateMember, "relabeled")] * 2
    c.commit(decisions)
    for t in c.members():
        assert t.meta.labels == {"tier": "front", SET_LABEL: "web", SET_REVISION_LABEL: "1"}
        assert (t.status.node, t.status.epoch, t.status.phase) == (*before[t.meta.name], "running")
    assert c.view.sets["web"].status.template_revision == 1
    assert c.decide() == []


# ---- rollouts ---------------------------------------------------------------------------------


def _never_below(minimum: int) -> Callable[[Cluster], None]:
    def check(c: Cluster) -> None:
        assert c.available() >= minimum, f"{c.available()} available at {c.now}"

    return check


@pytest.mark.parametrize("min_healthy_s", [0, 5])
def test_stop_first_keeps_replicas_minus_max_parallel_available(min_healthy_s: float) -> None:
    kw: dict[str, Any] = {"max_parallel": 2, "min_healthy_s": min_healthy_s, "health": True}
    c = running_set(4, **kw)
    c.add(set_updated(c, replicas=4, image="app:2", **kw))
    replaced: list[int] = []

    def check(c: Cluster) -> None:
        _never_below(2)(c)
        unavailable = 4 - c.available()
        replaced.append(unavailable)
        assert unavailable <= 2

    c.run(40, check)
    assert c.state() == "complete"
    assert c.images() == ["app:2"] * 4
    assert c.available() == 4
    assert max(replaced) == 2  # it did replace two at a time
    assert [member_revision(t) for t in c.members()] == [2] * 4


def test_stop_first_waits_for_min_healthy_s_before_the_next_batch() -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "min_healthy_s": 30}
    c = running_set(2, **kw)
    c.add(set_updated(c, replicas=2, image="app:2", **kw))
    [first] = c.step()
    assert isinstance(first, UpdateMember)
    c.step()  # placed
    c.agents()  # started
    assert c.step() == []  # web-1 is not available for 30s yet
    assert wake_at(c.view, c.now) == c.now + timedelta(seconds=30)
    c.tick(30)
    [second] = c.step()
    assert isinstance(second, UpdateMember)
    assert second.task != first.task


def test_start_first_creates_extra_members_and_never_drops_below_replicas() -> None:
    kw: dict[str, Any] = {"max_parallel": 2, "order": "start-first", "health": True}
    c = running_set(4, **kw)
    c.add(set_updated(c, replicas=4, image="app:2", **kw))
    first = c.decide()
    assert [(type(d), d.task) for d in first] == [(CreateMember, "web-5"), (CreateMember, "web-6")]
    sizes: list[int] = []

    def check(c: Cluster) -> None:
        _never_below(4)(c)
        sizes.append(len(c.members()))
        assert len(c.members()) <= 6

    c.run(40, check)
    assert c.state() == "complete"
    assert c.images() == ["app:2"] * 4
    assert max(sizes) == 6


def test_a_restart_replaces_every_member_with_the_same_template() -> None:
    c = running_set(2, max_parallel=1)
    epochs = {t.meta.name: t.status.epoch for t in c.members()}
    c.add(ref(c, ev.SetRestarted, "web"))
    c.run(20, _never_below(1))
    assert c.state() == "complete"
    assert all(t.status.epoch == epochs[t.meta.name] + 1 for t in c.members())
    assert [member_revision(t) for t in c.members()] == [2, 2]


def test_a_rollout_completes_once() -> None:
    c = running_set(2)
    c.add(set_updated(c, replicas=2, image="app:2"))
    c.run(20)
    completions = [e for e in c.recorded if isinstance(e, ev.SetRolloutCompleted)]
    assert [e.data.revision for e in completions] == [1, 2]


@pytest.mark.parametrize("order", ["stop-first", "start-first"])
def test_an_unhealthy_new_member_fails_the_rollout_and_stops_it(order: str) -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "health": True, "order": order}
    c = running_set(3, **kw)
    c.bad_images.add("app:2")
    c.add(set_updated(c, replicas=3, image="app:2", **kw))
    c.run(10)
    s = c.view.sets["web"]
    assert s.status.rollout.state == "failed"
    reason = s.status.rollout.reason
    assert reason.startswith("task web-") and " is unhealthy" in reason
    c.run(10)
    # One member moved to app:2 (or one extra made), and none after the failure.
    assert len(_new_copies(c, "app:2")) == 1
    assert c.available() >= 2
    if order == "start-first":
        assert c.images() == ["app:1"] * 3  # the extra member is deleted: 3 replicas, not 4
    else:
        assert c.images().count("app:2") == 1


def _new_copies(c: Cluster, image: str) -> list[ev.AnyEvent]:
    """task.created / task.updated events that gave a member ``image``."""
    return [
        e
        for e in c.recorded
        if isinstance(e, ev.TaskCreated | ev.TaskUpdated) and e.data.config.image == image
    ]


def test_a_failed_new_member_fails_the_rollout() -> None:
    c = running_set(2, max_parallel=1)
    c.add(set_updated(c, replicas=2, image="app:2", max_parallel=1))
    [update] = c.step()
    assert isinstance(update, UpdateMember)
    data = ev.FailedData(name=update.task, reason="image app:2 not found")
    c.add(ev.TaskFailed(**c.env(), data=data))
    [failed] = c.decide()
    assert isinstance(failed, FailRollout)
    assert failed.reason == f"task {update.task} failed: image app:2 not found"
    assert (failed.revision, failed.expected_revision) == (2, c.view.revision("set", "web"))
    assert c.commit([failed]) == [failed]
    assert c.state() == "failed"
    assert c.decide() == []


@pytest.mark.parametrize(
    ("restart", "code", "fails"),
    [
        pytest.param("never", 0, True, id="never-exit-0"),
        pytest.param("never", 3, True, id="never-exit-3"),
        pytest.param("on-failure", 0, True, id="on-failure-exit-0"),
        pytest.param("on-failure", 3, False, id="on-failure-exit-3-restarts"),
        pytest.param("always", 3, False, id="always-restarts"),
    ],
)
def test_a_new_member_that_exits_for_good_fails_the_rollout(
    restart: str, code: int, fails: bool
) -> None:
    c = running_set(2, max_parallel=1)
    updated = SetConfig.model_validate(
        {
            "replicas": 2,
            "template": {"image": "app:2", "restart": {"policy": restart}},
            "update": {"max_parallel": 1},
        }
    )
    c.add(ev.SetUpdated(**c.env(), data=spec("web", updated)))
    [update] = c.step()
    assert isinstance(update, UpdateMember)
    c.step()  # placed
    c.agents()  # started
    task = c.view.tasks[update.task]
    where = {"name": update.task, "node": task.status.node, "epoch": task.status.epoch}
    c.add(ev.TaskExited(**c.env(), data=ev.ExitedData(**where, exit_code=code)))
    failures = [d for d in c.decide() if isinstance(d, FailRollout)]
    if fails:
        assert [f.reason for f in failures] == [
            f"task {update.task} exited with code {code} and is not restarted"
        ]
    else:
        assert failures == []


def test_a_rollout_past_its_deadline_fails() -> None:
    c = running_set(2, max_parallel=1)
    c.add(set_updated(c, replicas=2, image="app:2", max_parallel=1, deadline_s=60))
    c.step()  # web-1 moved to app:2; nobody places it (no step, no agent)
    deadline = c.view.sets["web"].status.rollout.started_at + timedelta(seconds=60)  # type: ignore[operator]
    assert wake_at(c.view, c.now) == deadline
    c.tick(60)
    failed = _of(c.decide(), FailRollout)
    assert [d.reason for d in failed] == ["rollout to revision 2 did not complete within 60s"]


def test_auto_rollback_returns_to_the_previous_template() -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "health": True, "auto_rollback": True}
    c = running_set(3, **kw)
    c.bad_images.add("app:2")
    c.add(set_updated(c, replicas=3, image="app:2", **kw))
    rollback: list[Rollback] = []
    for _ in range(40):
        rollback.extend(_of(c.step(), Rollback))
        c.agents()
        c.tick()
        _never_below(2)(c)
    [back] = rollback
    assert back.cause.startswith("automatic rollback: task web-")
    assert back.config.template.image == "app:1"
    assert back.expected_revision < c.view.revision("set", "web")
    s = c.view.sets["web"]
    assert (s.status.template_revision, s.status.rollout.state) == (3, "complete")
    assert s.history[-1].cause == back.cause
    assert c.images() == ["app:1"] * 3
    assert [member_revision(t) for t in c.members()] == [3] * 3
    # The members that never ran app:2 only got the new revision label: never restarted.
    moved = {e.data.name for e in _new_copies(c, "app:2")}
    assert len(moved) == 1
    kept = [t.meta.name for t in c.members() if t.meta.name not in moved]
    placements = Counter(e.data.name for e in c.recorded if isinstance(e, ev.TaskScheduled))
    assert [placements[name] for name in kept] == [1, 1]


def test_a_failed_automatic_rollback_is_not_rolled_back_again() -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "health": True, "auto_rollback": True}
    c = running_set(2, **kw)
    c.bad_images.update({"app:1", "app:2"})  # the old template broke meanwhile too
    c.add(set_updated(c, replicas=2, image="app:2", **kw))
    c.run(40)
    s = c.view.sets["web"]
    assert s.status.template_revision == 3
    assert s.status.rollout.state == "failed"
    assert s.history[-1].cause.startswith("automatic rollback")


def test_without_auto_rollback_a_failed_rollout_stays_failed() -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "health": True}
    c = running_set(2, **kw)
    c.bad_images.add("app:2")
    c.add(set_updated(c, replicas=2, image="app:2", **kw))
    c.run(20)
    s = c.view.sets["web"]
    assert (s.status.template_revision, s.status.rollout.state) == (2, "failed")


def test_a_failed_rollout_still_re_creates_a_deleted_member() -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "health": True}
    c = running_set(2, **kw)
    c.bad_images.add("app:2")
    c.add(set_updated(c, replicas=2, image="app:2", **kw))
    c.run(10)
    assert c.state() == "failed"
    c.add(ref(c, ev.TaskDeleted, "web-2"))
    assert [(type(d), d.task) for d in c.decide()] == [(CreateMember, "web-2")]


def test_rollback_target_skips_revisions_with_the_same_template() -> None:
    c = running_set(1, max_parallel=1)
    c.add(set_updated(c, replicas=1, image="app:2"))
    c.add(ref(c, ev.SetRestarted, "web"))
    target = sets.rollback_target(c.view.sets["web"])
    assert target is not None
    assert (target.revision, target.template.image) == (1, "app:1")


# ---- drain and the controller together ----------------------------------------------------------


def test_a_drain_and_a_rollout_together_keep_max_parallel() -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "health": True}
    c = running_set(4, **kw)
    c.add(joined("n3", at=c.now))
    data = ev.NodeDrainData(name="n1")
    c.add(ev.NodeDraining(**c.env(), data=data))
    c.add(set_updated(c, replicas=4, image="app:2", **kw))
    decisions = c.decide()
    taken = [d for d in decisions if isinstance(d, plan.Evict | UpdateMember)]
    assert len(taken) == 1
    c.run(60, _never_below(3))
    assert c.state() == "complete"
    assert all(t.status.node != "n1" for t in c.members())
    assert c.images() == ["app:2"] * 4


# ---- more edges -------------------------------------------------------------------------------


def test_scaling_up_during_a_rollout_creates_members_at_the_new_revision() -> None:
    kw: dict[str, Any] = {"max_parallel": 1}
    c = running_set(2, **kw)
    c.add(set_updated(c, replicas=4, image="app:2", **kw))
    decisions = c.decide()
    created = _of(decisions, CreateMember)
    assert [(d.task, d.config.image, d.labels[SET_REVISION_LABEL]) for d in created] == [
        ("web-3", "app:2", "2"),
        ("web-4", "app:2", "2"),
    ]
    # Two replicas are missing already: no budget left to take an available one away.
    assert _of(decisions, UpdateMember) == []
    c.run(30, _never_below(2))
    assert (c.state(), c.images()) == ("complete", ["app:2"] * 4)


def test_stop_first_replaces_an_unavailable_old_member_without_using_the_budget() -> None:
    kw: dict[str, Any] = {"max_parallel": 1}
    c = running_set(3, **kw)
    c.add(ref(c, ev.TaskStopRequested, "web-3"))
    c.add(set_updated(c, replicas=3, image="app:2", **kw))
    # web-3 is not available: replacing it is free; the Set misses one replica: nothing else.
    assert [d.task for d in _of(c.decide(), UpdateMember)] == ["web-3"]


def test_start_first_deletes_an_old_member_that_is_not_available_at_once() -> None:
    kw: dict[str, Any] = {"max_parallel": 1, "order": "start-first"}
    c = running_set(3, **kw)
    c.add(ev.TaskFailed(**c.env(), data=ev.FailedData(name="web-2", reason="crashed")))
    c.add(set_updated(c, replicas=3, image="app:2", **kw))
    # web-2 costs nothing to drop; then 2 of 3 members are old: room for two new ones (3 + 1).
    assert [(type(d), d.task) for d in c.decide()] == [
        (DeleteMember, "web-2"),
        (CreateMember, "web-4"),
        (CreateMember, "web-5"),
    ]


def test_a_task_labelled_with_the_set_but_not_named_like_a_member_is_left_alone() -> None:
    c = running_set(1)
    data = ev.TaskSpecData(name="stray", labels={SET_LABEL: "web"}, config=TaskConfig(image="x"))
    c.add(ev.TaskCreated(**c.env(), data=data))
    c.add(set_scaled(c, 0))
    assert [d.task for d in _of(c.decide(), DeleteMember)] == ["web-1"]


def test_nothing_to_wait_for_once_every_rollout_is_complete() -> None:
    c = running_set(2, min_healthy_s=10)
    assert wake_at(c.view, c.now) is None


def test_the_round_wakes_up_at_the_next_drain_deadline() -> None:
    c = running_set(2)
    soon = c.now + timedelta(minutes=1)
    c.add(ev.NodeDraining(**c.env(), data=ev.NodeDrainData(name="n1", deadline_at=soon)))
    assert wake_at(c.view, c.now) == soon
    assert wake_at(c.view, soon) is None


def test_to_event_records_each_set_decision() -> None:
    c = running_set(1)
    s = c.view.sets["web"]
    labels = {SET_LABEL: "web", SET_REVISION_LABEL: "1"}
    template = s.config.template
    cases: list[tuple[sets.SetDecision, type[ev.Event]]] = [
        (CreateMember("web", "web-2", labels, template, 0, c.now), ev.TaskCreated),
        (UpdateMember("web", "web-1", labels, template, 5, c.now), ev.TaskUpdated),
        (DeleteMember("web", "web-1", "scaled down to 0", 5, c.now), ev.TaskDeleted),
        (CompleteRollout("web", 1, 3, c.now), ev.SetRolloutCompleted),
        (FailRollout("web", 1, "task web-1 failed: x", 3, c.now), ev.SetRolloutFailed),
        (Rollback("web", {}, s.config, "automatic rollback: x", 3, c.now), ev.SetUpdated),
    ]
    for decision, kind in cases:
        event = sets.to_event(decision, event_id="x", actor="a")
        assert isinstance(event, kind)
        assert (event.id, event.actor, event.at) == ("x", "a", c.now)
        assert ev.event_name(event) == getattr(decision, "task", "web")
        assert sets.describe(decision).startswith("set web")
