"""An agent in the test's own event loop, over a real nats-server, with a runtime the test picks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from voiyd.agent.runner import Agent, AgentSettings
from voiyd.agent.runtimes.protocol import Runtime
from voiyd.bus.connect import NatsOptions

JOIN_TIMEOUT_S = 30.0


@asynccontextmanager
async def running_agent(
    nats_url: str, node: str, data_dir: Path, runtimes: Mapping[str, Runtime]
) -> AsyncIterator[Agent]:
    """Run an agent named ``node`` until the block ends; yields once it has joined."""
    settings = AgentSettings(
        name=node,
        nats=NatsOptions(servers=(nats_url,), inbox_prefix=f"_INBOX.{node}"),
        data_dir=data_dir,
    )
    agent = Agent(settings, runtimes)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(JOIN_TIMEOUT_S):
            await agent.joined.wait()
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
