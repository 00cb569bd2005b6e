"""CORE: one scheduling round: the whole view in, the decisions to append out.

``plan`` evicts tasks whose node is lost, draining or gone, then places every task that should
run and has no node (pending or unschedulable), oldest revision first. Each decision carries the
task's revision, to be sent as the expected revision: a task that changed meanwhile (another
scheduler placed it, the user stopped it) is never placed twice. Placements made earlier in the
same plan count on their node, so one plan never over-commits. A task already unschedulable for
the same reason gets no new event (the log would only repeat itself).

Placing N tasks on M nodes naively costs N*M scores; tasks with equal ``Demand`` share a heap of
nodes instead. Within a plan a node only fills up, so its score and fit only get worse: an entry
whose node changed since it was scored is an upper bound, re-scored when it reaches the top.
Pure: ``now`` and event ids come in as parameters.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, assert_never

from voiyd.api.views import NodeView, TaskView
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

Outcome = Literal["scheduled", "unschedulable", "evicted"]
_EVICT_PHASES = {"lost": "lost", "draining": "draining"}


class ClusterView(Protocol):
    """What a plan reads: every task and node by name."""

    @property
    def tasks(self) -> Mapping[str, TaskView]: ...

    @property
    def nodes(self) -> Mapping[str, NodeView]: ...


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
                if static_problem(d, sel, s) is None and fit_problem(d, s) is None
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


def _eviction(task: TaskView, nodes: Mapping[str, NodeView], now: datetime) -> Evict | None:
    """The eviction of ``task`` if its node is lost, draining or gone and it holds resources."""
    name = task.status.node
    if name is None or not holds_resources(task):
        return None
    node = nodes.get(name)
    if node is None:
        reason = f"node {name} deleted"
    elif node.phase in _EVICT_PHASES:
        reason = f"node {name} {_EVICT_PHASES[node.phase]}"
    else:
        return None
    return Evict(task.meta.name, name, task.status.epoch, reason, task.revision, now)


def evictions(view: ClusterView, now: datetime) -> list[Decision]:
    """Evict tasks whose node is lost, draining or gone (a not-ready node keeps its tasks)."""
    found = [e for t in view.tasks.values() if (e := _eviction(t, view.nodes, now)) is not None]
    return sorted(found, key=lambda e: (e.expected_revision, e.task))


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


def plan(view: ClusterView, now: datetime) -> list[Decision]:
    """Everything to append now: evictions first, then placements in task revision order."""
    decisions = evictions(view, now)
    placer = Placer(node_states(view.nodes, view.tasks))
    for task in sorted((t for t in view.tasks.values() if wants_node(t)), key=_order):
        decision = _decide(task, placer.place(Demand.of(task)), now)
        if decision is not None:
            decisions.append(decision)
    return decisions
