"""`voiyd auth remove-node` + a config reload: the node's credentials stop working.

The real ``voiyd auth`` command changes the auth directory and sends the running nats-server
SIGHUP (``--reload PID``). The removed node is disconnected then and every later connection with
its credentials is refused; other nodes carry on; a node added the same way connects at once.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from tests.secure_nats import SecureNats
from voiyd.bus import subjects
from voiyd.bus.connect import connect
from voiyd.errors import ForbiddenError

pytestmark = pytest.mark.nats

VOIYD = Path(sys.executable).parent / "voiyd"


@pytest.fixture
async def secure(tmp_path: Path) -> AsyncIterator[SecureNats]:
    s = SecureNats(tmp_path / "nats")
    s.prepare(nodes=("n1", "n2"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def voiyd_auth(
    secure: SecureNats, *args: str, reload: bool = True
) -> subprocess.CompletedProcess[str]:
    assert secure.proc is not None
    argv = [str(VOIYD), "auth", *args, "--dir", str(secure.auth.path)]
    if reload:
        argv += ["--reload", str(secure.proc.pid)]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


async def until_reloaded(secure: SecureNats, count: int) -> None:
    async with asyncio.timeout(10):
        while True:  # the server logs each reload
            if secure.log_text().count("Reloaded server configuration") >= count:
                return
            await asyncio.sleep(0.02)


async def test_a_removed_node_is_cut_off_and_cannot_come_back(
    secure: SecureNats, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    leaked = tmp_path / "leaked-n1.creds"  # a copy kept by the node (or whoever stole it)
    leaked.write_bytes(secure.auth.creds_path("node-n1").read_bytes())
    n1 = await connect(secure.options("node-n1", inbox="_INBOX.n1"), "test-n1")  # daemon-like
    n2 = await connect(secure.options("node-n2", inbox="_INBOX.n2"), "test-n2")
    listener = await connect(secure.options("server"), "test-server", reconnect=False)
    heard: list[str] = []

    async def on_beat(msg: Msg) -> None:
        heard.append(msg.subject)

    try:
        await listener.subscribe("voiyd.agent.*.heartbeat", cb=on_beat)
        await listener.flush()
        voiyd_auth(secure, "remove-node", "n1")
        await until_reloaded(secure, 1)
        async with asyncio.timeout(10):
            while True:  # the server closes the removed user's connection on reload
                if not n1.is_connected:
                    break
                await asyncio.sleep(0.02)
        await n2.publish(subjects.agent_heartbeat("n2"), b"{}")
        await n2.flush()
        await asyncio.sleep(1.5)  # n1 retries meanwhile (and is refused, quietly)
        with pytest.raises(ForbiddenError, match="refused these credentials"):
            opts = replace(secure.options("node-n2"), creds_file=leaked)
            await connect(opts, "test-n1-again", reconnect=False)
    finally:
        await n1.close()
        await n2.close()
        await listener.close()
    assert heard == [subjects.agent_heartbeat("n2")]
    assert not secure.auth.creds_path("node-n1").exists()
    refusals = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and "authorization failed" in r.getMessage()
    ]
    # n1 kept retrying, refused each time: one line (per 30 s); the second login: one line.
    assert [m.split(":")[0] for m in refusals] == ["nats test-n1", "nats test-n1-again"]


async def test_a_node_added_while_the_server_runs_connects_once_it_reloads(
    secure: SecureNats,
) -> None:
    out = voiyd_auth(secure, "add-node", "n3", reload=False)
    with pytest.raises(ForbiddenError):  # not in the running server's users yet
        await connect(secure.options("node-n3"), "test-n3", reconnect=False)
    secure.reload()
    nc = await connect(secure.options("node-n3", inbox="_INBOX.n3"), "test-n3", reconnect=False)
    await nc.close()
    assert "node-n3 (role node)" in out.stdout
    assert "nats-server --signal reload" in out.stdout
