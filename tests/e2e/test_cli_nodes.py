"""``voiydctl get nodes`` and ``describe node`` for a node that joined (its event appended)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from tests.e2e.test_cli_support import Cli, rows
from tests.natsserver import NatsServer
from voiyd import clock, ids
from voiyd.api.views import NodeCapacity
from voiyd.bus.publish import append
from voiyd.events import models as ev

pytestmark = pytest.mark.nats


async def _join(nc: Client, name: str) -> int:
    data = ev.NodeJoinedData(
        name=name,
        labels={"disk": "ssd"},
        runtimes=["docker", "exec"],
        capacity=NodeCapacity(cpus=4, memory=8 * 1024**3),
        agent_version="0.1.0",
    )
    event = ev.NodeJoined(id=ids.new_id(), at=clock.now(), actor="tests", data=data)
    return await append(nc.jetstream(), event)


async def _until_listed(voiydctl: Cli, deadline_s: float = 30) -> None:
    """The projection applies the appended event shortly after; wait for it (bounded)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    while not await voiydctl.ok("get", "nodes", "-o", "name"):
        assert loop.time() < give_up, "node n1 was never listed"
        await asyncio.sleep(0.05)


async def test_get_and_describe_a_node(
    api_server: RunningServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    assert (await voiydctl("get", "nodes")).stderr == "No nodes found.\n"
    await _join(nc, "n1")
    await _until_listed(voiydctl)
    table = rows(await voiydctl.ok("get", "nodes"))
    assert table[0] == [
        "NAME", "PHASE", "SCHEDULABLE", "RUNTIMES", "CPU", "MEMORY", "TASKS", "VERSION", "AGE",
    ]  # fmt: skip
    assert table[1][0] == "n1"
    assert table[1][3:8] == ["docker,exec", "0/4", "0/8Gi", "0", "0.1.0"]
    assert await voiydctl.ok("get", "nodes", "-l", "disk=ssd", "-o", "name") == "node/n1\n"
    text = await voiydctl.ok("describe", "node/n1")
    assert "Labels:        disk=ssd" in text
    assert "node.joined" in text.split("Events:", 1)[1]
