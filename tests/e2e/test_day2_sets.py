"""Sets end to end: a real server, scheduler and two Docker agents on a real engine.

A Set of 4 spreads over two nodes, scales to 6 and back to 2, rolls a new image out two at a
time without ever having fewer than ``replicas - max_parallel`` healthy members (sampled during
the rollout), and a rollout to an image that fails its health check stops and is undone.

The images are variants of the local test image (``docker import``, never pulled): ``ok1`` and
``ok2`` hold a file ``/ok`` that the health check reads; the plain test image does not.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dockerimage import (
    ensure_variant,
    node_containers,
    remove_node_containers,
    require_test_image,
)
from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.test_cli_support import Cli
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(300)]

REPLICAS = 4
MAX_PARALLEL = 2


@pytest.fixture
def images() -> tuple[str, str, str]:
    bad = require_test_image()
    return ensure_variant("ok1", {"ok": b"1\n"}), ensure_variant("ok2", {"ok": b"2\n"}), bad


@pytest.fixture
def nodes() -> Iterator[tuple[str, str]]:
    tag = f"{os.getpid()}-{os.urandom(2).hex()}"
    names = (f"sa{tag}", f"sb{tag}")
    yield names
    remove_node_containers(*names)


def template(image: str) -> dict[str, Any]:
    return {
        "image": image,
        "args": ["sleep", "3600"],
        "stop_timeout_s": 1,
        "health": {"type": "cmd", "cmd": ["cat", "/ok"], "interval_s": 0.5, "retries": 1},
    }


def set_doc(image: str, replicas: int = REPLICAS) -> dict[str, Any]:
    return {
        "meta": {"name": "web", "labels": {"app": "web"}},
        "config": {
            "replicas": replicas,
            "template": template(image),
            "update": {"max_parallel": MAX_PARALLEL, "deadline_s": 120},
        },
    }


async def members(cluster: Cluster) -> list[dict[str, Any]]:
    reply = await cluster.api("task", "list", {"selector": "voiyd.io/set=web"})
    return list(reply["tasks"])


def healthy(task: dict[str, Any]) -> bool:
    s = task["status"]
    return bool(s["phase"] == "running" and s["healthy"] is True)


async def wait_members(
    cluster: Cluster, count: int, image: str, timeout: float = 120
) -> list[dict[str, Any]]:
    """Until exactly ``count`` members exist, all healthy and running ``image``."""
    deadline = asyncio.get_running_loop().time() + timeout
    found: list[dict[str, Any]] = []
    while asyncio.get_running_loop().time() < deadline:
        found = await members(cluster)
        if len(found) == count and all(healthy(t) and t["config"]["image"] == image for t in found):
            return found
        await asyncio.sleep(0.3)
    states = [(t["meta"]["name"], t["status"]["phase"], t["status"]["healthy"]) for t in found]
    raise AssertionError(f"never {count} healthy members on {image}: {states}")


async def rollout_status(voiydctl: Cli, timeout: str = "120s") -> tuple[int, str]:
    result = await voiydctl("rollout", "status", "set/web", "--timeout", timeout)
    return result.exit_code, result.stdout + result.stderr


async def test_a_set_spreads_scales_rolls_out_and_undoes_a_failed_rollout(
    nats_server: NatsServer,
    tmp_path: Path,
    images: tuple[str, str, str],
    nodes: tuple[str, str],
) -> None:
    ok1, ok2, bad = images
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        for node in nodes:
            cluster.node(node, "--runtime", "docker")

        # 4 replicas spread 2/2 over the two nodes, named web-1..web-4.
        await cluster.api("set", "create", {"set": set_doc(ok1)})
        found = await wait_members(cluster, 4, ok1)
        assert sorted(t["meta"]["name"] for t in found) == [f"web-{i}" for i in range(1, 5)]
        assert Counter(t["status"]["node"] for t in found) == {nodes[0]: 2, nodes[1]: 2}
        code, out = await rollout_status(voiydctl)
        assert code == 0, out

        # Scale to 6 (3/3) and back to 2 (the highest indexes go first).
        await voiydctl.ok("scale", "set", "web", "6")
        found = await wait_members(cluster, 6, ok1)
        assert Counter(t["status"]["node"] for t in found) == {nodes[0]: 3, nodes[1]: 3}
        await voiydctl.ok("scale", "set", "web", "2")
        found = await wait_members(cluster, 2, ok1)
        assert sorted(t["meta"]["name"] for t in found) == ["web-1", "web-2"]
        await voiydctl.ok("scale", "set", "web", str(REPLICAS))
        before = {
            t["meta"]["name"]: t["status"]["container_id"]
            for t in await wait_members(cluster, REPLICAS, ok1)
        }

        # A new image rolls out two at a time; sample the healthy count all along.
        samples: list[int] = []
        await cluster.api("set", "apply", {"set": set_doc(ok2)})
        done = asyncio.ensure_future(rollout_status(voiydctl))
        while not done.done():
            samples.append(sum(1 for t in await members(cluster) if healthy(t)))
            await asyncio.sleep(0.1)
        code, out = await done
        assert code == 0, out
        after = await wait_members(cluster, REPLICAS, ok2)
        assert min(samples) >= REPLICAS - MAX_PARALLEL, samples
        assert len(samples) > 10  # the rollout took a while: the sampling saw it happen
        assert all(before[t["meta"]["name"]] != t["status"]["container_id"] for t in after)
        view = (await cluster.api("set", "get", {"name": "web"}))["set"]
        assert view["status"]["template_revision"] == 2
        assert view["status"]["rollout"]["state"] == "complete"

        # An image whose health check fails: the rollout stops and says why.
        await cluster.api("set", "apply", {"set": set_doc(bad)})
        code, out = await rollout_status(voiydctl)
        assert code == 1, out
        assert "unhealthy" in out or "failed" in out, out
        view = (await cluster.api("set", "get", {"name": "web"}))["set"]
        assert view["status"]["rollout"]["state"] == "failed"
        on_bad = [t for t in await members(cluster) if t["config"]["image"] == bad]
        assert 1 <= len(on_bad) <= MAX_PARALLEL  # it stopped after the first batch

        history = await voiydctl.ok("rollout", "history", "set/web")
        assert "3" in history and "2" in history

        # undo restores the previous template (revision 2's image) on every member.
        await voiydctl.ok("rollout", "undo", "set/web")
        code, out = await rollout_status(voiydctl)
        assert code == 0, out
        restored = await wait_members(cluster, REPLICAS, ok2)
        assert all(t["config"] == restored[0]["config"] for t in restored)
        view = (await cluster.api("set", "get", {"name": "web"}))["set"]
        assert view["config"]["template"]["image"] == ok2
        assert view["history"][-1]["cause"] == "rollback to revision 2"

        # Deleting the Set deletes its tasks and their containers.
        await voiydctl.ok("delete", "set", "web")
        for _ in range(300):
            if not await members(cluster) and not any(node_containers(n) for n in nodes):
                break
            await asyncio.sleep(0.2)
        assert await members(cluster) == []
        assert not any(node_containers(n) for n in nodes)
