"""``cordon``, ``uncordon``, ``label node``, ``drain`` and ``delete node`` as voiydctl prints them.

A real cluster (server, scheduler, two exec agents). ``drain`` exits 0 when everything moved
and 1, naming the task, when something could not (a task whose node selector only its node
matches); ``test_day2_nodes`` checks the pace of a drain, this checks what the command says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.test_cli_support import Cli, rows
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

SLEEP = ("--runtime", "exec", "--", "sleep", "3600")


async def _node(voiydctl: Cli, name: str) -> dict[str, Any]:
    return dict(json.loads(await voiydctl.ok("get", "node", name, "-o", "json")))


async def _on(cluster: Cluster, name: str, node: str) -> None:
    await cluster.wait_task(
        name,
        lambda t: t["status"]["phase"] == "running" and t["status"]["node"] == node,
        what=f"ran on {node}",
    )


async def test_cordon_uncordon_and_label_say_what_they_did(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.node("n1", "--runtime", "exec")
        assert (await voiydctl.ok("cordon", "n1")).startswith("node/n1 cordoned (revision ")
        assert rows(await voiydctl.ok("get", "nodes"))[1][2] == "no"
        assert (await voiydctl.ok("cordon", "n1")).startswith("node/n1 unchanged")
        assert (await voiydctl.ok("uncordon", "n1")).startswith("node/n1 uncordoned (revision ")
        assert (await _node(voiydctl, "n1"))["schedulable"] is True

        labeled = await voiydctl.ok("label", "node", "n1", "disk=ssd", "zone=a")
        assert labeled.startswith("node/n1 labeled (revision ")
        await voiydctl.ok("label", "node/n1", "zone-")
        labels = (await _node(voiydctl, "n1"))["labels"]
        assert labels.get("disk") == "ssd"
        assert "zone" not in labels
        assert await voiydctl.ok("get", "nodes", "-l", "disk=ssd", "-o", "name") == "node/n1\n"

        bad = await voiydctl("label", "node", "n1", "disk")
        assert bad.exit_code == 2
        assert "neither KEY=VALUE (set) nor KEY- (remove)" in bad.stderr
        missing = await voiydctl("cordon", "ghost")
        assert missing.exit_code == 4


async def test_drain_reports_what_could_not_move_and_delete_node_needs_force(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        await voiydctl.ok("label", "node", "n1", "only=here")
        await voiydctl.ok("cordon", "n1")
        cluster.node("n2", "--runtime", "exec")
        await voiydctl.ok("run", "free", *SLEEP)
        await _on(cluster, "free", "n2")
        await voiydctl.ok("uncordon", "n1")
        await voiydctl.ok("cordon", "n2")
        await voiydctl.ok("run", "pinned", "--node-selector", "only=here", *SLEEP)
        await _on(cluster, "pinned", "n1")
        await voiydctl.ok("uncordon", "n2")

        # n2 holds only "free", which can go to n1: everything moves.
        drained = await voiydctl("drain", "n2", "--deadline", "1m")
        assert drained.exit_code == 0, drained.stderr
        assert drained.stdout.splitlines()[-1] == "node/n2 drained"
        await _on(cluster, "free", "n1")
        await voiydctl.ok("uncordon", "n2")

        # n1 holds "pinned", which no other node matches: it cannot move.
        stuck = await voiydctl("drain", "n1")
        assert stuck.exit_code == 1, stuck.stderr
        lines = stuck.stdout.splitlines()
        assert lines[0].startswith("node/n1 draining (revision ")
        assert lines[1] == "node/n1 drained, but 1 could not move:"
        assert lines[2].startswith("  task/pinned: unschedulable: ")
        await _on(cluster, "free", "n2")
        assert (await _node(voiydctl, "n1"))["tasks"] == 0

        no_wait = await voiydctl.ok("drain", "n2", "--no-wait")
        assert no_wait.startswith("node/n2 draining (revision ")
        assert "drained" not in no_wait
        await voiydctl.ok("uncordon", "n2")

        refused = await voiydctl("delete", "node", "n2")
        assert refused.exit_code not in (0, 1, 2), refused.stderr
        assert refused.stderr.startswith("error: ")
        deleted = await voiydctl.ok("delete", "node/n2", "--force")
        assert deleted.startswith("node/n2 deleted (revision ")
        assert (await voiydctl("get", "node", "n2")).exit_code == 4
        assert (await voiydctl("delete", "task", "free", "--force")).exit_code == 2
