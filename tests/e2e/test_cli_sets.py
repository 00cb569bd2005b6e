"""Sets through voiydctl: ``get``/``describe``, ``scale``, ``rollout status|history|undo|restart``.

A real cluster (server, scheduler with its Set controller, two exec agents): ``rollout status``
is what a CI pipeline runs, so its exit codes are checked for a rollout that completes, one
that fails (a template whose task exits with an error), and one that cannot finish in time.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from tests.e2e.cluster import running_cluster
from tests.e2e.test_cli_support import Cli, read_until, rows
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

WEB = """\
version: set/v1
meta: {name: web, labels: {app: web}}
config:
  replicas: 2
  template: {runtime: exec, args: [sleep, "3600"], stop_timeout_s: 1}
  update: {max_parallel: 1, deadline_s: 120}
"""


async def _rolled_out(voiydctl: Cli, ref: str = "set/web") -> str:
    result = await voiydctl("rollout", "status", ref, "--timeout", "90s")
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


async def _epochs(voiydctl: Cli) -> dict[str, int]:
    """Each member's placement epoch (a replaced member has a higher one)."""
    found = json.loads(await voiydctl.ok("get", "tasks", "-l", "voiyd.io/set=web", "-o", "json"))
    return {t["meta"]["name"]: t["status"]["epoch"] for t in found["items"]}


async def test_scale_and_rollouts_through_the_cli(nats_server: NatsServer, tmp_path: Path) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        cluster.node("n2", "--runtime", "exec")
        assert await voiydctl.ok("apply", "-f", "-", stdin=WEB) == "set/web created\n"
        assert await _rolled_out(voiydctl) == "set/web rolled out: revision 1, 2 of 2 available\n"

        table = rows(await voiydctl.ok("get", "sets"))
        assert table[0] == ["NAME", "REPLICAS", "READY", "UP-TO-DATE", "REVISION", "ROLLOUT", "AGE"]
        assert table[1][:6] == ["web", "2", "2/2", "2", "1", "complete"]

        scaled = await voiydctl.ok("scale", "set", "web", "4")
        assert scaled.startswith("set/web scaled to 4 (revision ")
        assert "4 of 4 available" in await _rolled_out(voiydctl)
        text = await voiydctl.ok("describe", "set/web")
        members = text.split("Members:\n", 1)[1].split("Events:", 1)[0].splitlines()[1:]
        assert [m.split()[0] for m in members] == ["web-1", "web-2", "web-3", "web-4"]
        assert {m.split()[2] for m in members} == {"n1", "n2"}
        assert all(m.split()[1] == "running" for m in members)

        changed = WEB.replace('"3600"', '"3601"').replace("replicas: 2", "replicas: 4")
        assert await voiydctl.ok("apply", "-f", "-", stdin=changed) == "set/web configured\n"
        assert (await _rolled_out(voiydctl)).startswith("set/web rolled out: revision 2,")
        tasks = json.loads(
            await voiydctl.ok("get", "tasks", "-l", "voiyd.io/set=web", "-o", "json")
        )
        assert {tuple(t["config"]["args"]) for t in tasks["items"]} == {("sleep", "3601")}

        history = rows(await voiydctl.ok("rollout", "history", "set/web"))
        assert history[0] == ["REVISION", "CAUSE", "AT"]
        assert [r[0] for r in history[1:]] == ["1", "2*"]
        assert "- '3600'" in await voiydctl.ok("rollout", "history", "set/web", "--revision", "1")

        undone = await voiydctl.ok("rollout", "undo", "set/web")
        assert undone.startswith("set/web rolled back (revision ")
        assert (await _rolled_out(voiydctl)).startswith("set/web rolled out: revision 3,")
        tasks = json.loads(
            await voiydctl.ok("get", "tasks", "-l", "voiyd.io/set=web", "-o", "json")
        )
        assert {tuple(t["config"]["args"]) for t in tasks["items"]} == {("sleep", "3600")}
        history = rows(await voiydctl.ok("rollout", "history", "set", "web"))
        assert history[-1][0] == "3*"
        assert " ".join(history[-1][1:-2]) == "rollback to revision 1"

        epochs = await _epochs(voiydctl)
        restarted = await voiydctl.ok("rollout", "restart", "set/web")
        assert restarted.startswith("set/web restarted (revision ")
        assert (await _rolled_out(voiydctl)).startswith("set/web rolled out: revision 4,")
        after = await _epochs(voiydctl)
        assert after.keys() == epochs.keys()
        assert all(after[name] > epochs[name] for name in epochs), (epochs, after)

        assert (await voiydctl("scale", "set/web")).exit_code == 2
        assert (await voiydctl("scale", "set/ghost", "3")).exit_code == 4
        assert (await voiydctl("rollout", "undo", "set/web", "--to-revision", "99")).exit_code == 3


async def test_rollout_status_exits_1_on_a_failed_rollout_and_on_its_own_timeout(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        await voiydctl.ok("apply", "-f", "-", stdin=WEB)
        await _rolled_out(voiydctl)

        broken = WEB.replace(
            'args: [sleep, "3600"]', 'args: [sh, -c, "exit 3"], restart: "on-failure:0"'
        )
        await voiydctl.ok("apply", "-f", "-", stdin=broken)
        failed = await voiydctl("rollout", "status", "set/web", "--timeout", "90s")
        assert failed.exit_code == 1, failed.stdout + failed.stderr
        assert failed.stdout == ""
        assert failed.stderr.splitlines()[-1].startswith("error: rollout of set/web failed: ")
        view = json.loads(await voiydctl.ok("get", "set", "web", "-o", "json"))
        assert view["status"]["rollout"]["state"] == "failed"

        stuck = WEB.replace("name: web", "name: stuck").replace(
            "stop_timeout_s: 1", 'stop_timeout_s: 1, node_selector: "disk=none"'
        )
        await voiydctl.ok("apply", "-f", "-", stdin=stuck)
        timed_out = await voiydctl("rollout", "status", "set", "stuck", "--timeout", "1s")
        assert timed_out.exit_code == 1
        last = timed_out.stderr.splitlines()[-1]
        assert last.startswith("error: timed out after 1s; set/stuck rollout to revision 1: ")
        assert last.endswith("0 available")


async def test_get_sets_watch_follows_the_members_too(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        await voiydctl.ok("apply", "-f", "-", stdin=WEB)
        await _rolled_out(voiydctl)
        watcher = await voiydctl.spawn("get", "sets", "-w")
        assert watcher.stdout is not None
        try:
            await read_until(watcher.stdout, " 2/2 ")
            await voiydctl.ok("scale", "set", "web", "1")
            # Only the member's own events (its deletion) bring READY to 1/1.
            line = (await read_until(watcher.stdout, " 1/1 ")).splitlines()[-1]
            assert line.split()[:3] == ["web", "1", "1/1"]
        finally:
            watcher.send_signal(signal.SIGINT)
            _, stderr = await asyncio.wait_for(watcher.communicate(), 30)
        assert watcher.returncode == 0, stderr.decode()
