"""The programs in examples/ (nats-py and msgpack only) against a live cluster.

The cluster is real: voiyd-server, voiyd-scheduler and an exec-runtime agent as processes.
``follow_logs.py`` is also run on batches published as the agent ships them (``tests.logpub``),
with bytes and a split line, which a plain test task does not print.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.e2e.cluster import running_cluster
from tests.e2e.test_cli_support import REPO, read_until
from tests.logpub import LogPublisher
from tests.natsserver import NatsServer
from voiyd.bus.streams import ensure_streams

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

EXAMPLES = REPO / "examples"


async def example(name: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def test_the_examples_import_nothing_of_voiyd() -> None:
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        assert "import voiyd" not in text and "from voiyd" not in text, path


async def test_exits_nonzero_prints_the_tasks_that_exit_with_an_error(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        watcher = await example("exits_nonzero.py", "--server", nats_server.url)
        assert watcher.stdout is not None
        try:
            fine = {"runtime": "exec", "args": ["sh", "-c", "exit 0"], "restart": "never"}
            await cluster.create("fine", fine)
            await cluster.wait_phase("fine", "exited")
            bad = {"runtime": "exec", "args": ["sh", "-c", "exit 3"], "restart": "never"}
            await cluster.create("broken", bad)
            printed = await read_until(watcher.stdout, "broken")
        finally:
            watcher.send_signal(signal.SIGINT)
            _, stderr = await asyncio.wait_for(watcher.communicate(), 30)
        assert watcher.returncode == 0, stderr.decode()
        (line,) = printed.splitlines()
        assert line.startswith("broken exited with code 3 on n1 (seq ")


async def test_follow_logs_prints_a_tasks_output_until_its_end(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        script = "sleep 1; seq 1 500; echo done"
        await cluster.create("count", {"runtime": "exec", "args": ["sh", "-c", script]})
        follower = await example("follow_logs.py", "count", "--server", nats_server.url)
        stdout, stderr = await asyncio.wait_for(follower.communicate(), 60)
        assert follower.returncode == 0, stderr.decode()
        assert stdout.decode().splitlines() == [*map(str, range(1, 501)), "done"]


async def test_follow_logs_writes_bytes_and_split_lines_as_the_task_wrote_them(
    nats_server: NatsServer, nc: Client
) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    pub = LogPublisher(js, "web")
    await pub.write(["hello", b"\xff\xfe raw"])
    await pub.write(["a long line, ", "in two parts"], partial=[True, False])
    follower = await example("follow_logs.py", "web", "--server", nats_server.url)
    await pub.end()
    stdout, stderr = await asyncio.wait_for(follower.communicate(), 60)
    assert follower.returncode == 0, stderr.decode()
    assert stdout == b"hello\n\xff\xfe raw\na long line, in two parts\n"
