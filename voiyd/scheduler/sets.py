"""CORE: the Set controller: from the view and ``now``, what each Set's member tasks need.

For every Set it creates missing members (``<set>-<n>``, the lowest free index), deletes excess
ones (highest index first, unavailable and outdated before available), re-creates a member
deleted by hand, relabels members when the Set's labels change, and moves members to a new
template revision (rollout) as ``docs/day2.md`` says: ``stop-first`` replaces members while fewer
than ``max_parallel`` are missing from ``replicas`` available ones; ``start-first`` creates up to
``max_parallel`` extra members first and deletes an old one only when the Set stays at
``replicas`` available without it. It records the end of a rollout (complete or failed, then
stops replacing) and, with ``auto_rollback``, rolls a failed one back in the next round. Members
of a Set that no longer exists are deleted.

Every decision carries the revision it was decided against (the task's subject, or the Set's),
sent as the expected revision: two schedulers never create a member twice, and a decision made
on a stale view is refused by the log. A round makes at most one decision per task and one per
Set, so its appends need no order. Pure: no I/O, no clock (``now`` comes in), no randomness.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, assert_never

from voiyd.api.members import (
    available,
    member_index,
    member_labels,
    member_name,
    member_revision,
    previous_template,
    running_since,
)
from voiyd.api.specs import SET_LABEL, SET_RESTART_LABEL, SET_REVISION_LABEL, SetConfig, TaskConfig
from voiyd.api.views import SetRevision, SetView, TaskView
from voiyd.events import models as ev

Action = Literal["created", "updated", "relabeled", "deleted", "completed", "failed", "rollback"]
ACTIONS: tuple[Action, ...] = (
    "created",
    "updated",
    "relabeled",
    "deleted",
    "completed",
    "failed",
    "rollback",
)
AUTO_ROLLBACK = "automatic rollback"
_CAUSE_MAX = 1024  # SetSpecData.cause's limit


class SetsView(Protocol):
    """What the controller reads: tasks and Sets by name, and every subject's last revision."""

    @property
    def tasks(self) -> Mapping[str, TaskView]: ...

    @property
    def sets(self) -> Mapping[str, SetView]: ...

    def revision(self, kind: str, name: str) -> int: ...


@dataclass(frozen=True, slots=True)
class CreateMember:
    set_name: str
    task: str
    labels: dict[str, str]
    config: TaskConfig
    expected_revision: int
    """The task subject's last revision: 0 for a new name, the deleted task's last event else."""
    at: datetime
    action: Action = "created"


@dataclass(frozen=True, slots=True)
class UpdateMember:
    """A member moved to another template revision, or relabeled (same config: no restart)."""

    set_name: str
    task: str
    labels: dict[str, str]
    config: TaskConfig
    expected_revision: int
    at: datetime
    action: Action = "updated"


@dataclass(frozen=True, slots=True)
class DeleteMember:
    set_name: str
    task: str
    reason: str
    expected_revision: int
    at: datetime
    action: Action = "deleted"


@dataclass(frozen=True, slots=True)
class CompleteRollout:
    set_name: str
    revision: int
    expected_revision: int
    at: datetime
    action: Action = "completed"


@dataclass(frozen=True, slots=True)
class FailRollout:
    set_name: str
    revision: int
    reason: str
    expected_revision: int
    at: datetime
    action: Action = "failed"


@dataclass(frozen=True, slots=True)
class Rollback:
    """``set.updated`` back to an earlier template after a failed rollout."""

    set_name: str
    labels: dict[str, str]
    config: SetConfig
    cause: str
    expected_revision: int
    at: datetime
    action: Action = "rollback"


SetDecision = CreateMember | UpdateMember | DeleteMember | CompleteRollout | FailRollout | Rollback
MemberDecision = CreateMember | UpdateMember | DeleteMember


def to_event(d: SetDecision, *, event_id: str, actor: str) -> ev.AnyEvent:
    """The event that records ``d`` (validated: a bad one raises ``ValueError``)."""
    env = {"id": event_id, "at": d.at, "actor": actor}
    match d:
        case CreateMember():
            spec = ev.TaskSpecData(name=d.task, labels=d.labels, config=d.config)
            return ev.TaskCreated(**env, data=spec)
        case UpdateMember():
            spec = ev.TaskSpecData(name=d.task, labels=d.labels, config=d.config)
            return ev.TaskUpdated(**env, data=spec)
        case DeleteMember():
            return ev.TaskDeleted(**env, data=ev.TaskRef(name=d.task))
        case CompleteRollout():
            done = ev.RolloutData(name=d.set_name, revision=d.revision)
            return ev.SetRolloutCompleted(**env, data=done)
        case FailRollout():
            why = ev.RolloutFailedData(name=d.set_name, revision=d.revision, reason=d.reason)
            return ev.SetRolloutFailed(**env, data=why)
        case Rollback():
            back = ev.SetSpecData(name=d.set_name, labels=d.labels, config=d.config, cause=d.cause)
            return ev.SetUpdated(**env, data=back)
        case _:
            assert_never(d)


def describe(d: SetDecision) -> str:
    """One line for the log: what was decided about which Set or task."""
    match d:
        case CreateMember() | UpdateMember():
            rev = d.labels.get(SET_REVISION_LABEL, "?")
            return f"set {d.set_name}: task {d.task} {d.action} (revision {rev})"
        case DeleteMember():
            return f"set {d.set_name}: task {d.task} deleted ({d.reason})"
        case CompleteRollout():
            return f"set {d.set_name}: rollout to revision {d.revision} complete"
        case FailRollout():
            return f"set {d.set_name}: rollout to revision {d.revision} failed: {d.reason}"
        case Rollback():
            return f"set {d.set_name}: {d.cause}"
        case _:
            assert_never(d)


def by_set(tasks: Iterable[TaskView]) -> dict[str, list[TaskView]]:
    """Every Set name found on tasks' ``voiyd.io/set`` label -> its members, by index."""
    groups: defaultdict[str, list[TaskView]] = defaultdict(list)
    for task in tasks:
        name = task.meta.labels.get(SET_LABEL)
        if name is not None:
            groups[name].append(task)
    return {name: sorted(found, key=_by_index(name)) for name, found in groups.items()}


def _by_index(set_name: str) -> Callable[[TaskView], tuple[int, str]]:
    def key(t: TaskView) -> tuple[int, str]:
        return (member_index(set_name, t.meta.name) or 0, t.meta.name)

    return key


def shortfall(s: SetView, found: Iterable[TaskView], now: datetime, gone: frozenset[str]) -> int:
    """How many of ``replicas`` are not available now (``gone``: evicted this round)."""
    ready = sum(1 for t in found if _available(s, t, now, gone))
    return max(0, s.config.replicas - ready)


def _available(s: SetView, t: TaskView, now: datetime, gone: frozenset[str]) -> bool:
    return t.meta.name not in gone and available(t, s.config.update.min_healthy_s, now)


_OWN_LABELS = (SET_REVISION_LABEL, SET_RESTART_LABEL)
"""Labels a member keeps from its own template revision until it moves to another one."""


def kept_labels(s: SetView, t: TaskView) -> dict[str, str]:
    """The labels member ``t`` should carry at the revision it runs: the Set's current labels,
    with its own template revision and restart labels."""
    labels = {**s.meta.labels, SET_LABEL: s.meta.name}
    for key in _OWN_LABELS:
        labels.pop(key, None)
        if key in t.meta.labels:
            labels[key] = t.meta.labels[key]
    return dict(sorted(labels.items()))


@dataclass
class _Round:
    """One Set's round: its members, what is decided so far, and the availability it leaves."""

    s: SetView
    view: SetsView
    now: datetime
    gone: frozenset[str]
    members: list[TaskView]
    """Indexed members (``<set>-<n>``), by index; others with the label are not managed."""
    out: list[SetDecision] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    """Tasks with a decision this round: nothing else is decided about them."""
    down: set[str] = field(default_factory=set)
    """Members this round's decisions make unavailable (deleted, or replaced by a new copy)."""

    @property
    def name(self) -> str:
        return self.s.meta.name

    @property
    def rev(self) -> int:
        return self.s.status.template_revision

    def index(self, t: TaskView) -> int:
        return member_index(self.name, t.meta.name) or 0

    def is_available(self, t: TaskView) -> bool:
        return t.meta.name not in self.down and _available(self.s, t, self.now, self.gone)

    def is_updated(self, t: TaskView) -> bool:
        return member_revision(t) == self.rev

    def live(self) -> list[TaskView]:
        """Members not deleted this round."""
        deleted = {d.task for d in self.out if isinstance(d, DeleteMember)}
        return [t for t in self.members if t.meta.name not in deleted]

    def free(self, t: TaskView) -> bool:
        return t.meta.name not in self.taken and t.meta.name not in self.gone

    def restarts(self, t: TaskView) -> bool:
        """Whether moving ``t`` to the current revision replaces it (``fold._updated``): its
        config or restart label changes; otherwise it only gets the new revision label."""
        want = member_labels(self.s).get(SET_RESTART_LABEL)
        return t.config != self.s.config.template or t.meta.labels.get(SET_RESTART_LABEL) != want

    def create(self, count: int) -> None:
        for index in _free_indexes(self.name, self.view.tasks, self.taken, count):
            name = member_name(self.name, index)
            self.taken.add(name)
            self.out.append(
                CreateMember(
                    self.name,
                    name,
                    member_labels(self.s),
                    self.s.config.template,
                    self.view.revision("task", name),
                    self.now,
                )
            )

    def delete(self, t: TaskView, reason: str) -> None:
        self.taken.add(t.meta.name)
        self.down.add(t.meta.name)
        name = t.meta.name
        self.out.append(
            DeleteMember(self.name, name, reason, self.view.revision("task", name), self.now)
        )

    def replace(self, t: TaskView) -> None:
        """Move ``t`` to the current revision (a new copy unless only its labels change)."""
        self.taken.add(t.meta.name)
        if self.restarts(t):
            self.down.add(t.meta.name)
        name = t.meta.name
        self.out.append(
            UpdateMember(
                self.name,
                name,
                member_labels(self.s),
                self.s.config.template,
                self.view.revision("task", name),
                self.now,
            )
        )

    def drop_key(self, t: TaskView) -> tuple[bool, bool, int]:
        """Scale-down order: unavailable, then outdated, then the highest index first."""
        return (self.is_available(t), self.is_updated(t), -self.index(t))


def _free_indexes(
    set_name: str, tasks: Mapping[str, TaskView], taken: set[str], count: int
) -> Iterator[int]:
    """The ``count`` lowest indexes whose name no task uses (deleted names are free again)."""
    index = 0
    while count > 0:
        index += 1
        name = member_name(set_name, index)
        if name not in tasks and name not in taken:
            count -= 1
            yield index


def _scale(r: _Round, replicas: int) -> None:
    """Create missing members, delete excess ones (down to ``replicas``)."""
    live = r.live()
    if len(live) < replicas:
        r.create(replicas - len(live))
        return
    excess = len(live) - replicas
    if not excess:
        return  # the common case: no sort of every member
    for t in sorted((t for t in live if r.free(t)), key=r.drop_key)[:excess]:
        r.delete(t, f"scaled down to {replicas}")


def _stop_first(r: _Round) -> None:
    """Replace outdated members while fewer than ``max_parallel`` replicas are unavailable."""
    _scale(r, r.s.config.replicas)
    live = r.live()
    budget = r.s.config.update.max_parallel - shortfall(r.s, live, r.now, r.gone | r.down)
    outdated = [t for t in live if not r.is_updated(t) and r.free(t)]
    for t in sorted(outdated, key=lambda t: (r.is_available(t), r.index(t))):
        if not r.is_available(t) or not r.restarts(t):
            r.replace(t)  # costs no availability: not available anyway, or only relabeled
        elif budget > 0:
            r.replace(t)
            budget -= 1


def _start_first(r: _Round) -> None:
    """Surge up to ``max_parallel`` new members; drop old ones the Set can do without."""
    replicas = r.s.config.replicas
    live = r.live()
    outdated = [t for t in live if not r.is_updated(t) and r.free(t)]
    for t in outdated:
        if not r.restarts(t):
            r.replace(t)  # already runs the template: it only gets the new revision label
    ready = sum(1 for t in live if r.is_available(t))
    outdated = [t for t in outdated if r.free(t)]
    for t in sorted(outdated, key=r.drop_key):
        if not r.is_available(t):
            r.delete(t, f"replaced by revision {r.rev}")
        elif ready - 1 >= replicas:
            r.delete(t, f"replaced by revision {r.rev}")
            ready -= 1
    live = r.live()
    updated = [t for t in live if r.is_updated(t) or (t.meta.name in r.taken)]
    if len(updated) > replicas:
        extra = sorted((t for t in updated if r.free(t)), key=r.drop_key)
        for t in extra[: len(updated) - replicas]:
            r.delete(t, f"scaled down to {replicas}")
        return
    room = replicas + r.s.config.update.max_parallel - len(live)
    r.create(max(0, min(replicas - len(updated), room)))


def _relabel(r: _Round) -> None:
    """Members whose labels differ from the Set's (label-only: the same config, no restart)."""
    for t in r.members:
        if not r.free(t):
            continue
        want = kept_labels(r.s, t)
        if t.meta.labels != want:
            r.taken.add(t.meta.name)
            revision = r.view.revision("task", t.meta.name)
            r.out.append(
                UpdateMember(r.name, t.meta.name, want, t.config, revision, r.now, "relabeled")
            )


def rollout_failure(r: _Round) -> str | None:
    """Why the current rollout has failed, or None."""
    for t in r.members:
        if not r.is_updated(t):
            continue
        s = t.status
        if s.phase == "failed":
            return f"task {t.meta.name} failed: {s.reason or 'no reason given'}"
        if s.phase == "running" and s.healthy is False:
            return f"task {t.meta.name} is unhealthy: {s.reason or 'health check failed'}"
        if s.phase == "exited" and _stays_exited(t):
            return f"task {t.meta.name} exited with code {s.exit_code} and is not restarted"
    deadline = _deadline(r.s)
    if deadline is not None and r.now >= deadline:
        limit = r.s.config.update.deadline_s
        return f"rollout to revision {r.rev} did not complete within {limit:g}s"
    return None


def _stays_exited(t: TaskView) -> bool:
    """An exited member its restart policy will not start again (a Set's tasks should run)."""
    policy = t.config.restart.policy
    return policy == "never" or (policy == "on-failure" and t.status.exit_code == 0)


def _deadline(s: SetView) -> datetime | None:
    started = s.status.rollout.started_at
    if started is None:
        return None
    return started + timedelta(seconds=s.config.update.deadline_s)


def _complete(r: _Round) -> bool:
    replicas = r.s.config.replicas
    if len(r.members) != replicas or not all(r.is_updated(t) for t in r.members):
        return False
    return sum(1 for t in r.members if r.is_available(t)) >= replicas


def rollback_target(s: SetView) -> SetRevision | None:
    """The template a failed rollout goes back to: the latest earlier, different one.

    None when there is none, or when the failed revision was itself an automatic rollback (two
    bad templates must not roll back and forth forever).
    """
    rev = s.status.template_revision
    current = next((h for h in reversed(s.history) if h.revision == rev), None)
    if current is not None and current.cause.startswith(AUTO_ROLLBACK):
        return None
    return previous_template(s)


def _rollback(s: SetView, view: SetsView, now: datetime) -> Rollback | None:
    target = rollback_target(s)
    if target is None:
        return None
    cause = f"{AUTO_ROLLBACK}: {s.status.rollout.reason}"[:_CAUSE_MAX]
    config = s.config.model_copy(update={"template": target.template})
    return Rollback(
        s.meta.name, dict(s.meta.labels), config, cause, view.revision("set", s.meta.name), now
    )


def _indexed(set_name: str, found: Sequence[TaskView]) -> list[TaskView]:
    return [t for t in found if member_index(set_name, t.meta.name) is not None]


def control_set(
    s: SetView,
    found: Sequence[TaskView],
    view: SetsView,
    now: datetime,
    gone: frozenset[str] = frozenset(),
) -> list[SetDecision]:
    """One Set's decisions; ``found`` its members, ``gone`` tasks evicted this round."""
    r = _Round(s, view, now, gone, _indexed(s.meta.name, found))
    rollout = s.status.rollout
    current = rollout.revision == r.rev
    set_revision = view.revision("set", s.meta.name)
    if current and rollout.state == "progressing":
        if (reason := rollout_failure(r)) is not None:
            return [FailRollout(r.name, r.rev, reason, set_revision, now)]
        if _complete(r):
            r.out.append(CompleteRollout(r.name, r.rev, set_revision, now))
        elif s.config.update.order == "start-first" and not all(map(r.is_updated, r.members)):
            _start_first(r)
        else:
            _stop_first(r)
    elif current and rollout.state == "failed" and s.config.update.auto_rollback:
        if (back := _rollback(s, view, now)) is not None:
            return [back]  # the members follow the new revision from the next round
        _scale(r, s.config.replicas)
    else:
        _scale(r, s.config.replicas)
    _relabel(r)
    return r.out


def control(view: SetsView, now: datetime, gone: frozenset[str] = frozenset()) -> list[SetDecision]:
    """Every Set's decisions, Sets by name; members of deleted Sets are deleted.

    ``gone``: tasks evicted in this round (by a drain): they count as unavailable and get no
    other decision.
    """
    groups = by_set(view.tasks.values())
    out: list[SetDecision] = []
    for name in sorted(groups.keys() - view.sets.keys()):
        for t in _indexed(name, groups[name]):
            if t.meta.name not in gone:
                revision = view.revision("task", t.meta.name)
                out.append(DeleteMember(name, t.meta.name, f"set {name} deleted", revision, now))
    for name, s in sorted(view.sets.items()):
        out.extend(control_set(s, groups.get(name, []), view, now, gone))
    return out


def wake_at(view: SetsView, now: datetime) -> datetime | None:
    """The next time a decision may change with no new event: a member turning available after
    ``min_healthy_s``, or a rollout reaching its deadline."""
    times: list[datetime] = []
    groups = by_set(view.tasks.values())
    for name, s in view.sets.items():
        if s.status.rollout.state == "progressing" and (deadline := _deadline(s)) is not None:
            times.append(deadline)
        wait = timedelta(seconds=s.config.update.min_healthy_s)
        for t in groups.get(name, []):
            since = running_since(t)
            if since is not None and wait:
                times.append(since + wait)
    future = [t for t in times if t > now]
    return min(future) if future else None
