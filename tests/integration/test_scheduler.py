"""voiyd-scheduler against a real nats-server and an in-process voiyd-server.

Tasks are created through the API; nodes appear as node.* events appended here (the agent and
the server's liveness tracking write them in a full cluster). Every wait follows the event log
and is bounded; nothing sleeps and polls.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from tests.conftest import RunningServer
from tests.natsserver import NatsServer
from voiyd import clock, ids
from voiyd.api.views import NodeCapacity
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions
from voiyd.bus.publish import append
from voiyd.bus.reader import read_events
from voiyd.bus.rpc import call
from voiyd.events import models as ev
from voiyd.scheduler.runner import Scheduler, SchedulerLoop, SchedulerSettings
from voiyd.scheduler.view import decode

pytestmark = pytest.mark.nats

WAIT_S = 30.0
GIB = 1024**3


class RunningScheduler:
    def __init__(self, scheduler: Scheduler, stop: asyncio.Event, task: asyncio.Task[None]):
        self.scheduler = scheduler
        self.stop_event = stop
        self.task = task

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)


async def start_scheduler(nats_url: str) -> RunningScheduler:
    scheduler = Scheduler(SchedulerSettings(nats=NatsOptions(servers=(nats_url,))))
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    ready = asyncio.create_task(scheduler.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task.done():
            task.result()
        raise RuntimeError("voiyd-scheduler did not become ready")
    return RunningScheduler(scheduler, stop, task)


@pytest.fixture
async def scheduler(
    api_server: RunningServer, nats_server: NatsServer
) -> AsyncIterator[RunningScheduler]:
    running = await start_scheduler(nats_server.url)
    try:
        yield running
    finally:
        await running.stop()


def _envelope() -> dict[str, Any]:
    return {"id": ids.new_id(), "at": clock.now(), "actor": "test"}


async def join(
    js: JetStreamContext,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    runtimes: tuple[str, ...] = ("docker", "exec"),
) -> int:
    data = ev.NodeJoinedData(
        name=name,
        labels=labels or {},
        runtimes=list(runtimes),
        capacity=NodeCapacity(cpus=8, memory=16 * GIB),
    )
    return await append(js, ev.NodeJoined(**_envelope(), data=data))


async def node_event(js: JetStreamContext, kind: type[ev.Event], name: str) -> int:
    event = kind.model_validate({**_envelope(), "data": {"name": name}})
    return await append(js, event)  # type: ignore[arg-type]


async def create(nc: Client, name: str, **config: Any) -> int:
    doc = {"meta": {"name": name}, "config": {"image": "busybox", **config}}
    reply = await call(nc, "voiyd.api.v1.task.create", {"task": doc})
    return int(reply["revision"])


async def next_event(
    js: JetStreamContext, task: str, type_: str, after: int
) -> tuple[int, ev.AnyEvent]:
    """The first ``type_`` event of ``task`` after sequence ``after`` (waiting for it)."""
    subject = subjects.event("task", task)
    async with (
        asyncio.timeout(WAIT_S),
        aclosing(read_events(js, subject, start_seq=after + 1, follow=True)) as events,
    ):
        async for raw in events:
            event = decode(raw)
            if event.type == type_:
                return raw.seq, event
    raise AssertionError("the log ended")


async def get_task(nc: Client, name: str, min_revision: int) -> dict[str, Any]:
    reply = await call(nc, "voiyd.api.v1.task.get", {"name": name, "min_revision": min_revision})
    task: dict[str, Any] = reply["task"]
    return task


async def test_a_created_task_is_scheduled_on_the_only_fitting_node(
    scheduler: RunningScheduler, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "cordoned")
    await node_event(js, ev.NodeCordoned, "cordoned")
    await join(js, "exec-only", runtimes=("exec",))
    await join(js, "not-ready")
    await node_event(js, ev.NodeNotReady, "not-ready")
    await join(js, "fits")
    created = await create(nc, "web")
    seq, _ = await next_event(js, "web", "task.scheduled", created)
    status = (await get_task(nc, "web", seq))["status"]
    # the first epoch follows the creation's sequence
    assert (status["phase"], status["node"], status["epoch"]) == ("scheduled", "fits", created + 1)


async def test_an_impossible_task_is_unschedulable_until_a_fitting_node_joins(
    scheduler: RunningScheduler, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "n1", labels={"disk": "hdd"})
    created = await create(nc, "db", node_selector="disk=ssd")
    seq, _ = await next_event(js, "db", "task.unschedulable", created)
    status = (await get_task(nc, "db", seq))["status"]
    assert status["phase"] == "unschedulable"
    assert status["reason"] == "0/1 nodes fit: 1 not matching node_selector disk=ssd"
    await join(js, "n2", labels={"disk": "ssd"})
    seq, _ = await next_event(js, "db", "task.scheduled", seq)
    status = (await get_task(nc, "db", seq))["status"]
    assert (status["phase"], status["node"], status["reason"]) == ("scheduled", "n2", "")


async def _scheduled_names(js: JetStreamContext, want: int) -> set[str]:
    """Follow the log until ``want`` distinct tasks have a task.scheduled event."""
    names: set[str] = set()
    async with (
        asyncio.timeout(WAIT_S),
        aclosing(read_events(js, subjects.events_filter("task"), follow=True)) as events,
    ):
        async for raw in events:
            event = decode(raw)
            if isinstance(event, ev.TaskScheduled):
                names.add(event.data.name)
                if len(names) == want:
                    break
    return names


async def _scheduled_counts(js: JetStreamContext) -> Counter[str]:
    """task.scheduled events per task in the whole log (read up to its last sequence)."""
    last = (await js.stream_info(subjects.EVENTS_STREAM)).state.last_seq
    counts: Counter[str] = Counter()
    async with (
        asyncio.timeout(WAIT_S),
        aclosing(read_events(js, subjects.events_filter(), follow=True)) as events,
    ):
        async for raw in events:
            event = decode(raw)
            if isinstance(event, ev.TaskScheduled):
                counts[event.data.name] += 1
            if raw.seq >= last:
                break
    return counts


async def test_two_schedulers_place_every_task_exactly_once(
    api_server: RunningServer, nats_server: NatsServer, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "n1")
    await join(js, "n2")
    first = await start_scheduler(nats_server.url)
    second = await start_scheduler(nats_server.url)
    try:
        names = [f"task-{i:02d}" for i in range(50)]
        await asyncio.gather(*(create(nc, name) for name in names))
        assert await _scheduled_names(js, len(names)) == set(names)
    finally:
        await first.stop()
        await second.stop()
    assert await _scheduled_counts(js) == dict.fromkeys(names, 1)


async def test_a_task_of_a_lost_node_is_evicted_and_placed_on_the_other(
    scheduler: RunningScheduler, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "n1")
    await join(js, "n2")
    created = await create(nc, "web")
    seq, placed = await next_event(js, "web", "task.scheduled", created)
    assert isinstance(placed, ev.TaskScheduled)
    lost, other = placed.data.node, ({"n1", "n2"} - {placed.data.node}).pop()
    await node_event(js, ev.NodeLost, lost)
    seq, evicted = await next_event(js, "web", "task.evicted", seq)
    assert isinstance(evicted, ev.TaskEvicted)
    assert (evicted.data.node, evicted.data.epoch) == (lost, placed.data.epoch)
    assert evicted.data.reason == f"node {lost} lost"
    seq, again = await next_event(js, "web", "task.scheduled", seq)
    assert isinstance(again, ev.TaskScheduled)
    status = (await get_task(nc, "web", seq))["status"]
    assert (status["phase"], status["node"], status["epoch"]) == (
        "scheduled",
        other,
        placed.data.epoch + 1,
    )


def _conflicts() -> float:
    return REGISTRY.get_sample_value("voiyd_scheduler_conflicts_total") or 0.0


async def test_a_step_that_lost_the_race_counts_a_conflict_and_appends_nothing(
    api_server: RunningServer, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "n1")
    await create(nc, "web")
    winner = SchedulerLoop(js, SchedulerSettings())
    loser = SchedulerLoop(js, SchedulerSettings())
    await winner.catch_up()
    await loser.catch_up()
    before = _conflicts()
    won = await winner.step()
    lost = await loser.step()
    assert (won.appended["scheduled"], won.conflicts) == (1, 0)
    assert (lost.appended["scheduled"], lost.conflicts) == (0, 1)
    assert _conflicts() == before + 1
    # Neither plans again before its view has moved: the winner waits for its own decision,
    # the loser for the event that beat it.
    assert not winner.caught_up
    assert (await winner.step()).skipped == "behind"
    assert (await loser.step()).skipped == "unchanged"
    await winner.catch_up()
    await loser.catch_up()
    assert winner.view.tasks["web"].status.node == loser.view.tasks["web"].status.node == "n1"
    assert ((await winner.step()).planned, (await loser.step()).planned) == (0, 0)
