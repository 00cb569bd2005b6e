"""Kill voiyd-server with SIGKILL in the middle of concurrent creates: nothing acknowledged is lost.

Every create a client saw acknowledged must be in the projection after a restart, exactly once
in the log, and a projection rebuilt from scratch must hold the very same rows.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from tests.e2e.procs import DaemonProcess, voiyd_server
from tests.natsserver import NatsServer
from voiyd.bus import codec, subjects
from voiyd.bus.reader import read_events
from voiyd.bus.rpc import call
from voiyd.errors import UnavailableError, VoiydError

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

ROUNDS = 3
CREATES_PER_ROUND = 300
IN_FLIGHT = 64


def _task(name: str) -> dict[str, object]:
    return {
        "task": {
            "meta": {"name": name, "labels": {"batch": "crash"}},
            "config": {"image": "busybox", "env": {"N": name}},
        }
    }


async def _create_all(
    nc: Client, names: list[str], acked: dict[str, int], enough: asyncio.Event, threshold: int
) -> None:
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one(name: str) -> None:
        async with slots:
            try:
                reply = await call(nc, subjects.api("task", "create"), _task(name), timeout=3)
            except UnavailableError:
                return  # the server died under this request: its outcome is unknown
            acked[name] = int(reply["revision"])
            if len(acked) >= threshold:
                enough.set()

    await asyncio.gather(*(one(n) for n in names))


async def _kill_when(server: DaemonProcess, enough: asyncio.Event) -> None:
    await enough.wait()
    await asyncio.sleep(random.uniform(0, 0.05))
    server.kill()


def _rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        return {
            table: list(conn.execute(f"SELECT * FROM [{table}] ORDER BY 1"))
            for table in ("revisions", "tasks", "nodes")
        }


async def test_sigkill_during_creates_loses_no_acknowledged_create(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    data = tmp_path / "server-a"
    acked: dict[str, int] = {}
    nc = await nats.connect(nats_server.url)
    try:
        for rnd in range(ROUNDS):
            server = voiyd_server(nats_server.url, data).start()
            names = [f"t{rnd}-{i}" for i in range(CREATES_PER_ROUND)]
            before = len(acked)
            enough = asyncio.Event()
            killer = asyncio.create_task(_kill_when(server, enough))
            await _create_all(nc, names, acked, enough, before + CREATES_PER_ROUND // 3)
            await killer
            assert len(acked) > before, "no create was acknowledged before the kill"
            assert len(acked) - before < CREATES_PER_ROUND, "the kill came after every create"

        server = voiyd_server(nats_server.url, data).start()
        try:
            newest = max(acked.values())
            listed = await call(
                nc,
                subjects.api("task", "list"),
                {"min_revision": newest, "selector": "batch=crash"},
            )
            names_in_view = [t["meta"]["name"] for t in listed["tasks"]]
            assert set(acked) <= set(names_in_view)
            assert len(names_in_view) == len(set(names_in_view))

            created = Counter[str]()
            async for raw in read_events(nc.jetstream(), subjects.events_filter("task")):
                if codec.decode_map(raw.data)["type"] == "task.created":
                    created[raw.subject.rsplit(".", 1)[1]] += 1
            assert all(created[name] == 1 for name in acked)
            assert max(created.values()) == 1
        finally:
            assert server.stop() == 0

        fresh = voiyd_server(nats_server.url, tmp_path / "server-b").start()
        fresh.stop()
        resumed_rows = _rows(data / "projection.sqlite")
        assert resumed_rows == _rows(tmp_path / "server-b" / "projection.sqlite")
        again = voiyd_server(nats_server.url, data, "--rebuild").start()
        again.stop()
        assert _rows(data / "projection.sqlite") == resumed_rows
    finally:
        await nc.close()


async def test_restart_resumes_from_the_tracking_row(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    data = tmp_path / "server"
    nc = await nats.connect(nats_server.url)
    try:
        server = voiyd_server(nats_server.url, data).start()
        first = await call(nc, subjects.api("task", "create"), _task("one"))
        server.stop()
        server = voiyd_server(nats_server.url, data).start()
        assert f"ready: projection at seq {first['revision']}" in server.log_text()
        second = await call(nc, subjects.api("task", "create"), _task("two"))
        got = await call(nc, subjects.api("task", "list"), {"min_revision": second["revision"]})
        assert [t["meta"]["name"] for t in got["tasks"]] == ["one", "two"]
        server.stop()
    finally:
        await nc.close()


async def test_request_with_no_server_running_is_unavailable(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        with pytest.raises(VoiydError) as info:
            await call(nc, subjects.api("task", "create"), _task("x"), timeout=1)
        assert isinstance(info.value, UnavailableError)
    finally:
        await nc.close()
