"""KeyWatch: a node's view of its assignment keys through a consumer that names its filter.

It must behave like nats-py's ``kv.watch`` (current values, then puts and deletes, in order),
create its consumer on the one subject a node's credentials allow, and carry on after its
consumer is lost (deleted, or a nats-server restart) from where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from tests.natsserver import NatsServer
from voiyd.bus import subjects
from voiyd.bus.kvwatch import KeyChange, KeyWatch

pytestmark = pytest.mark.nats

BUCKET = subjects.ASSIGNMENTS_BUCKET
HEARTBEAT_S = 0.5


class Watching:
    def __init__(self, watch: KeyWatch) -> None:
        self.watch = watch
        self.changes: list[KeyChange] = []

    async def until(self, check: Callable[[list[KeyChange]], bool], timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while True:  # changes arrive from the watch's task
                if check(self.changes):
                    return
                await asyncio.sleep(0.02)

    def seen(self) -> list[tuple[str, bytes, str | None]]:
        return [(c.key, c.value, c.operation) for c in self.changes]


@pytest.fixture
async def watching(js_ready: Client) -> AsyncIterator[Watching]:
    kv = await js_ready.jetstream().key_value(BUCKET)
    await kv.put("n1.web", b"v1")
    await kv.put("n2.db", b"other")
    w = Watching(KeyWatch(js_ready, BUCKET, "n1.*", heartbeat_s=HEARTBEAT_S))
    stop = asyncio.Event()
    task = asyncio.create_task(w.watch.run(w.changes.append, stop))
    try:
        yield w
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_watch_delivers_current_values_then_changes_of_its_keys_only(
    js_ready: Client, watching: Watching
) -> None:
    kv = await js_ready.jetstream().key_value(BUCKET)
    await watching.until(lambda c: len(c) == 1)
    await kv.put("n1.api", b"a1")
    await kv.put("n2.db", b"other-2")
    await kv.put("n1.web", b"v2")
    await kv.delete("n1.api")
    await watching.until(lambda c: len(c) == 4)
    await asyncio.sleep(3 * HEARTBEAT_S)  # heartbeats come and go; nothing else arrives
    assert watching.seen() == [
        ("n1.web", b"v1", None),
        ("n1.api", b"a1", None),
        ("n1.web", b"v2", None),
        ("n1.api", b"", "DEL"),
    ]
    assert watching.watch.consumers == 1


async def test_watch_creates_its_consumer_on_the_subject_that_names_its_filter(
    js_ready: Client, watching: Watching
) -> None:
    seen: list[str] = []

    async def spy(msg: Msg) -> None:
        seen.append(msg.subject)

    await js_ready.subscribe("$JS.API.CONSUMER.CREATE.>", cb=spy)
    await js_ready.flush()
    await watching.until(lambda c: len(c) == 1)
    info = await js_ready.jetstream().consumers_info(f"KV_{BUCKET}")
    names = {c.name for c in info}
    await _delete_consumers(js_ready)
    await watching.until(lambda _: watching.watch.consumers == 2)
    await js_ready.flush()
    assert seen  # at least the second consumer's create (the first may predate the spy)
    prefix = f"$JS.API.CONSUMER.CREATE.KV_{BUCKET}."
    for created in seen:
        assert created.startswith(prefix)
        _, _, filter_subject = created.removeprefix(prefix).partition(".")
        assert filter_subject == f"$KV.{BUCKET}.n1.*"
    assert seen[-1].removeprefix(prefix).partition(".")[0] not in names


async def _delete_consumers(nc: Client) -> None:
    js = nc.jetstream()
    for c in await js.consumers_info(f"KV_{BUCKET}"):
        await js.delete_consumer(f"KV_{BUCKET}", c.name)


async def test_watch_goes_on_after_its_consumer_is_deleted(
    js_ready: Client, watching: Watching
) -> None:
    kv = await js_ready.jetstream().key_value(BUCKET)
    await watching.until(lambda c: len(c) == 1)
    await _delete_consumers(js_ready)
    await kv.put("n1.web", b"v2")  # while no consumer exists
    await watching.until(lambda c: len(c) == 2)
    await kv.put("n1.web", b"v3")
    await watching.until(lambda c: len(c) == 3)
    assert [v for _, v, _ in watching.seen()] == [b"v1", b"v2", b"v3"]
    assert watching.watch.consumers == 2


async def test_watch_goes_on_after_a_nats_server_restart(
    nats_server: NatsServer, js_ready: Client, watching: Watching
) -> None:
    kv = await js_ready.jetstream().key_value(BUCKET)
    await watching.until(lambda c: len(c) == 1)
    nats_server.stop()
    nats_server.start()
    async with asyncio.timeout(15):
        while True:  # the client reconnects by itself
            if js_ready.is_connected:
                break
            await asyncio.sleep(0.05)
    async with asyncio.timeout(15):
        while True:  # JetStream answers again once it has recovered its streams
            try:
                await kv.put("n1.web", b"after-restart")
                break
            except nats.errors.Error:
                await asyncio.sleep(0.1)
    await watching.until(lambda c: len(c) >= 2)
    assert watching.seen()[-1] == ("n1.web", b"after-restart", None)
    assert [v for _, v, _ in watching.seen()].count(b"v1") == 1
