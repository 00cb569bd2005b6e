"""A whole cluster of real processes for end-to-end tests, and waiting on what the API shows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from tests.e2e.procs import (
    DaemonProcess,
    voiyd_logrelay,
    voiyd_node,
    voiyd_scheduler,
    voiyd_server,
)
from tests.natsserver import NatsServer
from voiyd.bus import subjects
from voiyd.bus.rpc import call
from voiyd.errors import NotFoundError, UnavailableError

Task = dict[str, Any]


class Cluster:
    def __init__(self, nats_server: NatsServer, workdir: Path, nc: Client) -> None:
        self.nats = nats_server
        self.workdir = workdir
        self.nc = nc
        self.procs: list[DaemonProcess] = []

    def _track(self, proc: DaemonProcess) -> DaemonProcess:
        self.procs.append(proc)
        return proc

    def server(self, *extra: str) -> DaemonProcess:
        proc = voiyd_server(self.nats.url, self.workdir / "server", *extra)
        return self._track(proc.start())

    def scheduler(self) -> DaemonProcess:
        return self._track(voiyd_scheduler(self.nats.url, self.workdir).start())

    def logrelay(self, name: str = "logrelay", *extra: str) -> DaemonProcess:
        return self._track(voiyd_logrelay(self.nats.url, self.workdir, name, *extra).start())

    def node(self, name: str, *extra: str) -> DaemonProcess:
        proc = voiyd_node(self.nats.url, name, self.workdir / f"node-{name}", *extra)
        return self._track(proc.start())

    async def api(self, kind: str, verb: str, body: dict[str, Any], timeout: float = 10) -> Any:
        return await call(self.nc, subjects.api(kind, verb), body, timeout=timeout)

    async def create(self, name: str, config: dict[str, Any], **labels: str) -> Task:
        reply = await self.api(
            "task", "create", {"task": {"meta": {"name": name, "labels": labels}, "config": config}}
        )
        return dict(reply["task"])

    async def task(self, name: str) -> Task:
        return dict((await self.api("task", "get", {"name": name}))["task"])

    async def wait_task(
        self, name: str, check: Callable[[Task], bool], timeout: float = 60, what: str = ""
    ) -> Task:
        deadline = asyncio.get_running_loop().time() + timeout
        task: Task = {}
        while asyncio.get_running_loop().time() < deadline:
            try:
                task = await self.task(name)
            except (NotFoundError, UnavailableError):
                task = {}  # not projected yet, or the server is busy reconnecting
            if task and check(task):
                return task
            await asyncio.sleep(0.2)
        raise AssertionError(f"task {name} never {what or 'matched'}; last: {task.get('status')}")

    async def wait_phase(self, name: str, phase: str, timeout: float = 60) -> Task:
        return await self.wait_task(
            name, lambda t: t["status"]["phase"] == phase, timeout, f"reached {phase}"
        )

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        kill_exec_tasks(self.workdir)


def kill_exec_tasks(workdir: Path) -> int:
    """Kill the process groups of exec tasks started under ``workdir``.

    Exec tasks outlive their agent on purpose (adoption), so a test that ran agents must end
    them itself; they are found by their shim's command line, which names their state dir.
    """
    killed = 0
    needle = str(workdir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"voiyd.agent.runtimes.exec_shim" in cmdline and needle in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(int(proc.name)), signal.SIGKILL)
                killed += 1
    return killed


@asynccontextmanager
async def running_cluster(nats_server: NatsServer, workdir: Path) -> AsyncIterator[Cluster]:
    nc = await nats.connect(nats_server.url)
    cluster = Cluster(nats_server, workdir, nc)
    try:
        yield cluster
    finally:
        cluster.stop_all()
        await nc.close()
