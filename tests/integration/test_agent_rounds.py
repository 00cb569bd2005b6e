"""An agent acts once per change, however long each action takes.

Real nats-server and voiyd-server; the agent runs in this process with a fake runtime whose
``stop`` takes a while. A new placement of a running task makes one round both stop the old copy
and start the new one; the start ends first. The task must stay busy until the stop has ended
too, so the old copy is stopped once and the new one started once (it used to be stopped again
by every round in between, and a start could even be repeated: "already running").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.agentharness import running_agent
from tests.conftest import RunningServer
from tests.integration.test_agent_templates import IMAGE, NODE, running, until
from tests.natsserver import NatsServer
from voiyd import clock
from voiyd.agent.runtimes.fake import FakeRuntime
from voiyd.agent.runtimes.protocol import ContainerSpec, Observed
from voiyd.api.agent import Assignment
from voiyd.api.specs import TaskConfig
from voiyd.bus import codec, subjects

pytestmark = pytest.mark.nats

STOP_S = 1.5


class SlowStop(FakeRuntime):
    """A runtime whose stops take ``STOP_S`` and that records its starts and stops."""

    def __init__(self) -> None:
        super().__init__(images=(IMAGE,))
        self.starts: list[tuple[str, int]] = []
        self.stops: list[str] = []

    async def start(self, spec: ContainerSpec) -> Observed:
        self.starts.append((spec.task, spec.epoch))
        return await super().start(spec)

    async def stop(self, container_id: str, timeout_s: float) -> None:
        self.stops.append(container_id)
        await asyncio.sleep(STOP_S)
        await super().stop(container_id, timeout_s)


@pytest.fixture
async def slow(
    api_server: RunningServer, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[SlowStop]:
    runtime = SlowStop()
    async with running_agent(nats_server.url, NODE, tmp_path / "node", {"docker": runtime}):
        yield runtime


def placement(epoch: int) -> bytes:
    a = Assignment(
        task="web",
        node=NODE,
        epoch=epoch,
        desired="running",
        config=TaskConfig(image=IMAGE),
        revision=epoch,
        updated_at=clock.now(),
    )
    return codec.encode(a)


async def test_a_new_placement_stops_the_old_copy_once_and_starts_the_new_one_once(
    slow: SlowStop, nc: Client
) -> None:
    kv = await nc.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)
    key = subjects.assignment_key(NODE, "web")
    await kv.put(key, placement(1))
    [first] = await until(slow, running(1), "epoch 1 running")
    await kv.put(key, placement(2))
    await until(slow, running(2), "epoch 2 running and epoch 1 gone")
    await asyncio.sleep(STOP_S)  # rounds that could repeat an action get their chance
    assert slow.stops == [first.id]  # stopped once
    assert slow.starts == [("web", 1), ("web", 2)]
