"""Node operations end to end: real server, scheduler and two exec agents, driven by voiydctl.

``drain`` moves a node's Set members away at the Set's pace and leaves the node empty with the
Set whole on the other node; a cordoned node receives no new task; a label change moves the
tasks whose node_selector no longer matches.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.test_cli_support import Cli
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

SLEEPER: dict[str, Any] = {"runtime": "exec", "args": ["sleep", "3600"], "stop_timeout_s": 1}


async def tasks(cluster: Cluster, selector: str = "") -> list[dict[str, Any]]:
    return list((await cluster.api("task", "list", {"selector": selector}))["tasks"])


def running_on(found: list[dict[str, Any]]) -> Counter[str]:
    return Counter(t["status"]["node"] for t in found if t["status"]["phase"] == "running")


async def wait_running(cluster: Cluster, selector: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(300):
        found = await tasks(cluster, selector)
        if len(found) == count and sum(running_on(found).values()) == count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"never {count} running: {[t['status'] for t in found]}")


async def test_drain_empties_the_node_at_the_sets_pace_and_cordon_keeps_new_tasks_off(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        cluster.node("n2", "--runtime", "exec")
        doc = {
            "meta": {"name": "web"},
            "config": {"replicas": 6, "template": SLEEPER, "update": {"max_parallel": 1}},
        }
        await cluster.api("set", "create", {"set": doc})
        found = await wait_running(cluster, "voiyd.io/set=web", 6)
        assert running_on(found) == {"n1": 3, "n2": 3}

        drain = asyncio.ensure_future(voiydctl("drain", "n1", "--deadline", "2m"))
        samples: list[int] = []
        while not drain.done():
            samples.append(sum(running_on(await tasks(cluster, "voiyd.io/set=web")).values()))
            await asyncio.sleep(0.05)
        result = await drain
        assert result.exit_code == 0, result.stdout + result.stderr
        found = await wait_running(cluster, "voiyd.io/set=web", 6)
        assert running_on(found) == {"n2": 6}
        assert min(samples) >= 6 - 1, samples  # never more than max_parallel away at once
        node = json.loads(await voiydctl.ok("get", "node", "n1", "-o", "json"))
        assert (node["phase"], node["schedulable"], node["tasks"]) == ("draining", False, 0)

        # Uncordoned, n1 takes new work again; cordoned, it takes none.
        await voiydctl.ok("uncordon", "n1")
        await voiydctl.ok("cordon", "n1")
        node = json.loads(await voiydctl.ok("get", "node", "n1", "-o", "json"))
        assert (node["phase"], node["schedulable"]) == ("ready", False)
        for i in range(4):
            await cluster.create(f"job-{i}", SLEEPER, kind="job")
        found = await wait_running(cluster, "kind=job", 4)
        assert running_on(found) == {"n2": 4}
        await voiydctl.ok("uncordon", "n1")
        await cluster.create("job-late", SLEEPER, kind="late")
        # spread: n1 is empty, so the next task goes there
        late = await wait_running(cluster, "kind=late", 1)
        assert running_on(late) == {"n1": 1}


async def test_a_label_change_moves_the_tasks_whose_selector_no_longer_matches(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        cluster.node("n2", "--runtime", "exec")
        await voiydctl.ok("label", "node", "n1", "zone=a", "disk=ssd")
        await cluster.create("db", {**SLEEPER, "node_selector": "zone=a"})
        db = await cluster.wait_phase("db", "running")
        assert db["status"]["node"] == "n1"

        await voiydctl.ok("label", "node", "n2", "zone=a")
        await voiydctl.ok("label", "node", "n1", "zone-")
        node = json.loads(await voiydctl.ok("get", "node", "n1", "-o", "json"))
        assert "zone" not in node["labels"] and node["labels"]["disk"] == "ssd"
        moved = await cluster.wait_task(
            "db",
            lambda t: t["status"]["node"] == "n2" and t["status"]["phase"] == "running",
            what="moved to n2",
        )
        assert moved["status"]["epoch"] == db["status"]["epoch"] + 1

        await voiydctl.ok("label", "node", "n2", "zone-")
        stuck = await cluster.wait_phase("db", "unschedulable")
        assert "selector" in stuck["status"]["reason"] or "zone" in stuck["status"]["reason"]
