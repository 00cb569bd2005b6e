"""An agent writes a task's template volumes before it starts it, and forgets them after.

Real nats-server and voiyd-server; the agent runs in this process with the fake runtime, and
its assignments are written to the bucket the way voiyd-server writes them (the template
volumes' files inside the assignment). Host-local volumes on the node are never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.kv import KeyValue

from tests.agentharness import running_agent
from tests.conftest import RunningServer
from tests.natsserver import NatsServer
from voiyd.agent.runtimes.fake import FakeRuntime
from voiyd.agent.runtimes.protocol import Observed
from voiyd.api.agent import Assignment
from voiyd.api.specs import TaskConfig, VolumeConfig
from voiyd.bus import codec, subjects

pytestmark = pytest.mark.nats

NODE = "n1"
IMAGE = "busybox:test"
DEADLINE_S = 30.0


@pytest.fixture
async def fake(
    api_server: RunningServer, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[FakeRuntime]:
    runtime = FakeRuntime()
    runtime.images.add(IMAGE)
    async with running_agent(nats_server.url, NODE, tmp_path / "node", {"docker": runtime}):
        yield runtime


def assignment(epoch: int, files: dict[str, str]) -> Assignment:
    return Assignment(
        task="web",
        node=NODE,
        epoch=epoch,
        desired="running",
        config=TaskConfig(image=IMAGE, mounts=["conf:/etc/app", "data:/var/data"]),
        revision=epoch,
        updated_at=datetime.now(UTC),
        volumes={"conf": VolumeConfig(type="template", files=files)},
    )


async def until(
    fake: FakeRuntime, check: Callable[[list[Observed]], bool], what: str
) -> list[Observed]:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            found = await fake.list(NODE)
            if check(found):
                return found
            await asyncio.sleep(0.05)
    raise AssertionError(what)


async def bucket(nc: Client) -> KeyValue:
    return await nc.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)


def running(epoch: int) -> Callable[[list[Observed]], bool]:
    return lambda found: [(c.epoch, c.state) for c in found] == [(epoch, "running")]


async def test_template_files_are_written_before_the_start_and_removed_after_the_task(
    fake: FakeRuntime, nc: Client, tmp_path: Path
) -> None:
    kv = await bucket(nc)
    key = subjects.assignment_key(NODE, "web")
    host_local = tmp_path / "node" / "volumes" / "data"
    await kv.put(key, codec.encode(assignment(1, {"app.conf": "v1\n"})))
    [first] = await until(fake, running(1), "epoch 1 running")
    conf = fake.spec_of(first.id).templates["conf"]
    assert (conf / "app.conf").read_text() == "v1\n"
    assert (tmp_path / "node" / "templates" / "web" / "conf" / "app.conf").read_text() == "v1\n"
    assert "data" not in fake.spec_of(first.id).templates  # host-local: not a template
    host_local.mkdir(parents=True)
    (host_local / "keep").write_text("kept")

    await kv.put(key, codec.encode(assignment(2, {"app.conf": "v2\n"})))
    [second] = await until(fake, running(2), "epoch 2 running")
    conf = fake.spec_of(second.id).templates["conf"]
    assert (conf / "app.conf").read_text() == "v2\n"

    await kv.delete(key)
    await until(fake, lambda found: not found, "the task's containers gone")
    async with asyncio.timeout(DEADLINE_S):
        while True:  # the next round forgets the files
            if not (tmp_path / "node" / "templates" / "web").exists():
                break
            await asyncio.sleep(0.05)
    assert (host_local / "keep").read_text() == "kept"
