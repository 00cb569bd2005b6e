"""Tasks really run, with the exec runtime: real server, scheduler and agents as processes.

These need no Docker engine, so they run everywhere; the Docker path is in test_docker_tasks.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.natsserver import NatsServer
from voiyd.bus import codec, subjects
from voiyd.bus.reader import read_events
from voiyd.errors import AlreadyExistsError, UnavailableError

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

SLEEPER = {"runtime": "exec", "args": ["sleep", "1000"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _get_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:  # an HTTP answer all the same (busybox httpd: 404)
        return int(exc.code)


async def http_answers(port: int, timeout: float = 30) -> bool:
    """Whether 127.0.0.1:port answers HTTP at all within ``timeout`` (polled, not timed)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            return await asyncio.to_thread(_get_status, port) > 0
        except OSError:
            await asyncio.sleep(0.2)
    return False


async def _event_types(cluster: Cluster, task: str) -> list[dict[str, Any]]:
    out = []
    async for raw in read_events(cluster.nc.jetstream(), subjects.events_filter("task", task)):
        out.append(codec.decode_map(raw.data))
    return out


async def test_exec_task_runs_answers_stops_and_is_deleted(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        port = _free_port()
        args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        await cluster.create("web", {"runtime": "exec", "args": args, "ports": [f"{port}:{port}"]})
        task = await cluster.wait_phase("web", "running")
        assert task["status"]["node"] == "n1"
        assert task["status"]["container_id"] and task["status"]["pid"]
        assert await http_answers(port)

        await cluster.api("task", "stop", {"name": "web"})
        stopped = await cluster.wait_phase("web", "stopped")
        pid = int(task["status"]["pid"])
        assert stopped["status"]["desired"] == "stopped"
        for _ in range(100):
            if not _alive(pid):
                break
            await asyncio.sleep(0.1)
        assert not _alive(pid)

        deleted = await cluster.api("task", "delete", {"name": "web"})
        listed = await cluster.api("task", "list", {"min_revision": deleted["revision"]})
        assert listed["tasks"] == []


async def test_on_failure_restarts_with_growing_delays_then_fails(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        restart = {"policy": "on-failure", "max_retries": 3, "backoff_s": 0.2}
        await cluster.create(
            "flaky", {"runtime": "exec", "args": ["sh", "-c", "exit 1"], "restart": restart}
        )
        await cluster.create(
            "once", {"runtime": "exec", "args": ["sh", "-c", "exit 1"], "restart": "never"}
        )
        failed = await cluster.wait_phase("flaky", "failed")
        assert failed["status"]["exit_code"] == 1
        assert failed["status"]["restarts"] == 3
        delays = [
            e["data"]["delay_s"]
            for e in await _event_types(cluster, "flaky")
            if e["type"] == "task.restarted"
        ]
        assert delays == sorted(delays) and len(delays) == 3 and delays[0] < delays[-1]
        exited = await cluster.wait_phase("once", "exited")
        assert exited["status"]["exit_code"] == 1 and exited["status"]["restarts"] == 0


async def test_sigkilled_agent_adopts_its_tasks_without_restarting_them(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        agent = cluster.node("n1", "--runtime", "exec")
        for name in ("a", "b"):
            await cluster.create(name, SLEEPER)
        before = {n: (await cluster.wait_phase(n, "running"))["status"] for n in ("a", "b")}
        agent.kill()
        agent.start()
        await asyncio.sleep(3)  # a few reconcile rounds of the restarted agent
        for name, status in before.items():
            now = (await cluster.task(name))["status"]
            assert (now["phase"], now["container_id"], now["pid"], now["restarts"]) == (
                "running",
                status["container_id"],
                status["pid"],
                0,
            )
            started = [e for e in await _event_types(cluster, name) if e["type"] == "task.started"]
            assert len(started) == 1


async def test_lost_node_tasks_move_and_the_returning_node_stops_its_copy(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server("--not-ready-after", "2", "--lost-after", "5")
        cluster.scheduler()
        n1 = cluster.node("n1", "--runtime", "exec", "--heartbeat", "0.5")
        await cluster.create("pinned", SLEEPER)
        first = await cluster.wait_phase("pinned", "running")
        assert first["status"]["node"] == "n1"
        old_pid = int(first["status"]["pid"])
        cluster.node("n2", "--runtime", "exec", "--heartbeat", "0.5")
        os.kill(n1.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            moved = await cluster.wait_task(
                "pinned",
                lambda t: t["status"]["node"] == "n2" and t["status"]["phase"] == "running",
                what="moved to n2",
            )
            assert moved["status"]["epoch"] == first["status"]["epoch"] + 1
            assert _alive(old_pid)  # n1 is frozen, its copy still runs
        finally:
            os.kill(n1.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        for _ in range(150):
            if not _alive(old_pid):
                break
            await asyncio.sleep(0.1)
        assert not _alive(old_pid), "the returning node did not stop the copy that moved away"
        assert (await cluster.task("pinned"))["status"]["node"] == "n2"


async def test_agents_reconnect_after_a_nats_restart(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        await cluster.create("before", SLEEPER)
        await cluster.wait_phase("before", "running")
        nats_server.stop()
        await asyncio.sleep(1)
        nats_server.start()
        await cluster.nc.flush(timeout=30)
        # voiyd-server reconnects on its own schedule: until then nothing answers the API.
        for _ in range(120):
            try:
                await cluster.create("after", SLEEPER)
                break
            except AlreadyExistsError:
                break  # an earlier try was served; only its reply was lost
            except UnavailableError:
                await asyncio.sleep(0.5)
        else:
            raise AssertionError("voiyd-server never answered again after the NATS restart")
        await cluster.wait_phase("after", "running", timeout=90)
        assert (await cluster.task("before"))["status"]["phase"] == "running"


async def test_health_probes_report_healthy_and_restart_an_unhealthy_task(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        port = _free_port()
        server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        fast = {"interval_s": 0.3, "timeout_s": 1, "retries": 2}
        await cluster.create(
            "good",
            {"runtime": "exec", "args": server, "health": {"type": "http", "port": port, **fast}},
        )
        await cluster.create(
            "bad",
            {
                "runtime": "exec",
                "args": ["sleep", "1000"],
                "restart": {"policy": "on-failure", "max_retries": 1, "backoff_s": 0.1},
                "health": {"type": "tcp", "port": _free_port(), **fast},
            },
        )
        good = await cluster.wait_task(
            "good", lambda t: t["status"]["healthy"] is True, what="became healthy"
        )
        assert good["status"]["phase"] == "running"
        bad = await cluster.wait_phase("bad", "failed", timeout=90)
        assert bad["status"]["restarts"] == 1
        events = await _event_types(cluster, "bad")
        unhealthy = [
            e for e in events if e["type"] == "task.health-changed" and not e["data"]["healthy"]
        ]
        assert len(unhealthy) >= 2  # once per placement attempt
