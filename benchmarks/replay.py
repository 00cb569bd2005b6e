"""Benchmark 2: replaying the event log into a fresh SQLite projection, beside a raw read.

The log is filled (untimed) with realistic events built from ``voiyd.events.models``: nodes join,
then waves of tasks are created and some of each wave scheduled and started, so replay folds
new aggregates and changes to existing ones. The replay is what ``voiyd-server --rebuild`` does: a
``ProjectionFollower`` over a ``ProjectionStore`` on an empty file, timed until it has applied the
stream's last sequence. The baseline reads the same stream with an ordered push consumer that only
receives and counts.
"""

from __future__ import annotations

import asyncio
import cProfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from benchmarks.api_writes import task_doc
from benchmarks.timing import Throughput
from voiyd import clock, ids
from voiyd.api.specs import TaskDoc
from voiyd.api.views import NodeCapacity
from voiyd.bus import codec, subjects
from voiyd.bus.publish import event_subject
from voiyd.events import models as ev
from voiyd.projection import schema
from voiyd.projection.consumer import ProjectionFollower
from voiyd.projection.store import ProjectionStore

FILL_CONCURRENCY = 256
NODES = 20
WAVE_TASKS = 500
READ_TIMEOUT_S = 120.0
REPLAY_TIMEOUT_S = 300.0
FILL_TIMEOUT_S = 180.0
_IDLE_HEARTBEAT_S = 2.0


@dataclass(frozen=True)
class ReplaySettings:
    events: int = 100_000
    rounds: int = 2
    profile_to: Path | None = None
    """Write a cProfile of the first replay round here (the figures are then not comparable)."""


@dataclass
class ReplayResults:
    events: int = 0
    stream_bytes: int = 0
    filled: int = 0
    fill_s: float = 0.0
    raw: list[Throughput] = field(default_factory=list)
    replay: list[Throughput] = field(default_factory=list)


# ---- the log --------------------------------------------------------------------------------


def _node(i: int, at: datetime) -> ev.NodeJoined:
    return ev.NodeJoined(
        id=ids.new_id(),
        at=at,
        actor="agent",
        data=ev.NodeJoinedData(
            name=f"node-{i:02d}",
            labels={"zone": f"z{i % 3}", "disk": "ssd"},
            runtimes=["docker", "exec"],
            capacity=NodeCapacity(cpus=16, memory=64 * 1024**3),
            agent_version="0.1.0",
        ),
    )


def plan_events(count: int) -> Iterator[list[ev.AnyEvent]]:
    """``count`` events as a busy cluster writes them: nodes join, then waves of tasks are
    created and, shortly after, half of each wave is scheduled and a quarter started.

    Each yielded list names distinct aggregates, so it may be published concurrently; the lists
    are published one after the other, so every subject's events stay in order.
    """
    at = clock.now()
    nodes = min(NODES, count)
    yield [_node(i, at) for i in range(nodes)]
    left = count - nodes
    first = 0
    while left > 0:
        wave = min(2 * WAVE_TASKS, left)
        tasks = (wave + 1) // 2
        scheduled = (wave - tasks + 1) // 2
        started = wave - tasks - scheduled
        names = [f"replay-{i:06d}" for i in range(first, first + tasks)]
        yield [_created(name, at) for name in names]
        placements = [
            ev.PlacementData(name=name, node=f"node-{i % nodes:02d}", epoch=1)
            for i, name in enumerate(names[:scheduled])
        ]
        yield [
            ev.TaskScheduled(id=ids.new_id(), at=at, actor="scheduler", data=p) for p in placements
        ]
        yield [_started(p, at) for p in placements[:started]]
        first += tasks
        left -= tasks + scheduled + started


def _created(name: str, at: datetime) -> ev.TaskCreated:
    doc = TaskDoc.model_validate(task_doc(name))
    return ev.TaskCreated(id=ids.new_id(), at=at, actor="api", data=ev.TaskSpecData.from_doc(doc))


def _started(p: ev.PlacementData, at: datetime) -> ev.TaskStarted:
    data = ev.StartedData(
        name=p.name, node=p.node, epoch=p.epoch, container_id=ids.new_id(), pid=4242
    )
    return ev.TaskStarted(id=ids.new_id(), at=at, actor="agent", data=data)


async def _publish_all(js: JetStreamContext, events: list[ev.AnyEvent]) -> None:
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


async def fill(js: JetStreamContext, total: int, results: ReplayResults) -> None:
    """Top ``VOIYD_EVENTS`` up to ``total`` events (what earlier benchmarks appended counts)."""
    info = await js.stream_info(subjects.EVENTS_STREAM)
    missing = max(0, total - (info.state.last_seq or 0))
    started = time.perf_counter()
    async with asyncio.timeout(FILL_TIMEOUT_S):
        for phase in plan_events(missing):
            await _publish_all(js, phase)
    results.fill_s = time.perf_counter() - started
    results.filled = missing
    info = await js.stream_info(subjects.EVENTS_STREAM)
    results.events = info.state.last_seq or 0
    results.stream_bytes = info.state.bytes or 0


# ---- the measurements -----------------------------------------------------------------------


async def raw_read(js: JetStreamContext, last_seq: int) -> Throughput:
    """Receive and count the whole stream with an ordered push consumer (no decode)."""
    received = 0
    done = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        nonlocal received
        received += 1
        if received >= last_seq:
            done.set()

    started = time.perf_counter()
    sub = await js.subscribe(
        f"{subjects.EVENTS_PREFIX}.>",
        stream=subjects.EVENTS_STREAM,
        cb=on_msg,
        ordered_consumer=True,
        idle_heartbeat=_IDLE_HEARTBEAT_S,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            await done.wait()
        return Throughput(received, time.perf_counter() - started)
    finally:
        await sub.unsubscribe()


async def projection_replay(
    js: JetStreamContext, last_seq: int, db_path: Path, profile_to: Path | None = None
) -> Throughput:
    """Replay the whole log into an empty SQLite file, as ``voiyd-server --rebuild`` does."""
    db = schema.open_db(db_path)
    profiler = cProfile.Profile() if profile_to is not None else None
    try:
        follower = ProjectionFollower(js, ProjectionStore(db))
        stop = asyncio.Event()
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(follower.run(stop))
            reached = await follower.wait_for(last_seq, REPLAY_TIMEOUT_S)
            elapsed = time.perf_counter() - started
            stop.set()
        if profiler is not None:
            profiler.disable()
            assert profile_to is not None
            profiler.dump_stats(profile_to)
        if not reached:
            raise RuntimeError(f"replay reached seq {follower.applied_seq}, not {last_seq}")
        return Throughput(last_seq, elapsed)
    finally:
        db.close()


async def prepare(nc: Client, settings: ReplaySettings) -> ReplayResults:
    """Fill the log (untimed as a benchmark; the fill time is only reported)."""
    results = ReplayResults()
    await fill(nc.jetstream(), settings.events, results)
    return results


async def measure(
    nc: Client,
    workdir: Path,
    settings: ReplaySettings,
    results: ReplayResults,
    say: Callable[[str], None],
) -> None:
    """Interleave raw reads and projection replays of the filled log."""
    js = nc.jetstream()
    for round_no in range(settings.rounds):
        results.raw.append(await raw_read(js, results.events))
        db_path = workdir / f"replay-{round_no}.sqlite"
        profile = settings.profile_to if round_no == 0 else None
        replayed = await projection_replay(js, results.events, db_path, profile)
        results.replay.append(replayed)
        say(
            f"round {round_no + 1}: raw read {results.raw[-1].rate:,.0f} msg/s, "
            f"replay {replayed.rate:,.0f} ev/s"
        )
