"""CORE: one scheduling round: the whole view in, the decisions to append out.

``plan`` evicts tasks whose node is lost or gone, whose node is draining (a Set's members only
within the Set's ``max_parallel`` budget until the drain's deadline), or whose node's labels no
longer match their ``node_selector``; then it places every task that should run and has no node
(pending or unschedulable), oldest revision first, on the node of any volume it mounts. Each
decision carries the task's revision, to be sent as the expected revision: a task that changed
meanwhile (another scheduler placed it, the user stopped it) is never placed twice. Placements
made earlier in the same plan count on their node, so one plan never over-commits. A task already
unschedulable for the same reason gets no new event (the log would only repeat itself).

Placing N tasks on M nodes naively costs N*M scores; tasks with equal ``Demand`` share a heap of
nodes instead. Within a plan a node only fills up, so its score and fit only get worse: an entry
whose node changed since it was scored is an upper bound, re-scored when it reaches the top.
Pure: ``now`` and event ids come in as parameters.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, assert_never

from voiyd.api.members import available
from voiyd.api.specs import SET_LABEL
from voiyd.api.views import NodeView, SetView, TaskView, VolumeView
from voiyd.events import models as ev
from voiyd.scheduler.placement import (
    Demand,
    NodeState,
    Placed,
    Unschedulable,
    fit_problem,
    holds_resources,
    place_demand,
    score,
    selector,
    static_problem,
)
from voiyd.scheduler.sets import by_set, shortfall

Outcome = Literal["scheduled", "unschedulable", "evicted"]


class ClusterView(Protocol):
    """What a plan reads: every task, node, Set and volume by name."""

    @property
    def tasks(self) -> Mapping[str, TaskView]: ...

    @property
    def nodes(self) -> Mapping[str, NodeView]: ...

    @property
    def sets(self) -> Mapping[str, SetView]: ...

    @property
    def volumes(self) -> Mapping[str, VolumeView]: ...


@dataclass(frozen=True, slots=True)
class Schedule:
    task: str
    node: str
    epoch: int
    score: float
    expected_revision: int
    at: datetime
    outcome: Outcome = "scheduled"


@dataclass(frozen=True, slots=True)
class MarkUnschedulable:
    task: str
    reason: str
    expected_revision: int
    at: datetime
    outcome: Outcome = "unschedulable"


@dataclass(frozen=True, slots=True)
class Evict:
    task: str
    node: str
    epoch: int
    reason: str
    expected_revision: int
    at: datetime
    outcome: Outcome = "evicted"


Decision = Schedule | MarkUnschedulable | Evict


def to_event(decision: Decision, *, event_id: str, actor: str) -> ev.AnyEvent:
    """The event that records ``decision``."""
    match decision:
        case Schedule(task=task, node=node, epoch=epoch, at=at):
            data = ev.PlacementData(name=task, node=node, epoch=epoch)
            return ev.TaskScheduled(id=event_id, at=at, actor=actor, data=data)
        case MarkUnschedulable(task=task, reason=reason, at=at):
            why = ev.UnschedulableData(name=task, reason=reason)
            return ev.TaskUnschedulable(id=event_id, at=at, actor=actor, data=why)
        case Evict(task=task, node=node, epoch=epoch, reason=reason, at=at):
            out = ev.EvictedData(name=task, node=node, epoch=epoch, reason=reason)
            return ev.TaskEvicted(id=event_id, at=at, actor=actor, data=out)
        case _:
            assert_never(decision)


class Placer:
    """Places demands one after another on a set of nodes, as ``place_demand`` would each time.

    ``place`` gives the same answer as ``place_demand(d, nodes)`` over the current states, then
    records the placement on the chosen node.
    """

    def __init__(self, states: Sequence[NodeState]) -> None:
        self.states = {s.name: s for s in states}
        self._version = dict.fromkeys(self.states, 0)
        self._heaps: dict[Demand, list[tuple[float, str, int]]] = {}
        self._placements = 0
        self._reasons: dict[Demand, tuple[int, Unschedulable]] = {}

    def _heap(self, d: Demand) -> list[tuple[float, str, int]]:
        heap = self._heaps.get(d)
        if heap is None:
            sel = selector(d.selector)
            heap = [
                (-score(d, s), s.name, self._version[s.name])
                for s in self.states.values()
                if not d.missing and static_problem(d, sel, s) is None and fit_problem(d, s) is None
            ]
            heapq.heapify(heap)
            self._heaps[d] = heap
        return heap

    def _best(self, d: Demand) -> Placed | None:
        heap = self._heap(d)
        while heap:
            neg_score, name, version = heap[0]
            state = self.states[name]
            if version == self._version[name]:
                return Placed(name, -neg_score)
            if fit_problem(d, state) is not None:
                heapq.heappop(heap)  # a node only fills up during a plan: it will not fit again
            else:
                heapq.heapreplace(heap, (-score(d, state), name, self._version[name]))
        return None

    def _scan(self, d: Demand) -> Placed | Unschedulable:
        """A full scan: it explains why nothing fits (cached until the next placement)."""
        cached = self._reasons.get(d)
        if cached is not None and cached[0] == self._placements:
            return cached[1]
        outcome = place_demand(d, list(self.states.values()))
        if isinstance(outcome, Unschedulable):
            self._reasons[d] = (self._placements, outcome)
        return outcome

    def place(self, d: Demand) -> Placed | Unschedulable:
        outcome = self._best(d) or self._scan(d)
        if isinstance(outcome, Placed):
            self.states[outcome.node] = self.states[outcome.node].with_demands((d,))
            self._version[outcome.node] += 1
            self._placements += 1
        return outcome


def node_states(nodes: Mapping[str, NodeView], tasks: Mapping[str, TaskView]) -> list[NodeState]:
    """Every node with the demands of the tasks that hold resources on it, by node name."""
    demands: defaultdict[str, list[Demand]] = defaultdict(list)
    for task in tasks.values():
        node = task.status.node
        if node is not None and node in nodes and holds_resources(task):
            demands[node].append(Demand.of(task))
    return [NodeState.of(nodes[name], demands.get(name, ())) for name in sorted(nodes)]


def _evict(task: TaskView, reason: str, now: datetime) -> Evict:
    node = task.status.node
    assert node is not None
    return Evict(task.meta.name, node, task.status.epoch, reason, task.revision, now)


def _unconditional(task: TaskView, nodes: Mapping[str, NodeView]) -> str | None:
    """Why ``task`` must leave its node whatever its Set (not for a drain), or None."""
    name = task.status.node
    node = nodes.get(name) if name is not None else None
    if node is None:
        return f"node {name} deleted"
    if node.phase == "lost":
        return f"node {name} lost"
    if node.phase == "draining":
        return None
    sel = task.config.node_selector
    if sel and not selector(sel).matches(node.labels):
        return f"node {name} no longer matches node_selector {sel}"
    return None


class _Drain:
    """Evictions from draining nodes: a Set's members within its ``max_parallel`` budget."""

    def __init__(self, view: ClusterView, now: datetime) -> None:
        self.view = view
        self.now = now
        self.groups: dict[str, list[TaskView]] | None = None
        """Members by Set, found on the first member that needs a budget."""
        self.spent: Counter[str] = Counter()
        """Available members evicted this round, by Set."""
        self.short: dict[str, int] = {}
        """Replicas each Set misses before this round (computed once)."""

    def allows(self, task: TaskView, node: NodeView) -> bool:
        deadline = node.drain_deadline
        if deadline is not None and self.now >= deadline:
            return True  # past the deadline everything left goes
        set_name = task.meta.labels.get(SET_LABEL)
        s = self.view.sets.get(set_name) if set_name is not None else None
        if s is None or not available(task, s.config.update.min_healthy_s, self.now):
            return True  # not a Set's member, or not available: moving it costs the Set nothing
        name = s.meta.name
        if name not in self.short:
            if self.groups is None:
                self.groups = by_set(self.view.tasks.values())
            self.short[name] = shortfall(s, self.groups.get(name, []), self.now, frozenset())
        if self.short[name] + self.spent[name] >= s.config.update.max_parallel:
            return False
        self.spent[name] += 1
        return True


def evictions(view: ClusterView, now: datetime) -> list[Evict]:
    """Evict tasks whose node is lost, gone, draining, or no longer matches their selector.

    A not-ready node keeps its tasks. A draining node's tasks leave at once, except a Set's
    available members: only while the Set misses fewer than ``max_parallel`` of its replicas
    (counting the evictions of this round), until the node's drain deadline.
    """
    drain = _Drain(view, now)
    found: list[Evict] = []
    placed = (t for t in view.tasks.values() if t.status.node is not None and holds_resources(t))
    for task in sorted(placed, key=_order):
        reason = _unconditional(task, view.nodes)
        if reason is not None:
            found.append(_evict(task, reason, now))
            continue
        node = view.nodes[task.status.node or ""]
        if node.phase == "draining" and drain.allows(task, node):
            found.append(_evict(task, f"node {node.name} draining", now))
    return found


def _order(task: TaskView) -> tuple[int, str]:
    return (task.revision, task.meta.name)


def wants_node(task: TaskView) -> bool:
    """A task that should run and has no node."""
    s = task.status
    return s.desired == "running" and s.node is None and s.phase in ("pending", "unschedulable")


def _decide(task: TaskView, outcome: Placed | Unschedulable, now: datetime) -> Decision | None:
    s = task.status
    if isinstance(outcome, Placed):
        return Schedule(
            task.meta.name, outcome.node, s.epoch + 1, outcome.score, task.revision, now
        )
    if s.phase == "unschedulable" and s.reason == outcome.reason:
        return None
    return MarkUnschedulable(task.meta.name, outcome.reason, task.revision, now)


def placements(view: ClusterView, now: datetime, skip: Set[str] = frozenset()) -> list[Decision]:
    """Place every task that wants a node (but those in ``skip``), in task revision order."""
    placer = Placer(node_states(view.nodes, view.tasks))
    out: list[Decision] = []
    waiting = (t for t in view.tasks.values() if wants_node(t) and t.meta.name not in skip)
    for task in sorted(waiting, key=_order):
        decision = _decide(task, placer.place(Demand.of(task, view.volumes)), now)
        if decision is not None:
            out.append(decision)
    return out


def plan(view: ClusterView, now: datetime) -> list[Decision]:
    """Everything to append now: evictions first, then placements in task revision order."""
    return [*evictions(view, now), *placements(view, now)]
