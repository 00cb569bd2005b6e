"""Shared fixtures: a real nats-server per test, an in-process voiyd-server, leak checks.

``VOIYD_REQUIRE_NATS=1`` (set in CI) turns a missing nats-server into a failure instead of a skip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from tests.natsserver import NatsServer, nats_server_binary
from voiyd.bus.connect import NatsOptions
from voiyd.bus.streams import ensure_streams
from voiyd.server.runner import Server, ServerSettings


def _require(var: str) -> bool:
    return os.environ.get(var, "") not in ("", "0")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    if nats_server_binary() is None:
        if _require("VOIYD_REQUIRE_NATS"):
            pytest.fail("nats-server is required (VOIYD_REQUIRE_NATS=1) but was not found")
        pytest.skip("nats-server not installed")
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(nats_server.url, name="voiyd-tests")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def js_ready(nc: Client) -> Client:
    """A connection whose server has voiyd's streams and bucket."""
    await ensure_streams(nc.jetstream())
    return nc


class RunningServer:
    def __init__(self, server: Server, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.server = server
        self.stop_event = stop
        self.task = task

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)


async def start_server(nats_url: str, data_dir: Path, **kwargs: object) -> RunningServer:
    settings = ServerSettings(nats=NatsOptions(servers=(nats_url,)), data_dir=data_dir, **kwargs)  # type: ignore[arg-type]
    server = Server(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    ready = asyncio.create_task(server.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task.done():
            task.result()
        raise RuntimeError("voiyd-server did not become ready")
    return RunningServer(server, stop, task)


@pytest.fixture
async def api_server(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """An in-process voiyd-server against the test's nats-server."""
    running = await start_server(nats_server.url, tmp_path / "server")
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail any test that leaves an asyncio task of its own running (kopf's habit)."""
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leaked = [
        t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
    ]
    if leaked:
        for t in leaked:
            t.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"test left {len(leaked)} asyncio task(s) running: {leaked[:3]}")
