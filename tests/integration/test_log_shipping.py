"""The agent's log shipping (LogShipping) against a real nats-server, with the fake runtime.

The fake runtime says exactly what a container printed and when it ended, so these tests can
stage what is hard to catch with real processes: an agent that stopped with a batch in flight,
and a full buffer while NATS is away. ``sync`` is called as the agent's round calls it; the
stream is read with a plain ordered consumer. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.api import DeliverPolicy

from tests.natsserver import NatsServer
from voiyd.agent import logbatch as lb
from voiyd.agent.logship import LogShipping
from voiyd.agent.runtimes.fake import TEST_IMAGE, FakeRuntime
from voiyd.agent.runtimes.protocol import ContainerSpec, Observed
from voiyd.api.agent import Assignment, TaskReportKind
from voiyd.api.logs import MAX_LINE, LogBatch
from voiyd.api.specs import TaskConfig
from voiyd.bus import codec, subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.streams import ensure_streams

pytestmark = pytest.mark.nats

NODE = "n1"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = TaskConfig(image=TEST_IMAGE)


class Reports:
    def __init__(self) -> None:
        self.dropped: list[int] = []
        self.sent = asyncio.Event()

    def __call__(self, task: str, epoch: int, state: TaskReportKind, **fields: object) -> None:
        assert (task, epoch, state) == ("web", 1, "logs")
        self.dropped.append(int(str(fields["dropped"])))
        self.sent.set()


def assignment(epoch: int = 1) -> dict[str, Assignment]:
    a = Assignment(
        task="web",
        node=NODE,
        epoch=epoch,
        desired="running",
        config=CONFIG,
        revision=1,
        updated_at=NOW,
    )
    return {"web": a}


@asynccontextmanager
async def shipping(
    url: str, data_dir: Path, buffer: int = 1 << 20, reports: Reports | None = None
) -> AsyncIterator[LogShipping]:
    nc = await connect(NatsOptions(servers=(url,)), "test-logship")
    ship = LogShipping(NODE, data_dir, buffer, reports)
    stop = asyncio.Event()
    runner = asyncio.create_task(ship.run(nc, stop))
    try:
        yield ship
    finally:
        stop.set()
        await asyncio.wait_for(runner, 15)
        await nc.close()


async def sync(ship: LogShipping, fake: FakeRuntime) -> None:
    """One agent round's call, once ``run`` is under way (it ignores calls before)."""
    async with asyncio.timeout(10):
        while not ship.placements:
            ship.sync(await fake.list(NODE), assignment(), lambda c: fake)
            await asyncio.sleep(0.01)


async def read(nc: Client, eofs: int = 1, timeout: float = 30.0) -> list[tuple[str, LogBatch]]:
    sub = await nc.jetstream().subscribe(
        subjects.logs(NODE, "web"), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    out: list[tuple[str, LogBatch]] = []
    try:
        async with asyncio.timeout(timeout):
            while sum(b.eof for _, b in out) < eofs:
                msg = await sub.next_msg(timeout=timeout)
                batch = LogBatch.model_validate(codec.decode_map(msg.data))
                out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), batch))
    finally:
        await sub.unsubscribe()
    return out


async def start(fake: FakeRuntime) -> Observed:
    return await fake.start(ContainerSpec("web", 1, NODE, CONFIG))


async def test_output_is_numbered_split_batched_and_ended(
    nats_server: NatsServer, js_ready: Client, tmp_path: Path
) -> None:
    fake = FakeRuntime()
    c = await start(fake)
    long_line = "é" * MAX_LINE  # 2 * MAX_LINE bytes: two parts, cut between characters
    fake.emit(c.id, "stdout", b"hello")
    fake.emit(c.id, "stderr", b"\xff\xfe")
    fake.emit(c.id, "stdout", long_line.encode())
    url = nats_server.url
    async with shipping(url, tmp_path) as ship:
        await sync(ship, fake)
        fake.exit(c.id, 0)
        batches = await read(js_ready)
        await ship.drained(c.id, 10)
    lines = [line for _, b in batches for line in b.lines]
    assert [(x.n, x.s, x.partial) for x in lines] == [
        (1, "stdout", False),
        (2, "stderr", False),
        (3, "stdout", True),
        (4, "stdout", False),
    ]
    assert lines[1].line == b"\xff\xfe"
    assert "".join(str(x.line) for x in lines[2:]) == long_line
    assert [mid for mid, _ in batches] == ["web.1.1", f"web.1.eof.{c.id}"]
    assert batches[-1][1].eof and batches[-1][1].container_id == c.id
    saved = lb.parse_checkpoint((tmp_path / "logs" / "web.1.json").read_text())
    assert (saved.eof, saved.next_n, saved.done) == (True, 5, (c.id,))


async def test_a_batch_in_flight_when_the_agent_stopped_is_sent_again_and_stored_once(
    nats_server: NatsServer, js_ready: Client, tmp_path: Path
) -> None:
    fake = FakeRuntime()
    c = await start(fake)
    for i in range(1, 101):
        fake.emit(c.id, "stdout", str(i).encode())
    url = nats_server.url
    async with shipping(url, tmp_path / "first") as ship:
        await sync(ship, fake)
        await _until_lines(js_ready, 100)
    # As if that agent died after publishing lines 1..100 but before their ack came back.
    (tmp_path / "second" / "logs").mkdir(parents=True)
    in_flight = lb.Checkpoint("web", 1, c.id, lb.Cursor(), next_n=1, inflight_last=100)
    (tmp_path / "second" / "logs" / "web.1.json").write_text(lb.checkpoint_text(in_flight))
    fake.emit(c.id, "stdout", b"101")
    async with shipping(url, tmp_path / "second") as ship:
        await sync(ship, fake)
        fake.exit(c.id, 0)
        batches = await read(js_ready)
    numbers = [line.n for _, b in batches for line in b.lines]
    assert numbers == list(range(1, 102))
    assert [str(line.line) for _, b in batches for line in b.lines] == [
        str(i) for i in range(1, 102)
    ]


async def _until_lines(nc: Client, count: int) -> None:
    sub = await nc.jetstream().subscribe(
        subjects.logs(NODE, "web"), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    seen = 0
    try:
        async with asyncio.timeout(30):
            while seen < count:
                msg = await sub.next_msg(timeout=30)
                seen += len(LogBatch.model_validate(codec.decode_map(msg.data)).lines)
    finally:
        await sub.unsubscribe()


async def test_a_full_buffer_while_nats_is_away_drops_counts_and_reports(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    setup = await connect(NatsOptions(servers=(nats_server.url,)), "test-setup")
    await ensure_streams(setup.jetstream())
    await setup.close()
    fake, reports = FakeRuntime(), Reports()
    c = await start(fake)
    buffer = 50 * (lb.LINE_OVERHEAD + 8)  # room for about 50 short lines
    async with shipping(nats_server.url, tmp_path, buffer, reports) as ship:
        await sync(ship, fake)
        nats_server.stop()
        for i in range(1, 201):
            fake.emit(c.id, "stdout", f"line-{i}".encode())
        fake.exit(c.id, 0)
        async with asyncio.timeout(30):
            await reports.sent.wait()  # reported while NATS is still away (queued for it)
        nats_server.start()
        nc = await connect(NatsOptions(servers=(nats_server.url,)), "test-reader")
        try:
            batches = await read(nc)
        finally:
            await nc.close()
    lines = [line for _, b in batches for line in b.lines]
    dropped = batches[-1][1].dropped
    assert 0 < dropped == 200 - len(lines)
    assert all(line.line == f"line-{line.n}" for line in lines)
    assert reports.dropped[-1] <= dropped
