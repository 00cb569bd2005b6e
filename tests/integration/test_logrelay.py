"""The log relay against a real nats-server: history, tail, since, follow, end of stream, sets.

Logs are published by ``tests.logpub`` exactly as the agent ships them, and tasks live and end
through events appended to the log (``tests.taskevents``); the relay runs in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from tests.logpub import LogPublisher, numbered
from tests.natsserver import NatsServer
from tests.taskevents import TaskLife
from voiyd import clock, ids
from voiyd.api.views import NodeCapacity
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions
from voiyd.bus.publish import append
from voiyd.bus.rpc import call
from voiyd.bus.streams import LogLimitOptions, LogLimits, ensure_streams
from voiyd.errors import InvalidRequestError, NotFoundError, UnavailableError
from voiyd.events import models as ev
from voiyd.logrelay.runner import READ_SUBJECT, Relay, RelaySettings

pytestmark = pytest.mark.nats


class RunningRelay:
    def __init__(self, relay: Relay, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.relay = relay
        self.stop_event = stop
        self.task = task

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)


async def start_relay(url: str, **kwargs: Any) -> RunningRelay:
    relay = Relay(RelaySettings(nats=NatsOptions(servers=(url,)), **kwargs))
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    ready = asyncio.create_task(relay.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task.done():
            task.result()
        raise RuntimeError("voiyd-logrelay did not become ready")
    return RunningRelay(relay, stop, task)


async def answering(nc: Client) -> None:
    """Until the relay answers on this connection: a connection made before the relay
    subscribed may get "no responders" for a moment after it has (seen with nats-server 2.15)."""
    for _ in range(100):
        try:
            await read(nc, task="probe")
        except NotFoundError:
            return
        except UnavailableError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the relay never answered")


@pytest.fixture
async def relay(nats_server: NatsServer, js_ready: Client) -> AsyncIterator[RunningRelay]:
    running = await start_relay(nats_server.url, eof_wait_s=1.0, tick_s=0.2)
    try:
        await answering(js_ready)
        yield running
    finally:
        await running.stop()


async def read(nc: Client, **body: Any) -> dict[str, Any]:
    return await call(nc, READ_SUBJECT, body, timeout=float(body.get("wait_s", 0)) + 10)


def lines_of(reply: dict[str, Any]) -> list[Any]:
    return [line["line"] for c in reply["chunks"] for line in c["lines"]]


async def read_all(
    nc: Client, after: dict[str, Any] | None = None, **body: Any
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every line until end of stream, following the cursor; and every reply."""
    out: list[Any] = []
    replies: list[dict[str, Any]] = []
    after = after or {}
    for _ in range(10_000):
        reply = await read(nc, **body, after=after)
        replies.append(reply)
        out += lines_of(reply)
        after = reply["cursor"]
        if reply["eos"]:
            return out, replies
    raise AssertionError("the stream never ended")


async def ran(js_nc: Client, name: str, count: int, **publisher: Any) -> LogPublisher:
    """A task that printed ``count`` numbered lines and exited 0."""
    js = js_nc.jetstream()
    life = TaskLife(js, name)
    await life.created()
    await life.started()
    pub = LogPublisher(js, name, **publisher)
    await pub.write(numbered(count))
    await pub.end()
    await life.exited(0)
    return pub


async def joined(js: JetStreamContext, node: str) -> None:
    data = ev.NodeJoinedData(
        name=node, runtimes=["exec"], capacity=NodeCapacity(cpus=1, memory=1 << 30)
    )
    await append(js, ev.NodeJoined(id=ids.new_id(), at=clock.now(), actor="t", data=data), 0)


# ---- history ------------------------------------------------------------------------------------


async def test_ten_thousand_lines_come_back_in_order_none_twice(
    relay: RunningRelay, js_ready: Client
) -> None:
    await ran(js_ready, "web", 10_000, batch_lines=337)
    got, replies = await read_all(js_ready, task="web", max_lines=3000)
    assert got == numbered(10_000)
    assert len(replies) >= 4  # it took several pages
    assert replies[-1]["reason"] == "end of stored logs"


async def test_tail_gives_the_last_lines(relay: RunningRelay, js_ready: Client) -> None:
    await ran(js_ready, "web", 1000, batch_lines=7)
    assert (await read_all(js_ready, task="web", tail=5))[0] == numbered(5, start=996)
    assert (await read_all(js_ready, task="web", tail=0))[0] == []
    assert (await read_all(js_ready, task="web", tail=5000))[0] == numbered(1000)


async def test_tail_walks_back_over_other_tasks_messages(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    mine = LogPublisher(js, "web", batch_lines=1)
    other = LogPublisher(js, "api", batch_lines=1)
    await mine.write(numbered(3))
    for _ in range(5):
        await other.write(numbered(400))  # 2000 messages of another task after mine
    await TaskLife(js, "web").created()
    assert (await read_all(js_ready, task="web", tail=2))[0] == numbered(2, start=2)


async def test_since_and_until_filter_by_the_time_lines_were_written(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    await TaskLife(js, "web").created()
    pub = LogPublisher(js, "web")
    now = clock.now()
    await pub.write(["old"], t=now - timedelta(hours=2))
    await pub.write(["middle"], t=now - timedelta(minutes=30))
    await pub.write(["new"], t=now)
    assert (await read_all(js_ready, task="web", since="1h"))[0] == ["middle", "new"]
    assert (await read_all(js_ready, task="web", until="10m"))[0] == ["old", "middle"]
    assert (await read_all(js_ready, task="web", since="1h", until="10m"))[0] == ["middle"]


async def test_stream_filter_and_binary_lines(relay: RunningRelay, js_ready: Client) -> None:
    js = js_ready.jetstream()
    await TaskLife(js, "web").created()
    pub = LogPublisher(js, "web")
    await pub.write(["out 1"])
    await pub.write(["err 1", b"\xff\xfe raw"], stream="stderr")
    assert (await read_all(js_ready, task="web", stream="stderr"))[0] == ["err 1", b"\xff\xfe raw"]
    assert (await read_all(js_ready, task="web", stream="stdout"))[0] == ["out 1"]


async def test_big_lines_are_paged_within_the_reply_size(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    await TaskLife(js, "web").created()
    pub = LogPublisher(js, "web", batch_lines=50)
    texts = [f"{i:04d}" + "x" * 16_000 for i in range(200)]  # 3.2 MB in 50-line batches
    await pub.write(texts)
    got, replies = await read_all(js_ready, task="web")
    assert got == texts
    assert len(replies) >= 7  # each reply holds at most half of max_payload


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"task": "web*"}, "task", id="wildcard"),
        pytest.param({"task": "web", "tail": -1}, "tail", id="negative-tail"),
        pytest.param({"task": "web", "since": "last tuesday"}, "since", id="malformed-since"),
    ],
)
async def test_bad_requests_are_invalid_naming_the_field(
    relay: RunningRelay, js_ready: Client, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await read(js_ready, **body)
    assert [f.loc for f in info.value.fields] == [field]


async def test_an_unknown_task_or_set_is_not_found(relay: RunningRelay, js_ready: Client) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        await read(js_ready, task="ghost")
    with pytest.raises(NotFoundError, match="ghosts"):
        await read(js_ready, set="ghosts")


# ---- follow -------------------------------------------------------------------------------------


async def test_follow_waits_for_new_lines_and_ends_when_the_task_has_exited(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    life = TaskLife(js, "web")
    await life.created()
    await life.started()
    pub = LogPublisher(js, "web")
    await pub.write(["first"])
    first = await read(js_ready, task="web", follow=True, wait_s=5)
    assert lines_of(first) == ["first"] and not first["eos"]
    waiting = asyncio.create_task(
        read(js_ready, task="web", follow=True, wait_s=20, after=first["cursor"])
    )
    await asyncio.sleep(0.3)  # the relay is waiting now (not asserted: just a chance to)
    await pub.write(["second"])
    second = await waiting
    assert lines_of(second) == ["second"] and not second["eos"]
    await pub.write(["third"])
    await pub.end()
    await life.exited(0)
    got: list[Any] = []
    after = second["cursor"]
    while True:
        reply = await read(js_ready, task="web", follow=True, wait_s=5, after=after)
        got += lines_of(reply)
        after = reply["cursor"]
        if reply["eos"]:
            break
    assert got == ["third"]
    assert reply["reason"] == "task web exited with code 0"


async def test_follow_of_a_task_that_restarts_goes_on_past_its_exit(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    life = TaskLife(js, "web")
    await life.created(restart="always")
    await life.started()
    pub = LogPublisher(js, "web")
    await pub.write(["run 1"])
    await pub.end()
    await life.exited(0)
    reply = await read(js_ready, task="web", follow=True, wait_s=1.5)
    assert lines_of(reply) == ["run 1"]
    reply = await read(js_ready, task="web", follow=True, wait_s=1.5, after=reply["cursor"])
    assert not reply["eos"]  # the agent will restart it: the follow goes on
    await life.stopped()
    reply = await read(js_ready, task="web", follow=True, wait_s=5, after=reply["cursor"])
    assert reply["eos"] and reply["reason"] == "task web stopped"


async def test_follow_ends_without_eof_when_the_tasks_node_is_gone(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    life = TaskLife(js, "web")
    await life.created()
    await life.started()  # on node n1, which never joined: no agent will send an eof
    await LogPublisher(js, "web").write(["only"])
    await life.deleted()
    got, replies = await read_all(js_ready, task="web", follow=True, wait_s=5)
    assert got == ["only"]
    assert replies[-1]["reason"] == "task web was deleted"


async def test_follow_gives_up_on_the_eof_of_a_live_agent_after_a_while(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    await joined(js, "n1")
    life = TaskLife(js, "web")
    await life.created()
    await life.started()
    await LogPublisher(js, "web").write(["only"])
    await life.exited(0)
    got, replies = await read_all(js_ready, task="web", follow=True, wait_s=5)
    assert got == ["only"]
    assert replies[-1]["reason"] == (
        "task web exited with code 0 (its agent sent no end-of-output mark)"
    )


async def test_follow_of_a_task_that_never_started_ends_at_once(
    relay: RunningRelay, js_ready: Client
) -> None:
    js = js_ready.jetstream()
    await TaskLife(js, "web").created()
    await append(
        js,
        ev.TaskStopRequested(
            id=ids.new_id(), at=clock.now(), actor="t", data=ev.TaskRef(name="web")
        ),
    )
    reply = await read(js_ready, task="web", follow=True, wait_s=5)
    assert reply["eos"] and reply["reason"] == "task web stopped"


async def test_another_replica_continues_from_the_cursor(
    nats_server: NatsServer, js_ready: Client
) -> None:
    await ran(js_ready, "web", 5000, batch_lines=100)
    first = await start_relay(nats_server.url)
    try:
        await answering(js_ready)
        page = await read(js_ready, task="web", max_lines=1234)
    finally:
        await first.stop()
    second = await start_relay(nats_server.url)
    try:
        await answering(js_ready)
        rest, _ = await read_all(js_ready, page["cursor"], task="web")
    finally:
        await second.stop()
    assert lines_of(page) + rest == numbered(5000)


# ---- sets ---------------------------------------------------------------------------------------


async def test_a_set_merges_its_tasks_and_ends_when_all_have(
    relay: RunningRelay, js_ready: Client
) -> None:
    await ran(js_ready, "web-1", 3)
    await ran(js_ready, "web-2", 2)
    await ran(js_ready, "webapp-1", 2)  # another set whose name starts the same way
    got, replies = await read_all(js_ready, set="web", follow=True, wait_s=5)
    tasks = [c["task"] for r in replies for c in r["chunks"] if c["lines"]]
    assert sorted(got) == sorted(numbered(3) + numbered(2))
    assert set(tasks) == {"web-1", "web-2"}
    assert replies[-1]["reason"] == "all 2 tasks of set web ended"


async def test_a_busy_task_does_not_starve_the_rest_of_its_set(
    relay: RunningRelay, js_ready: Client
) -> None:
    await ran(js_ready, "web-1", 5000)
    await ran(js_ready, "web-2", 3)
    first = await read(js_ready, set="web", max_lines=1000)
    assert {c["task"] for c in first["chunks"] if c["lines"]} == {"web-1", "web-2"}


# ---- stream limits ------------------------------------------------------------------------------


async def test_log_limits_are_set_when_given_and_kept_when_not(js_ready: Client) -> None:
    js = js_ready.jetstream()
    await ensure_streams(js, log_limits=LogLimitOptions(max_age_s=3600, max_lines_per_task=50))
    await ensure_streams(js)  # a daemon started without --logs-max-* changes nothing
    config = (await js.stream_info(subjects.LOGS_STREAM)).config
    assert config.max_age == 3600
    assert config.max_msgs_per_subject == 50
    assert config.max_bytes == LogLimits().max_bytes
