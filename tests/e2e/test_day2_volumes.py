"""Volumes end to end: real server, scheduler, two Docker agents, a real engine.

A host-local volume pins its tasks to its node, and its data survives the task's stop and start,
the agent's restart and the task's deletion and re-creation. A template volume's files appear
read-only in the container. A volume in use cannot be deleted.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dockerimage import node_containers, remove_node_containers, require_test_image
from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.test_cli_support import Cli
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e, pytest.mark.docker]


def _docker_exec(container: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", container, *cmd], capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def nodes() -> Iterator[tuple[str, str]]:
    tag = f"{os.getpid()}-{os.urandom(2).hex()}"
    names = (f"va{tag}", f"vb{tag}")
    yield names
    remove_node_containers(*names)


def writer(image: str) -> dict[str, Any]:
    """A task that appends one line to /data/runs each time it starts."""
    return {
        "image": image,
        "args": ["sh", "-c", "echo run >> /data/runs; exec sleep 3600"],
        "mounts": ["data:/data"],
        "stop_timeout_s": 1,
    }


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def runs(path: Path, want: int) -> int:
    """Lines in the volume's file, once it has ``want`` of them (or what it has after a while)."""
    count = 0
    for _ in range(150):
        count = await asyncio.to_thread(_lines, path)
        if count >= want:
            return count
        await asyncio.sleep(0.2)
    return count


async def restart_task(cluster: Cluster, name: str) -> None:
    await cluster.api("task", "stop", {"name": name})
    await cluster.wait_phase(name, "stopped")
    await cluster.api("task", "start", {"name": name})
    await cluster.wait_phase(name, "running")


async def test_host_local_volume_data_survives_stop_agent_restart_and_re_creation(
    nats_server: NatsServer, tmp_path: Path, nodes: tuple[str, str]
) -> None:
    image = require_test_image()
    voiydctl = Cli(nats_server.url, tmp_path)
    _, pinned = nodes
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(nodes[0], "--runtime", "docker")
        agent = cluster.node(pinned, "--runtime", "docker")
        data = tmp_path / f"node-{pinned}" / "volumes" / "data" / "runs"

        await voiydctl.ok("create", "volume", "data", "--node", pinned)
        await cluster.create("db", writer(image))
        task = await cluster.wait_phase("db", "running")
        assert task["status"]["node"] == pinned  # placed where its data is
        assert await runs(data, 1) == 1

        await restart_task(cluster, "db")
        assert await runs(data, 2) == 2

        agent.stop()
        agent.start()
        task = await cluster.wait_task(
            "db", lambda t: t["status"]["phase"] == "running", what="running after restart"
        )
        await restart_task(cluster, "db")
        assert await runs(data, 3) == 3

        in_use = await voiydctl("delete", "volume", "data")
        assert in_use.exit_code == 6, in_use.stderr
        assert "db" in in_use.stderr

        await cluster.api("task", "delete", {"name": "db"})
        for _ in range(150):
            if not node_containers(pinned):
                break
            await asyncio.sleep(0.2)
        assert node_containers(pinned) == []
        assert await runs(data, 3) == 3  # deleting the task left the data alone
        await cluster.create("db", writer(image))
        task = await cluster.wait_phase("db", "running")
        assert task["status"]["node"] == pinned
        assert await runs(data, 4) == 4
        seen = _docker_exec(task["status"]["container_id"], "cat", "/data/runs")
        assert seen.stdout.splitlines() == ["run"] * 4


async def test_template_volume_files_are_mounted_read_only(
    nats_server: NatsServer, tmp_path: Path, nodes: tuple[str, str]
) -> None:
    image = require_test_image()
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(nodes[0], "--runtime", "docker")
        files = {"app.conf": "port = 80\n", "conf.d/extra.conf": "debug = true\n"}
        await cluster.api(
            "volume",
            "create",
            {"volume": {"meta": {"name": "conf"}, "config": {"type": "template", "files": files}}},
        )
        config = {
            "image": image,
            "args": ["sleep", "3600"],
            "mounts": ["conf:/etc/app"],
            "stop_timeout_s": 1,
        }
        await cluster.create("app", config)
        task = await cluster.wait_phase("app", "running")
        cid = task["status"]["container_id"]
        assert _docker_exec(cid, "cat", "/etc/app/app.conf").stdout == "port = 80\n"
        assert _docker_exec(cid, "cat", "/etc/app/conf.d/extra.conf").stdout == "debug = true\n"
        write = _docker_exec(cid, "sh", "-c", "echo x > /etc/app/app.conf")
        assert write.returncode != 0
        assert "Read-only" in write.stderr or "read-only" in write.stderr.lower()
