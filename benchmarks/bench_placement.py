"""Benchmark: scheduler placements per second, 1,000 nodes and 10,000 pending tasks.

Starts its own nats-server (JetStream in a temp dir, random loopback port), because it needs a
log holding only its own cluster. The log is filled (untimed) with ``node.joined`` events and
``task.created`` events appended directly (the API is not what is measured). Tasks come from 50
templates, as a set's replicas share one: requests, a host port for some, a node selector for
some, the ``voiyd.io/set`` label for half. Then, with voiyd-scheduler's own code:

- **catch-up**: a ``SchedulerLoop`` reads the whole log into its view;
- **plan**: the pure ``plan()`` over that view, no I/O (median of a few rounds);
- **end to end**: one ``step()``: plan, then append every decision with its expected revision;
- **visible**: that step plus the view reading back every placement it appended.

``run()`` returns the figures, ``rows()`` turns them into table rows; ``python -m
benchmarks.bench_placement`` prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
from nats.js import JetStreamContext

from benchmarks.timing import Throughput, median_round
from tests.natsserver import NatsServer
from voiyd import clock, ids
from voiyd.api.specs import TaskConfig
from voiyd.api.views import NodeCapacity
from voiyd.bus import codec, subjects
from voiyd.bus.publish import event_subject
from voiyd.bus.streams import ensure_streams
from voiyd.events import models as ev
from voiyd.scheduler.placement import SET_LABEL
from voiyd.scheduler.plan import plan
from voiyd.scheduler.runner import SchedulerLoop, SchedulerSettings

TARGET_PER_S = 1000.0
"""End-to-end placements per second the scheduler must beat (the issue's target)."""
TEMPLATES = 50
ZONES = 4
FILL_CONCURRENCY = 256
TIMEOUT_S = 600.0
GIB = 1024**3

Say = Callable[[str], None]


@dataclass(frozen=True)
class PlacementSettings:
    nodes: int = 1000
    tasks: int = 10_000
    plan_rounds: int = 3
    max_inflight: int = 64
    """Appends in flight during the step (``SchedulerSettings.max_inflight``)."""


@dataclass(frozen=True)
class PlacementResults:
    nodes: int
    tasks: int
    placed: int
    unschedulable: int
    conflicts: int
    fill_s: float
    catch_up: Throughput
    """Events read into the view."""
    plan: list[Throughput]
    """Decisions per second of the pure ``plan()``, one per round."""
    step: Throughput
    """Placements appended per second by one ``step()`` (plan included)."""
    visible: Throughput
    """Placements per second until the view showed every one of them."""

    @property
    def met(self) -> bool:
        return self.step.rate > TARGET_PER_S


def _say(text: str) -> None:
    print(f"[bench placement] {text}", file=sys.stderr, flush=True)


# ---- the log ----------------------------------------------------------------------------------


def _node(i: int, at: datetime) -> ev.NodeJoined:
    data = ev.NodeJoinedData(
        name=f"node-{i:04d}",
        labels={"zone": f"z{i % ZONES}", "disk": "ssd" if i % 2 else "hdd"},
        runtimes=["docker", "exec"],
        capacity=NodeCapacity(cpus=16, memory=64 * GIB),
        agent_version="bench",
    )
    return ev.NodeJoined(id=ids.new_id(), at=at, actor="bench", data=data)


def _template(j: int) -> tuple[dict[str, str], TaskConfig]:
    """Template ``j``: what its tasks ask for, and the labels they carry."""
    config: dict[str, Any] = {
        "image": f"registry.local/app-{j}:1",
        "resources": {"cpus": (0.1, 0.25, 0.5, 1.0)[j % 4], "memory": f"{64 << (j % 4)}Mi"},
    }
    if j % 5 == 0:
        config["ports"] = [f"{8000 + j}:80"]
    if j % 7 == 0:
        config["node_selector"] = f"zone in (z{j % ZONES},z{(j + 1) % ZONES})"
    labels = {SET_LABEL: f"set-{j}"} if j % 2 == 0 else {}
    return labels, TaskConfig.model_validate(config)


def _tasks(count: int, at: datetime) -> list[ev.TaskCreated]:
    templates = [_template(j) for j in range(TEMPLATES)]
    out = []
    for i in range(count):
        labels, config = templates[i % TEMPLATES]
        data = ev.TaskSpecData(name=f"task-{i:05d}", labels=labels, config=config)
        out.append(ev.TaskCreated(id=ids.new_id(), at=at, actor="bench", data=data))
    return out


async def _publish_all(js: JetStreamContext, events: list[Any]) -> None:
    slots = asyncio.Semaphore(FILL_CONCURRENCY)

    async def one(event: ev.AnyEvent) -> None:
        async with slots:
            await js.publish(
                event_subject(event),
                codec.encode(event),
                stream=subjects.EVENTS_STREAM,
                headers={"Nats-Msg-Id": event.id, subjects.EVENT_HEADER: event.type},
            )

    async with asyncio.TaskGroup() as tg:
        for event in events:
            tg.create_task(one(event))


async def fill(js: JetStreamContext, settings: PlacementSettings) -> float:
    """Append the nodes, then the tasks; the seconds it took. The log must be empty."""
    info = await js.stream_info(subjects.EVENTS_STREAM)
    if info.state.last_seq:
        raise RuntimeError(f"{subjects.EVENTS_STREAM} is not empty: this benchmark needs its own")
    at = clock.now()
    started = time.perf_counter()
    await _publish_all(js, [_node(i, at) for i in range(settings.nodes)])
    await _publish_all(js, _tasks(settings.tasks, at))
    return time.perf_counter() - started


# ---- the measurements -------------------------------------------------------------------------


def _pure_plan(loop: SchedulerLoop, rounds: int) -> list[Throughput]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        decisions = plan(loop.view, clock.now())
        out.append(Throughput(len(decisions), time.perf_counter() - started))
    return out


async def measure(js: JetStreamContext, settings: PlacementSettings, say: Say) -> PlacementResults:
    say(f"filling the log: {settings.nodes:,} nodes, {settings.tasks:,} tasks")
    fill_s = await fill(js, settings)
    loop = SchedulerLoop(js, SchedulerSettings(max_inflight=settings.max_inflight))
    await loop.start()
    started = time.perf_counter()
    applied = await loop.catch_up()
    catch_up = Throughput(applied, time.perf_counter() - started)
    say(
        f"view caught up: {applied:,} events in {catch_up.seconds:.2f} s; "
        f"plan() x{settings.plan_rounds}"
    )
    pure = _pure_plan(loop, settings.plan_rounds)
    say("one step: plan and append every decision")
    started = time.perf_counter()
    result = await loop.step()
    step_s = time.perf_counter() - started
    await loop.catch_up()
    visible_s = time.perf_counter() - started
    if not loop.caught_up:
        raise RuntimeError("the view did not read back the step's own events")
    placed = sum(1 for t in loop.view.tasks.values() if t.status.phase == "scheduled")
    if placed != result.appended["scheduled"]:
        raise RuntimeError(f"{result.appended['scheduled']} appended but {placed} in the view")
    return PlacementResults(
        nodes=settings.nodes,
        tasks=settings.tasks,
        placed=placed,
        unschedulable=result.appended["unschedulable"],
        conflicts=result.conflicts,
        fill_s=fill_s,
        catch_up=catch_up,
        plan=pure,
        step=Throughput(placed, step_s),
        visible=Throughput(placed, visible_s),
    )


async def _run_async(url: str, settings: PlacementSettings, say: Say) -> PlacementResults:
    nc = await nats.connect(url, name="voiyd-bench-placement", pending_size=64 * 1024 * 1024)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        async with asyncio.timeout(TIMEOUT_S):
            return await measure(js, settings, say)
    finally:
        await nc.close()


def run(settings: PlacementSettings | None = None, say: Say = _say) -> PlacementResults:
    """Start a nats-server of its own, measure, stop it (whatever happened)."""
    settings = settings or PlacementSettings()
    with tempfile.TemporaryDirectory(prefix="voiyd-bench-placement-") as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        try:
            return asyncio.run(_run_async(server.url, settings, say))
        finally:
            server.stop()


def rows(r: PlacementResults) -> list[tuple[str, str, str]]:
    """``(measurement, figure, target)`` rows for a report table."""
    pure = median_round(r.plan)
    size = f"{r.nodes:,} nodes, {r.tasks:,} tasks"
    verdict = "met" if r.met else "NOT met"
    return [
        (
            f"scheduler placements end to end, {size}",
            f"{r.step.rate:,.0f}/s ({r.step.seconds:.2f} s)",
            f"> {TARGET_PER_S:,.0f}/s: {verdict}",
        ),
        (
            "  ... until the view shows them all",
            f"{r.visible.rate:,.0f}/s ({r.visible.seconds:.2f} s)",
            "",
        ),
        ("  pure plan(), no I/O", f"{pure.rate:,.0f} decisions/s ({pure.seconds:.2f} s)", ""),
        (
            "  view catch-up from the log",
            f"{r.catch_up.rate:,.0f} ev/s ({r.catch_up.seconds:.2f} s)",
            "",
        ),
        (
            "  placed / unschedulable / conflicts",
            f"{r.placed:,} / {r.unschedulable:,} / {r.conflicts:,}",
            "",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_placement", description=__doc__.split("\n")[0]
    )
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--plan-rounds", type=int, default=3)
    p.add_argument("--max-inflight", type=int, default=64, help="appends in flight")
    args = p.parse_args(argv)
    if min(args.nodes, args.tasks, args.plan_rounds, args.max_inflight) < 1:
        p.error("every figure must be at least 1")
    results = run(PlacementSettings(args.nodes, args.tasks, args.plan_rounds, args.max_inflight))
    width = max(len(name) for name, _, _ in rows(results))
    for name, figure, target in rows(results):
        print(f"{name:<{width}}  {figure:<36} {target}".rstrip())
    return 0 if results.met else 1


if __name__ == "__main__":
    sys.exit(main())
