"""The Set controller inside voiyd-scheduler, against a real nats-server.

Set and node events are appended here straight to the log (``voiyd.bus.publish.append``), as
voiyd-server and the agents would; the scheduler runs in-process and must create, place and
delete the members and record the rollout. Every wait follows the event log and is bounded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from tests.integration.test_scheduler import RunningScheduler, join, start_scheduler
from tests.natsserver import NatsServer
from voiyd import clock, ids
from voiyd.api.specs import SET_LABEL, SET_REVISION_LABEL, SetConfig
from voiyd.bus import subjects
from voiyd.bus.publish import append
from voiyd.bus.reader import read_events
from voiyd.events import models as ev
from voiyd.scheduler.view import decode

pytestmark = pytest.mark.nats

WAIT_S = 30.0


@pytest.fixture
async def scheduler(js_ready: Client, nats_server: NatsServer) -> AsyncIterator[RunningScheduler]:
    running = await start_scheduler(nats_server.url)
    try:
        yield running
    finally:
        await running.stop()


def _env() -> dict[str, Any]:
    return {"id": ids.new_id(), "at": clock.now(), "actor": "test"}


async def create_set(js: JetStreamContext, name: str, replicas: int, **update: Any) -> int:
    config = SetConfig.model_validate(
        {"replicas": replicas, "template": {"image": "busybox"}, "update": update}
    )
    data = ev.SetSpecData(name=name, labels={"app": name}, config=config)
    return await append(js, ev.SetCreated(**_env(), data=data), 0)


async def until(
    js: JetStreamContext, after: int, done: Callable[[ev.AnyEvent], bool], subject: str = ""
) -> tuple[int, list[ev.AnyEvent]]:
    """Follow the log from ``after`` until ``done(event)``; the last sequence and the events."""
    seen: list[ev.AnyEvent] = []
    filter_ = subject or subjects.events_filter()
    async with (
        asyncio.timeout(WAIT_S),
        aclosing(read_events(js, filter_, start_seq=after + 1, follow=True)) as events,
    ):
        async for raw in events:
            event = decode(raw)
            seen.append(event)
            if done(event):
                return raw.seq, seen
    raise AssertionError("the log ended")


def distinct(kind: type[ev.Event], want: int) -> Callable[[ev.AnyEvent], bool]:
    """A ``done`` that is true once ``want`` distinct aggregates had a ``kind`` event."""
    names: set[str] = set()

    def done(event: ev.AnyEvent) -> bool:
        if isinstance(event, kind):
            names.add(ev.event_name(event))
        return len(names) >= want

    return done


async def start_members(
    js: JetStreamContext, placed: Sequence[ev.AnyEvent]
) -> tuple[int, ev.TaskStarted]:
    """Report each placement as started, as the agents would; the last report and its seq."""
    last: tuple[int, ev.TaskStarted] | None = None
    for event in placed:
        assert isinstance(event, ev.TaskScheduled)
        d = event.data
        data = ev.StartedData(name=d.name, node=d.node, epoch=d.epoch, container_id="c1")
        report = ev.TaskStarted(**_env(), data=data)
        last = (await append(js, report), report)
    assert last is not None
    return last


async def test_a_created_set_gets_its_members_created_placed_and_its_rollout_completed(
    scheduler: RunningScheduler, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "n1")
    await join(js, "n2")
    created = await create_set(js, "web", 3, min_healthy_s=1)
    _, events = await until(js, created, distinct(ev.TaskScheduled, 3))
    members = [e for e in events if isinstance(e, ev.TaskCreated)]
    assert sorted(e.data.name for e in members) == ["web-1", "web-2", "web-3"]
    assert members[0].data.labels == {"app": "web", SET_LABEL: "web", SET_REVISION_LABEL: "1"}
    placed = [e for e in events if isinstance(e, ev.TaskScheduled)]
    assert Counter(e.data.node for e in placed) in (Counter(n1=2, n2=1), Counter(n1=1, n2=2))
    started, last = await start_members(js, placed)
    # Nothing else is appended: only time (min_healthy_s) completes the rollout.
    _, tail = await until(
        js,
        started,
        lambda e: isinstance(e, ev.SetRolloutCompleted),
        subjects.event("set", "web"),
    )
    [done] = tail
    assert isinstance(done, ev.SetRolloutCompleted)
    assert done.data.revision == 1
    assert (done.at - last.at).total_seconds() >= 1  # min_healthy_s after the last start

    deleted_before = _set_actions("deleted")
    scaled = ev.SetScaled(**_env(), data=ev.SetScaledData(name="web", replicas=1))
    after = await append(js, scaled)
    _, events = await until(js, after, distinct(ev.TaskDeleted, 2))
    deleted = [e.data.name for e in events if isinstance(e, ev.TaskDeleted)]
    assert sorted(deleted) == ["web-2", "web-3"]
    # The events can be read before the scheduler, back from its append, counts them.
    for _ in range(100):
        if _set_actions("deleted") >= deleted_before + 2:
            break
        await asyncio.sleep(0.05)
    assert _set_actions("deleted") == deleted_before + 2


def _set_actions(action: str) -> float:
    value = REGISTRY.get_sample_value("voiyd_scheduler_set_actions_total", {"action": action})
    return value or 0.0


async def _task_created_counts(js: JetStreamContext) -> Counter[str]:
    last = (await js.stream_info(subjects.EVENTS_STREAM)).state.last_seq
    counts: Counter[str] = Counter()
    async with (
        asyncio.timeout(WAIT_S),
        aclosing(read_events(js, subjects.events_filter(), follow=True)) as events,
    ):
        async for raw in events:
            event = decode(raw)
            if isinstance(event, ev.TaskCreated):
                counts[event.data.name] += 1
            if raw.seq >= last:
                break
    return counts


async def test_two_schedulers_create_each_member_exactly_once(
    js_ready: Client, nats_server: NatsServer
) -> None:
    js = js_ready.jetstream()
    await join(js, "n1")
    first = await start_scheduler(nats_server.url)
    second = await start_scheduler(nats_server.url)
    try:
        created = await create_set(js, "web", 8)
        await until(js, created, distinct(ev.TaskScheduled, 8))
    finally:
        await first.stop()
        await second.stop()
    names = [f"web-{i}" for i in range(1, 9)]
    assert await _task_created_counts(js) == dict.fromkeys(names, 1)


async def test_a_member_deleted_by_hand_is_re_created(
    scheduler: RunningScheduler, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "n1")
    created = await create_set(js, "db", 2)
    await until(js, created, distinct(ev.TaskScheduled, 2))
    deleted = await append(js, ev.TaskDeleted(**_env(), data=ev.TaskRef(name="db-2")))
    _, events = await until(
        js, deleted, lambda e: isinstance(e, ev.TaskScheduled), subjects.event("task", "db-2")
    )
    assert [e.type for e in events] == ["task.created", "task.scheduled"]


async def test_a_drain_moves_a_sets_members_one_at_a_time(
    scheduler: RunningScheduler, nc: Client
) -> None:
    js = nc.jetstream()
    await join(js, "n1")
    created = await create_set(js, "web", 2, max_parallel=1)
    _, events = await until(js, created, distinct(ev.TaskScheduled, 2))
    started, _ = await start_members(js, [e for e in events if isinstance(e, ev.TaskScheduled)])
    await until(js, started, lambda e: isinstance(e, ev.SetRolloutCompleted))
    await join(js, "n2")
    drain = await append(js, ev.NodeDraining(**_env(), data=ev.NodeDrainData(name="n1")))
    # One member leaves; the other stays until the first runs again elsewhere.
    _, events = await until(js, drain, lambda e: isinstance(e, ev.TaskScheduled))
    [evicted] = [e for e in events if isinstance(e, ev.TaskEvicted)]
    assert evicted.data.reason == "node n1 draining"
    [moved] = [e for e in events if isinstance(e, ev.TaskScheduled)]
    assert (moved.data.name, moved.data.node) == (evicted.data.name, "n2")
    restarted, _ = await start_members(js, [moved])
    _, events = await until(js, restarted, lambda e: isinstance(e, ev.TaskScheduled))
    [second] = [e for e in events if isinstance(e, ev.TaskEvicted)]
    assert second.data.name != evicted.data.name
    assert [e.data.node for e in events if isinstance(e, ev.TaskScheduled)] == ["n2"]
