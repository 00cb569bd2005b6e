"""Logs end to end with real agents: an exec task's output through voiyd-node, VOIYD_LOGS and
voiyd-logrelay to ``voiydctl logs`` (server, scheduler, agent and relay as processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.test_cli_support import Cli, read_until
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

COUNT = 10_000


@pytest.fixture
async def cluster(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(nats_server, tmp_path) as c:
        c.server()
        c.scheduler()
        c.node("n1", "--runtime", "exec")
        c.logrelay()
        yield c


def numbers(count: int, start: int = 1) -> list[str]:
    return [str(i) for i in range(start, start + count)]


async def counted(cluster: Cluster, name: str = "counter") -> None:
    """A task that printed 1..COUNT and exited 0."""
    config = {"runtime": "exec", "args": ["seq", "1", str(COUNT)], "restart": "never"}
    await cluster.create(name, config)
    await cluster.wait_phase(name, "exited")


async def test_all_lines_in_order_none_twice_then_the_tail(
    cluster: Cluster, tmp_path: Path
) -> None:
    await counted(cluster)
    voiydctl = Cli(cluster.nats.url, tmp_path)
    follower = await voiydctl.spawn("logs", "-f", "counter")
    stdout, stderr = await asyncio.wait_for(follower.communicate(), 90)
    assert follower.returncode == 0, stderr.decode()
    assert stdout.decode().splitlines() == numbers(COUNT)
    tail = await voiydctl("logs", "counter", "--tail", "5")
    assert tail.stdout.splitlines() == numbers(5, start=COUNT - 4)


async def test_follow_shows_lines_as_they_come_and_ends_when_the_task_stops(
    cluster: Cluster, tmp_path: Path
) -> None:
    script = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"
    await cluster.create("ticker", {"runtime": "exec", "args": ["sh", "-c", script]})
    await cluster.wait_phase("ticker", "running")
    follower = await Cli(cluster.nats.url, tmp_path).spawn("logs", "-f", "ticker")
    assert follower.stdout is not None
    await read_until(follower.stdout, "tick 3")
    await read_until(follower.stdout, "tick 6")  # new lines keep coming while it runs
    await cluster.api("task", "stop", {"name": "ticker"})
    _, stderr = await asyncio.wait_for(follower.communicate(), 60)
    assert follower.returncode == 0, stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_logs_stay_readable_after_the_agent_and_the_relay_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    await counted(cluster)
    node = next(p for p in cluster.procs if p.module == "voiyd.agent.main")
    relay = next(p for p in cluster.procs if p.module == "voiyd.logrelay.main")
    node.stop()
    node.start()
    relay.kill()
    relay.start()
    result = await Cli(cluster.nats.url, tmp_path)("logs", "counter")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == numbers(COUNT)
