"""Two (then three) agents on one host: placement honours selectors, runtimes, resources, ports.

Agents run the exec runtime with declared capacities, so this needs no Docker engine.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.cluster import running_cluster
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

GiB = 1024**3


def sleeper(**extra: object) -> dict[str, object]:
    return {"runtime": "exec", "args": ["sleep", "1000"], **extra}


async def test_placement_across_two_agents(nats_server: NatsServer, tmp_path: Path) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(
            "n1",
            "--runtime",
            "exec",
            "--label",
            "disk=ssd",
            "--cpus",
            "4",
            "--memory",
            str(4 * GiB),
        )
        cluster.node("n2", "--runtime", "exec", "--cpus", "1", "--memory", str(GiB))

        for i in range(4):
            await cluster.create(f"spread-{i}", sleeper())
        nodes: Counter[str] = Counter()
        for i in range(4):
            nodes[(await cluster.wait_phase(f"spread-{i}", "running"))["status"]["node"]] += 1
        assert nodes == {"n1": 2, "n2": 2}

        await cluster.create("ssd", sleeper(node_selector="disk=ssd"))
        await cluster.create("not-ssd", sleeper(node_selector="disk!=ssd"))
        await cluster.create("big", sleeper(resources={"cpus": 2, "memory": "2Gi"}))
        assert (await cluster.wait_phase("ssd", "running"))["status"]["node"] == "n1"
        assert (await cluster.wait_phase("not-ssd", "running"))["status"]["node"] == "n2"
        assert (await cluster.wait_phase("big", "running"))["status"]["node"] == "n1"

        await cluster.create("port-a", sleeper(ports=["18555:80"]))
        await cluster.create("port-b", sleeper(ports=["18555:80"]))
        a = await cluster.wait_phase("port-a", "running")
        b = await cluster.wait_phase("port-b", "running")
        assert {a["status"]["node"], b["status"]["node"]} == {"n1", "n2"}
        await cluster.create("port-c", sleeper(ports=["18555:80"]))
        c = await cluster.wait_phase("port-c", "unschedulable")
        assert "port 18555/tcp" in c["status"]["reason"]

        await cluster.create("docker-only", {"image": "voiyd-test/busybox:1"})
        d = await cluster.wait_phase("docker-only", "unschedulable")
        assert "runtime" in d["status"]["reason"]

        await cluster.create("edge", sleeper(node_selector="zone=edge"))
        e = await cluster.wait_phase("edge", "unschedulable")
        assert "0/2 nodes" in e["status"]["reason"]
        cluster.node("n3", "--runtime", "exec", "--label", "zone=edge")
        placed = await cluster.wait_phase("edge", "running")
        assert placed["status"]["node"] == "n3"
