"""Two voiyd-server replicas serving at once: no update is lost, stale writers get ``conflict``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from tests.e2e.procs import voiyd_server
from tests.natsserver import NatsServer
from voiyd.bus import subjects
from voiyd.bus.rpc import call
from voiyd.errors import ConflictError

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

WRITERS = 40


async def test_two_replicas_never_lose_a_concurrent_update(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    a = voiyd_server(nats_server.url, tmp_path / "a").start()
    b = voiyd_server(nats_server.url, tmp_path / "b").start()
    clients = [await nats.connect(nats_server.url) for _ in range(4)]
    try:
        nc = clients[0]
        created = await call(
            nc,
            subjects.api("task", "create"),
            {"task": {"meta": {"name": "web"}, "config": {"image": "busybox"}}},
        )

        async def patch(i: int) -> int:
            reply = await call(
                clients[i % len(clients)],
                subjects.api("task", "patch"),
                {"name": "web", "labels": {f"k{i}": str(i)}},
                timeout=30,
            )
            return int(reply["revision"])

        revisions = await asyncio.gather(*(patch(i) for i in range(WRITERS)))
        assert len(set(revisions)) == WRITERS  # every patch produced its own event

        # Both replicas served, and each one's view ends with every label.
        for replica in (a, b):
            assert "appended task.updated web" in replica.log_text(), "a replica served nothing"
        for _ in range(4):
            got = await call(
                nc, subjects.api("task", "get"), {"name": "web", "min_revision": max(revisions)}
            )
            labels = got["task"]["meta"]["labels"]
            assert labels == {f"k{i}": str(i) for i in range(WRITERS)}

        stale = created["revision"]
        with pytest.raises(ConflictError):
            await call(
                nc,
                subjects.api("task", "patch"),
                {"name": "web", "labels": {"late": "x"}, "expected_revision": stale},
            )
        with pytest.raises(ConflictError):
            await call(
                nc, subjects.api("task", "delete"), {"name": "web", "expected_revision": stale}
            )
    finally:
        for c in clients:
            await c.close()
        a.stop()
        b.stop()
