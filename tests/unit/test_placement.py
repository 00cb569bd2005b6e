"""Placement of one task: filters, reasons, scores and the tie-break, as tables."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from voiyd.api.specs import SET_LABEL, Meta, TaskConfig, VolumeConfig
from voiyd.api.views import (
    NodeCapacity,
    NodePhase,
    NodeView,
    TaskPhase,
    TaskStatus,
    TaskView,
    VolumeView,
)
from voiyd.scheduler.placement import (
    NO_NODES,
    Demand,
    NodeState,
    Placed,
    Unschedulable,
    holds_resources,
    place,
    score,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
GIB = 1024**3


def task(
    name: str = "t",
    *,
    labels: dict[str, str] | None = None,
    phase: TaskPhase = "pending",
    node: str | None = None,
    desired: str = "running",
    exit_code: int | None = None,
    **config: Any,
) -> TaskView:
    if config.get("runtime") == "exec":
        config.setdefault("args", ["/bin/true"])
    else:
        config.setdefault("image", "busybox")
    return TaskView(
        meta=Meta(name=name, labels=labels or {}),
        config=TaskConfig.model_validate(config),
        status=TaskStatus.model_validate(
            {"phase": phase, "node": node, "desired": desired, "exit_code": exit_code}
        ),
        revision=1,
        generation=1,
        created_at=T0,
        updated_at=T0,
    )


def node(
    name: str,
    *,
    cpus: float = 4.0,
    memory: int = 8 * GIB,
    labels: dict[str, str] | None = None,
    runtimes: Sequence[str] = ("docker", "exec"),
    phase: NodePhase = "ready",
    schedulable: bool = True,
    running: Sequence[TaskView] = (),
) -> NodeState:
    view = NodeView(
        name=name,
        labels=labels or {},
        phase=phase,
        schedulable=schedulable,
        runtimes=list(runtimes),
        capacity=NodeCapacity(cpus=cpus, memory=memory),
        revision=1,
        created_at=T0,
        updated_at=T0,
    )
    on_node = [t for t in running if holds_resources(t)]
    return NodeState.of(view, [Demand.of(t) for t in on_node])


def running(name: str = "r", **kwargs: Any) -> TaskView:
    """A task running on some node (placement only reads its demand and phase)."""
    return task(name, phase="running", node="somewhere", **kwargs)


def exited(restart: str) -> TaskView:
    """A task that exited with code 1 while bound to port 8080, under ``restart``."""
    return task("x", phase="exited", node="n1", exit_code=1, restart=restart, ports=["8080:80"])


@dataclass(frozen=True)
class Case:
    id: str
    task: TaskView
    nodes: Sequence[NodeState]
    expected: str
    """The chosen node's name, or the unschedulable reason."""


def _outcome(result: Placed | Unschedulable) -> str:
    return result.node if isinstance(result, Placed) else result.reason


ZONES = [
    node("n1", labels={"zone": "a", "disk": "ssd"}),
    node("n2", labels={"zone": "b"}),
    node("n3", labels={"zone": "c", "gpu": "true"}),
]

SELECTOR_CASES = [
    Case("selector-equals", task(node_selector="zone=b"), ZONES, "n2"),
    Case("selector-double-equals", task(node_selector="zone==c"), ZONES, "n3"),
    Case("selector-not-equals", task(node_selector="zone!=a,zone!=b"), ZONES, "n3"),
    Case("selector-in", task(node_selector="zone in (c,d)"), ZONES, "n3"),
    Case("selector-notin", task(node_selector="zone notin (a,c)"), ZONES, "n2"),
    Case("selector-exists", task(node_selector="disk"), ZONES, "n1"),
    Case("selector-not-exists", task(node_selector="!disk,!gpu"), ZONES, "n2"),
    Case("selector-mapping-form", task(node_selector={"zone": "c", "gpu": "true"}), ZONES, "n3"),
    Case(
        "selector-matching-nothing",
        task(node_selector="zone=z"),
        ZONES,
        "0/3 nodes fit: 3 not matching node_selector zone=z",
    ),
]

RUNTIME_CASES = [
    Case(
        "runtime-exec-on-docker-only-nodes",
        task(runtime="exec"),
        [node("n1", runtimes=["docker"]), node("n2", runtimes=["docker"])],
        "0/2 nodes fit: 2 without runtime exec",
    ),
    Case(
        "runtime-exec-goes-to-the-exec-node",
        task(runtime="exec"),
        [node("n1", runtimes=["docker"]), node("n2", runtimes=["exec"])],
        "n2",
    ),
    Case(
        "runtime-node-without-any-runtime",
        task(),
        [node("n1", runtimes=[])],
        "0/1 nodes fit: 1 without runtime docker",
    ),
]

RESOURCE_CASES = [
    Case(
        "cpu-exhausted",
        task(resources={"cpus": 1}),
        [node("n1", cpus=2, running=[running(resources={"cpus": 1.5})])],
        "0/1 nodes fit: 1 insufficient cpu",
    ),
    Case(
        "cpu-exactly-full-fits",
        task(resources={"cpus": 0.3}),
        [node("n1", cpus=1, running=[running(resources={"cpus": 0.7})])],
        "n1",
    ),
    Case(
        "cpu-goes-where-it-fits",
        task(resources={"cpus": 1}),
        [node("n1", cpus=1, running=[running(resources={"cpus": 0.5})]), node("n2", cpus=1)],
        "n2",
    ),
    Case(
        "memory-exhausted",
        task(resources={"memory": "1Gi"}),
        [node("n1", memory=GIB, running=[running(resources={"memory": "512Mi"})])],
        "0/1 nodes fit: 1 insufficient memory",
    ),
    Case(
        "memory-exceeds-capacity",
        task(resources={"memory": "2Gi"}),
        [node("n1", memory=GIB), node("n2", memory=GIB)],
        "0/2 nodes fit: 2 insufficient memory",
    ),
    Case(
        "no-requests-fit-on-a-full-node",
        task(),
        [node("n1", cpus=1, memory=GIB, running=[running(resources={"cpus": 1, "memory": "1Gi"})])],
        "n1",
    ),
    Case(
        "stopped-task-frees-its-cpu",
        task(resources={"cpus": 2}),
        [
            node(
                "n1",
                cpus=2,
                running=[task("old", phase="stopped", node="n1", resources={"cpus": 2})],
            )
        ],
        "n1",
    ),
]

PORT_CASES = [
    Case(
        "port-same-any-ip",
        task(ports=["8080:80"]),
        [node("n1", running=[running(ports=["8080:80"])])],
        "0/1 nodes fit: 1 port 8080/tcp in use",
    ),
    Case(
        "port-specific-ip-against-any",
        task(ports=["127.0.0.1:8080:80"]),
        [node("n1", running=[running(ports=["8080:80"])])],
        "0/1 nodes fit: 1 port 127.0.0.1:8080/tcp in use",
    ),
    Case(
        "port-any-against-specific-ip",
        task(ports=["8080:80"]),
        [node("n1", running=[running(ports=["10.0.0.1:8080:80"])])],
        "0/1 nodes fit: 1 port 8080/tcp in use",
    ),
    Case(
        "port-same-specific-ip",
        task(ports=["10.0.0.1:8080:80"]),
        [node("n1", running=[running(ports=["10.0.0.1:8080:80"])])],
        "0/1 nodes fit: 1 port 10.0.0.1:8080/tcp in use",
    ),
    Case(
        "port-different-specific-ips",
        task(ports=["10.0.0.2:8080:80"]),
        [node("n1", running=[running(ports=["10.0.0.1:8080:80"])])],
        "n1",
    ),
    Case(
        "port-udp-and-tcp-do-not-conflict",
        task(ports=["8080:80/udp"]),
        [node("n1", running=[running(ports=["8080:80/tcp"])])],
        "n1",
    ),
    Case(
        "port-other-number",
        task(ports=["8081:80"]),
        [node("n1", running=[running(ports=["8080:80"])])],
        "n1",
    ),
    Case(
        "port-goes-to-the-node-where-it-is-free",
        task(ports=["8080:80"]),
        [node("n1", running=[running(ports=["8080:80"])]), node("n2")],
        "n2",
    ),
    Case(
        "port-second-of-two-in-use",
        task(ports=["8080:80", "9090:90/udp"]),
        [node("n1", running=[running(ports=["9090:90/udp"])])],
        "0/1 nodes fit: 1 port 9090/udp in use",
    ),
    Case(
        "port-held-by-exited-task-that-restarts",
        task(ports=["8080:80"]),
        [node("n1", running=[exited("always")])],
        "0/1 nodes fit: 1 port 8080/tcp in use",
    ),
    Case(
        "port-freed-by-exited-task-that-never-restarts",
        task(ports=["8080:80"]),
        [node("n1", running=[exited("never")])],
        "n1",
    ),
]

NODE_STATE_CASES = [
    Case("no-nodes", task(), [], NO_NODES),
    Case("cordoned", task(), [node("n1", schedulable=False)], "0/1 nodes fit: 1 cordoned"),
    Case("not-ready", task(), [node("n1", phase="not-ready")], "0/1 nodes fit: 1 not ready"),
    Case("lost", task(), [node("n1", phase="lost")], "0/1 nodes fit: 1 lost"),
    Case(
        "draining",
        task(),
        [node("n1", phase="draining", schedulable=False)],
        "0/1 nodes fit: 1 draining",
    ),
    Case(
        "only-the-ready-schedulable-node",
        task(),
        [node("n1", phase="not-ready"), node("n2", schedulable=False), node("n3")],
        "n3",
    ),
    Case(
        "mixed-reasons-in-filter-order",
        task(ports=["8080:80"]),
        [
            node("c", running=[running(ports=["8080:80"])]),
            node("b", schedulable=False),
            node("a", phase="not-ready"),
        ],
        "0/3 nodes fit: 1 not ready, 1 cordoned, 1 port 8080/tcp in use",
    ),
    Case(
        "first-failing-filter-per-node",
        task(runtime="exec", resources={"cpus": 8}),
        [
            node("n1", runtimes=["docker"], cpus=1, schedulable=False),
            node("n2", runtimes=["docker"], cpus=1),
            node("n3", cpus=1),
            node("n4", cpus=1),
        ],
        "0/4 nodes fit: 1 cordoned, 1 without runtime exec, 2 insufficient cpu",
    ),
]

SCORE_CASES = [
    Case(
        "least-allocated-prefers-the-bigger-node",
        task(resources={"cpus": 1, "memory": "1Gi"}),
        [node("a", cpus=2, memory=2 * GIB), node("b", cpus=8, memory=16 * GIB)],
        "b",
    ),
    Case(
        "least-allocated-prefers-the-emptier-node",
        task(resources={"cpus": 1}),
        [
            node("a", running=[running(resources={"cpus": 3})]),
            node("b", running=[running(resources={"cpus": 1})]),
        ],
        "b",
    ),
    Case(
        "spread-prefers-fewer-tasks",
        task(),
        [node("a", running=[running(), running()]), node("b", running=[running()])],
        "b",
    ),
    Case(
        "spread-a-set-apart-from-its-own-tasks",
        task(labels={SET_LABEL: "web"}),
        [
            node("a", running=[running(labels={SET_LABEL: "web"})]),
            node("b", running=[running(), running()]),
        ],
        "b",
    ),
    Case(
        "spread-other-tasks-ignore-the-set",
        task(),
        [
            node("a", running=[running(labels={SET_LABEL: "web"})]),
            node("b", running=[running(), running()]),
        ],
        "a",
    ),
    Case("tie-break-by-node-name", task(), [node("b"), node("c"), node("a")], "a"),
]


def _params(cases: Sequence[Case]) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize(
    "case",
    _params(
        SELECTOR_CASES
        + RUNTIME_CASES
        + RESOURCE_CASES
        + PORT_CASES
        + NODE_STATE_CASES
        + SCORE_CASES
    ),
)
def test_place(case: Case) -> None:
    assert _outcome(place(case.task, case.nodes)) == case.expected


@pytest.mark.parametrize(
    "case", _params([c for c in NODE_STATE_CASES + PORT_CASES if " fit: " in c.expected])
)
def test_place_gives_the_same_reason_whatever_the_node_order(case: Case) -> None:
    reasons = {_outcome(place(case.task, list(p))) for p in itertools.permutations(case.nodes)}
    assert reasons == {case.expected}


def test_place_tie_break_ignores_the_node_order() -> None:
    nodes = [node("n3"), node("n1"), node("n2")]
    chosen = {_outcome(place(task(), list(p))) for p in itertools.permutations(nodes)}
    assert chosen == {"n1"}


def test_place_reports_the_score_of_the_chosen_node() -> None:
    t = task(resources={"cpus": 1, "memory": "1Gi"})
    nodes = [node("n1", cpus=2, memory=2 * GIB)]
    result = place(t, nodes)
    assert result == Placed("n1", score(Demand.of(t), nodes[0]))
    assert result.score == pytest.approx(0.5 + 1.0)  # half free after placing, no other task


def test_score_only_falls_as_a_node_fills_up() -> None:
    d = Demand(cpus=1, memory=GIB, set_name="web")
    state = node("n1", cpus=16, memory=32 * GIB)
    scores = []
    for other in (Demand(), Demand(cpus=2), Demand(set_name="web"), Demand(memory=GIB)):
        scores.append(score(d, state))
        state = state.with_demands([other])
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)


@pytest.mark.parametrize(
    ("phase", "desired", "exit_code", "restart", "holds"),
    [
        pytest.param("scheduled", "running", None, "always", True, id="scheduled"),
        pytest.param("running", "running", None, "always", True, id="running"),
        pytest.param("stopping", "stopped", None, "always", True, id="stopping"),
        pytest.param("stopped", "stopped", None, "always", False, id="stopped"),
        pytest.param("failed", "running", 1, "always", False, id="failed"),
        pytest.param("exited", "running", 0, "always", True, id="exited-restart-always"),
        pytest.param("exited", "running", 1, "on-failure", True, id="exited-on-failure-code-1"),
        pytest.param("exited", "running", 0, "on-failure", False, id="exited-on-failure-code-0"),
        pytest.param("exited", "running", 1, "never", False, id="exited-restart-never"),
        pytest.param("exited", "stopped", 1, "always", False, id="exited-desired-stopped"),
    ],
)
def test_holds_resources(
    phase: TaskPhase, desired: str, exit_code: int | None, restart: str, holds: bool
) -> None:
    t = task(phase=phase, node="n1", desired=desired, exit_code=exit_code, restart=restart)
    assert holds_resources(t) is holds


def test_a_task_without_a_node_holds_nothing() -> None:
    assert holds_resources(task(phase="pending")) is False


# ---- volumes ----------------------------------------------------------------------------------


def volume(name: str, node: str | None, kind: str = "host-local") -> VolumeView:
    files = {"f": "x"} if kind == "template" else {}
    return VolumeView(
        meta=Meta(name=name),
        config=VolumeConfig.model_validate({"type": kind, "node": node, "files": files}),
        revision=1,
        created_at=T0,
        updated_at=T0,
    )


VOLUMES = {
    "data": volume("data", "n2"),
    "logs": volume("logs", "n3"),
    "conf": volume("conf", None, "template"),
    "local-conf": volume("local-conf", "n2", "template"),
}
THREE = [node("n1"), node("n2"), node("n3")]


@pytest.mark.parametrize(
    ("mounts", "nodes", "expected"),
    [
        pytest.param([], THREE, "n1", id="no-volume"),
        pytest.param(["/srv:/srv"], THREE, "n1", id="bind-mount-pins-nothing"),
        pytest.param(["data:/d"], THREE, "n2", id="host-local-pins"),
        pytest.param(["data:/d:ro", "local-conf:/c"], THREE, "n2", id="two-on-one-node"),
        pytest.param(["conf:/c"], THREE, "n1", id="template-without-node-anywhere"),
        pytest.param(["local-conf:/c"], THREE, "n2", id="template-with-node-pins"),
        pytest.param(
            ["data:/d", "logs:/l"],
            THREE,
            "0/3 nodes fit: 2 volume data is on node n2, 1 volume logs is on node n3",
            id="volumes-on-two-nodes",
        ),
        pytest.param(
            ["data:/d"],
            [node("n1"), node("n2", schedulable=False)],
            "0/2 nodes fit: 1 volume data is on node n2, 1 cordoned",
            id="volume-node-cordoned",
        ),
        pytest.param(
            ["data:/d"],
            [node("n2", cpus=1, running=[running(resources={"cpus": 1})])],
            "0/1 nodes fit: 1 insufficient cpu",
            id="volume-node-full",
        ),
        pytest.param(["nope:/n"], THREE, "volume nope does not exist", id="missing"),
        pytest.param(["nope:/n"], [], "volume nope does not exist", id="missing-no-nodes"),
        pytest.param(
            ["zz:/z", "aa:/a"], THREE, "volumes aa, zz do not exist", id="two-missing-sorted"
        ),
    ],
)
def test_place_with_volumes(mounts: list[str], nodes: list[NodeState], expected: str) -> None:
    t = task(mounts=mounts, resources={"cpus": 1})
    reasons = {_outcome(place(t, list(p), VOLUMES)) for p in itertools.permutations(nodes)}
    assert reasons == {expected}


def test_demand_ignores_mounts_when_no_volumes_are_given() -> None:
    d = Demand.of(task(mounts=["nope:/n"]))
    assert (d.pins, d.missing) == ((), ())
