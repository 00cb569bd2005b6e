"""CORE: where one task may run and how well it fits there: filters, a score, a fixed tie-break.

``place`` keeps only nodes that hold the volumes the task mounts (a host-local volume, or a
template volume given a node, pins the task to that node), are ready and schedulable, match the
task's ``node_selector``, offer its runtime, have the CPU and memory it requests free and none of
its host ports bound; a task mounting a volume that does not exist fits nowhere;
it then picks the highest score (least allocated after placing, plus spread: fewer tasks on the
node, tasks of the same ``voiyd.io/set`` counting more), ties going to the smallest node name.
When nothing fits, the reason counts each node's first failing filter in a fixed order, so the
same situation always gives the same string. Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from voiyd.api.selectors import Selector, parse_selector
from voiyd.api.specs import SET_LABEL as SET_LABEL  # re-exported: a Set is spread apart
from voiyd.api.views import NodePhase, NodeView, TaskView, VolumeView

SET_WEIGHT = 4
"""A task of the same set counts as this many unrelated tasks in the spread score."""
ANY_IP = "0.0.0.0"
NO_NODES = "no nodes"
_CPU_EPSILON = 1e-9  # sums of fractional CPU requests are not exact in binary floating point

PortKey = tuple[str, int, str]
"""A bound host port: ``(protocol, host port, host ip)``."""

_RANK_VOLUME = 0  # a node without the task's volume can never take it, whatever its state
_PHASE_PROBLEMS: Mapping[str, tuple[int, str]] = {
    "not-ready": (1, "not ready"),
    "lost": (2, "lost"),
    "draining": (3, "draining"),
}
_CORDONED = (4, "cordoned")
_RANK_SELECTOR = 5
_RANK_RUNTIME = 6
_INSUFFICIENT_CPU = (7, "insufficient cpu")
_INSUFFICIENT_MEMORY = (8, "insufficient memory")
_RANK_PORTS = 9

Problem = tuple[int, str]
"""Why a node does not fit: a rank (the filter's place in the fixed order) and the text."""


@dataclass(frozen=True, slots=True)
class Demand:
    """What a task asks of a node; tasks with equal demands are interchangeable to placement."""

    runtime: str = "docker"
    selector: str = ""
    cpus: float = 0.0
    memory: int = 0
    ports: tuple[PortKey, ...] = ()
    set_name: str | None = None
    pins: tuple[tuple[str, str], ...] = ()
    """``(volume, node)`` for each mounted volume that lives on one node."""
    missing: tuple[str, ...] = ()
    """Mounted volumes that do not exist (the task fits nowhere until they do)."""

    @classmethod
    def of(cls, task: TaskView, volumes: Mapping[str, VolumeView] | None = None) -> Demand:
        """What ``task`` asks; its volume mounts count only when ``volumes`` is given."""
        cfg = task.config
        pins: list[tuple[str, str]] = []
        missing: list[str] = []
        if volumes is not None:
            for name in sorted({m.source for m in cfg.mounts if m.type == "volume"}):
                volume = volumes.get(name)
                if volume is None:
                    missing.append(name)
                elif volume.config.node is not None:
                    pins.append((name, volume.config.node))
        return cls(
            runtime=cfg.runtime,
            selector=cfg.node_selector,
            cpus=cfg.resources.cpus or 0.0,
            memory=cfg.resources.memory or 0,
            ports=tuple((p.protocol, p.host, p.host_ip) for p in cfg.ports),
            set_name=task.meta.labels.get(SET_LABEL),
            pins=tuple(pins),
            missing=tuple(missing),
        )


def holds_resources(task: TaskView) -> bool:
    """Whether ``task`` occupies its node's CPU, memory and ports.

    A placed task does until it is settled (stopped or failed); an exited one still does while
    its restart policy will start it again on the same node (the ports must still be there).
    """
    status = task.status
    if status.node is None or status.phase in ("stopped", "failed", "pending", "unschedulable"):
        return False
    if status.phase != "exited":
        return True
    policy = task.config.restart.policy
    restarts = policy == "always" or (policy == "on-failure" and status.exit_code != 0)
    return status.desired == "running" and restarts


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node as placement sees it: what it offers and what the tasks placed on it use."""

    name: str
    phase: NodePhase = "ready"
    schedulable: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    runtimes: frozenset[str] = frozenset()
    cpus: float = 0.0
    memory: int = 0
    used_cpus: float = 0.0
    used_memory: int = 0
    ports: frozenset[PortKey] = frozenset()
    port_hosts: frozenset[tuple[str, int]] = frozenset()
    """``(protocol, port)`` bound on any address, to check a 0.0.0.0 request in one lookup."""
    tasks: int = 0
    sets: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, node: NodeView, demands: Iterable[Demand] = ()) -> NodeState:
        """The state of ``node`` with ``demands`` (its tasks that hold resources) placed on it."""
        state = cls(
            name=node.name,
            phase=node.phase,
            schedulable=node.schedulable,
            labels=node.labels,
            runtimes=frozenset(node.runtimes),
            cpus=node.capacity.cpus,
            memory=node.capacity.memory,
        )
        return state.with_demands(demands)

    def with_demands(self, demands: Iterable[Demand]) -> NodeState:
        """This node with ``demands`` added (one pass, however many)."""
        added = list(demands)
        if not added:
            return self
        sets = dict(self.sets)
        for d in added:
            if d.set_name is not None:
                sets[d.set_name] = sets.get(d.set_name, 0) + 1
        new_ports = [p for d in added for p in d.ports]
        return replace(
            self,
            used_cpus=self.used_cpus + sum(d.cpus for d in added),
            used_memory=self.used_memory + sum(d.memory for d in added),
            ports=self.ports.union(new_ports),
            port_hosts=self.port_hosts.union((p[0], p[1]) for p in new_ports),
            tasks=self.tasks + len(added),
            sets=sets,
        )


@dataclass(frozen=True, slots=True)
class Placed:
    node: str
    score: float


@dataclass(frozen=True, slots=True)
class Unschedulable:
    reason: str


@functools.lru_cache(maxsize=1024)
def selector(text: str) -> Selector:
    """The parsed node selector (a task's is stored canonical, so parsing cannot fail)."""
    return parse_selector(text)


def static_problem(d: Demand, sel: Selector, node: NodeState) -> Problem | None:
    """Why ``node`` can never take ``d`` whatever runs there, or None."""
    for volume, pinned in d.pins:
        if node.name != pinned:
            return (_RANK_VOLUME, f"volume {volume} is on node {pinned}")
    if node.phase != "ready":
        return _PHASE_PROBLEMS[node.phase]
    if not node.schedulable:
        return _CORDONED
    if not sel.matches(node.labels):
        return (_RANK_SELECTOR, f"not matching node_selector {d.selector}")
    if d.runtime not in node.runtimes:
        return (_RANK_RUNTIME, f"without runtime {d.runtime}")
    return None


def _port_taken(node: NodeState, port: PortKey) -> bool:
    proto, host, ip = port
    if ip == ANY_IP:
        return (proto, host) in node.port_hosts
    return port in node.ports or (proto, host, ANY_IP) in node.ports


def _port_text(port: PortKey) -> str:
    proto, host, ip = port
    return f"{host}/{proto}" if ip == ANY_IP else f"{ip}:{host}/{proto}"


def fit_problem(d: Demand, node: NodeState) -> Problem | None:
    """Why ``node`` has no room for ``d`` now (CPU, memory, host ports), or None."""
    if d.cpus and node.used_cpus + d.cpus > node.cpus + _CPU_EPSILON:
        return _INSUFFICIENT_CPU
    if d.memory and node.used_memory + d.memory > node.memory:
        return _INSUFFICIENT_MEMORY
    for i, port in enumerate(d.ports):
        if _port_taken(node, port):
            return (_RANK_PORTS + i, f"port {_port_text(port)} in use")
    return None


def _free(capacity: float, used: float) -> float:
    """The fraction of ``capacity`` left once ``used`` is taken (0 when nothing is known)."""
    if capacity <= 0 or used >= capacity:
        return 0.0
    return (capacity - used) / capacity


def score(d: Demand, node: NodeState) -> float:
    """Higher is better: mean free fraction of CPU and memory after placing, plus spread."""
    cpu = _free(node.cpus, node.used_cpus + d.cpus)
    memory = _free(node.memory, node.used_memory + d.memory)
    peers = node.tasks
    if d.set_name is not None:
        peers += SET_WEIGHT * node.sets.get(d.set_name, 0)
    return (cpu + memory) / 2 + 1 / (1 + peers)


def summary(nodes: int, problems: Mapping[Problem, int]) -> str:
    """``0/3 nodes fit: 1 not ready, 2 insufficient cpu``, problems in the filters' order."""
    if nodes == 0:
        return NO_NODES
    parts = [f"{count} {text}" for (_, text), count in sorted(problems.items())]
    return f"0/{nodes} nodes fit: {', '.join(parts)}"


def missing_volumes(names: Sequence[str]) -> str:
    """``volume data does not exist`` (or ``volumes a, b do not exist``)."""
    if len(names) == 1:
        return f"volume {names[0]} does not exist"
    return f"volumes {', '.join(names)} do not exist"


def place_demand(d: Demand, nodes: Sequence[NodeState]) -> Placed | Unschedulable:
    """``place`` for a demand already extracted from its task."""
    if d.missing:
        return Unschedulable(missing_volumes(d.missing))
    sel = selector(d.selector)
    best: tuple[float, str] | None = None
    problems: Counter[Problem] = Counter()
    for node in nodes:
        problem = static_problem(d, sel, node) or fit_problem(d, node)
        if problem is not None:
            problems[problem] += 1
            continue
        key = (-score(d, node), node.name)
        if best is None or key < best:
            best = key
    if best is None:
        return Unschedulable(summary(len(nodes), problems))
    return Placed(best[1], -best[0])


def place(
    task: TaskView,
    nodes: Sequence[NodeState],
    volumes: Mapping[str, VolumeView] | None = None,
) -> Placed | Unschedulable:
    """The best node for ``task`` among ``nodes`` (and its volumes), or why there is none."""
    return place_demand(Demand.of(task, volumes), nodes)
