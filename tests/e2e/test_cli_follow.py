"""voiydctl as a real process: ``get -w`` and ``events -f`` follow changes until a signal ends
them (exit 0, no traceback); an unreachable server is exit code 7 with one line.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.e2e.test_cli_support import Cli, read_until
from tests.natsserver import NatsServer

pytestmark = pytest.mark.e2e


async def _stop(proc: asyncio.subprocess.Process, sig: signal.Signals) -> tuple[int, str]:
    proc.send_signal(sig)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


@pytest.mark.nats
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_get_watch_prints_updates_until_stopped(
    api_server: RunningServer, nats_server: NatsServer, tmp_path: Path, sig: signal.Signals
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    await voiydctl.ok("run", "db", "--image", "postgres")
    watcher = await voiydctl.spawn("get", "tasks", "-w")
    assert watcher.stdout is not None
    try:
        first = await read_until(watcher.stdout, "db ")
        assert first.startswith("NAME ")
        await voiydctl.ok("run", "web", "--image", "nginx")
        created = await read_until(watcher.stdout, "web ")
        assert created.split()[:2] == ["web", "pending"]
        await voiydctl.ok("delete", "task", "web")
        assert (await read_until(watcher.stdout, "deleted")).strip() == "web deleted"
    finally:
        code, stderr = await _stop(watcher, sig)
    assert code == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.nats
async def test_events_follow_prints_new_events_until_ctrl_c(
    api_server: RunningServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    await voiydctl.ok("run", "web", "--image", "nginx")
    follower = await voiydctl.spawn("events", "-f", "-o", "json", "--kind", "task")
    assert follower.stdout is not None
    try:
        assert '"seq":1' in await read_until(follower.stdout, "task.created")
        await voiydctl.ok("stop", "task", "web")
        assert '"seq":2' in await read_until(follower.stdout, "task.stop-requested")
    finally:
        code, stderr = await _stop(follower, signal.SIGINT)
    assert code == 0, stderr
    assert "Traceback" not in stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_no_server_is_unavailable_with_exit_code_7(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{_closed_port()}"
    proc = await Cli(url, tmp_path).spawn("get", "tasks")
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 7
    assert stdout == b""
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot connect to NATS at {url} ")
    assert "voiyd up" in lines[0]


async def test_version_without_a_server_still_prints_the_client(tmp_path: Path) -> None:
    proc = await Cli(f"nats://127.0.0.1:{_closed_port()}", tmp_path).spawn("version")
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert stdout.decode() == "Client version: 0.1.0\n"
    assert stderr.decode().startswith("note: server not reachable: cannot connect to NATS")
