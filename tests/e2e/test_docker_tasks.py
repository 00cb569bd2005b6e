"""Tasks really run in Docker: real server, scheduler and agent processes, a real engine.

The image is the local ``voiyd-test/busybox:1`` (built with ``docker import``, never pulled).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerimage import node_containers, remove_node_containers, require_test_image
from tests.e2e.cluster import running_cluster
from tests.e2e.test_exec_tasks import http_answers
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture
def docker_image() -> Iterator[str]:
    yield require_test_image()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def node_name() -> Iterator[str]:
    name = f"d{os.getpid()}-{os.urandom(3).hex()}"
    yield name
    remove_node_containers(name)


async def test_docker_task_runs_answers_then_stop_removes_the_container(
    nats_server: NatsServer, tmp_path: Path, docker_image: str, node_name: str
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(node_name, "--runtime", "docker")
        port = _free_port()
        await cluster.create(
            "web",
            {"image": docker_image, "ports": [f"{port}:80"], "args": ["httpd", "-f", "-p", "80"]},
        )
        task = await cluster.wait_phase("web", "running")
        status = task["status"]
        assert status["node"] == node_name and status["container_id"] and status["ip"]
        assert await http_answers(port)
        assert node_containers(node_name) == [status["container_id"][:12]]

        await cluster.api("task", "stop", {"name": "web"})
        await cluster.wait_phase("web", "stopped")
        for _ in range(100):
            if not node_containers(node_name):
                break
            await asyncio.sleep(0.1)
        assert node_containers(node_name) == []
        deleted = await cluster.api("task", "delete", {"name": "web"})
        listed = await cluster.api("task", "list", {"min_revision": deleted["revision"]})
        assert listed["tasks"] == []


async def test_an_image_that_does_not_exist_fails_with_a_clear_reason(
    nats_server: NatsServer, tmp_path: Path, docker_image: str, node_name: str
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(node_name, "--runtime", "docker")
        await cluster.create("ghost", {"image": "voiyd-test/does-not-exist:404"})
        failed = await cluster.wait_phase("ghost", "failed", timeout=120)
        assert "image pull failed" in failed["status"]["reason"]
        assert node_containers(node_name) == []


async def test_voiydctl_run_wait_get_stop_delete_with_docker(
    nats_server: NatsServer, tmp_path: Path, docker_image: str, node_name: str
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(node_name, "--runtime", "docker")
        port = _free_port()

        def ctl(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "voiyd.cli.main", "--server", nats_server.url, *args],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        run = await asyncio.to_thread(
            ctl,
            "run",
            "web",
            "--image",
            docker_image,
            "--port",
            f"{port}:80",
            "--wait",
            "--",
            "httpd",
            "-f",
            "-p",
            "80",
        )
        assert run.returncode == 0, run.stderr
        assert "running" in run.stderr
        assert await http_answers(port)
        wide = await asyncio.to_thread(ctl, "get", "tasks", "-o", "wide")
        task = await cluster.task("web")
        row = next(line for line in wide.stdout.splitlines() if line.startswith("web"))
        for value in (
            node_name,
            "running",
            task["status"]["container_id"][:12],
            task["status"]["ip"],
        ):
            assert value in row, (value, row)
        stop = await asyncio.to_thread(ctl, "stop", "task", "web")
        assert stop.returncode == 0, stop.stderr
        await cluster.wait_phase("web", "stopped")
        for _ in range(100):
            if not node_containers(node_name):
                break
            await asyncio.sleep(0.1)
        assert node_containers(node_name) == []
        delete = await asyncio.to_thread(ctl, "delete", "task", "web")
        assert delete.returncode == 0, delete.stderr
