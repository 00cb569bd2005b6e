"""Agents ship their tasks' output to ``VOIYD_LOGS``: real server, scheduler and agent processes.

Every check reads the stream itself with a plain nats-py ordered consumer, as any integration
would: lines in order, numbered per placement with no number twice, an end-of-output batch,
stderr apart; an agent killed with SIGKILL and started again goes on without duplicates; NATS
away for about ten seconds loses nothing with a big buffer and drops (and says so) with a small
one. Nothing is timed: every wait has a deadline and fails with what it saw.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import DeliverPolicy

from tests.dockerimage import TEST_IMAGE, require_test_image
from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.test_exec_tasks import _free_port
from tests.natsserver import NatsServer
from voiyd.api.logs import LogBatch
from voiyd.bus import codec, subjects

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

BURST = 10_000
OUTAGE_S = 10.0
SMALL_BUFFER = 64 * 1024
PRINTER = (
    "import sys, time\n"
    "for i in range(1, {count} + 1):\n"
    "    print(i, flush=True)\n"
    "    time.sleep({pause})\n"
)


def printer(count: int, pause: float) -> list[str]:
    """An exec task that prints 1..count, one line every ``pause`` seconds."""
    return [sys.executable, "-c", PRINTER.format(count=count, pause=pause)]


async def read_batches(
    nc: Client, task: str, eofs: int = 1, timeout: float = 90.0
) -> list[tuple[str, LogBatch]]:
    """``(Nats-Msg-Id, batch)`` of the task's messages, up to and including its ``eofs``-th end."""
    js = nc.jetstream()
    sub = await js.subscribe(
        subjects.logs_filter(task), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    out: list[tuple[str, LogBatch]] = []
    seen = 0
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while seen < eofs:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{task}: {seen} of {eofs} ends after {len(out)} batches")
            try:
                msg = await sub.next_msg(timeout=min(left, 5.0))
            except TimeoutError:
                continue
            batch = LogBatch.model_validate(codec.decode_map(msg.data))
            out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), batch))
            seen += batch.eof
    finally:
        await sub.unsubscribe()
    return out


def numbered(batches: list[tuple[str, LogBatch]]) -> list[tuple[int, str, str]]:
    """``(n, stream, text)`` of every line, in stream order."""
    return [
        (line.n, line.s, line.line if isinstance(line.line, str) else line.line.decode())
        for _, batch in batches
        for line in batch.lines
    ]


def assert_well_formed(batches: list[tuple[str, LogBatch]], task: str, node: str) -> None:
    """Ids as the contract says, numbers only growing, the end after every line."""
    numbers = [n for n, _, _ in numbered(batches)]
    assert numbers == sorted(set(numbers)), "a number came twice or went backwards"
    for mid, batch in batches:
        assert (batch.task, batch.node) == (task, node)
        if batch.lines:
            assert mid == f"{task}.{batch.epoch}.{batch.lines[0].n}"
        else:
            assert batch.eof and mid == f"{task}.{batch.epoch}.eof.{batch.container_id}"
    assert batches[-1][1].eof


async def wait_lines(nc: Client, task: str, at_least: int, timeout: float = 60.0) -> None:
    """Until the stream holds at least ``at_least`` lines of the task."""
    sub = await nc.jetstream().subscribe(
        subjects.logs_filter(task), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    deadline = asyncio.get_running_loop().time() + timeout
    lines = 0
    try:
        while lines < at_least:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{task}: only {lines} lines in the stream")
            try:
                msg = await sub.next_msg(timeout=min(left, 5.0))
            except TimeoutError:
                continue
            lines += len(LogBatch.model_validate(codec.decode_map(msg.data)).lines)
    finally:
        await sub.unsubscribe()


async def seq_task(cluster: Cluster, config: dict[str, Any]) -> None:
    await cluster.create("counter", {**config, "restart": "never"})
    await cluster.wait_phase("counter", "exited", timeout=90)


def assert_counted_to(lines: list[tuple[int, str, str]], count: int) -> None:
    assert [text for _, s, text in lines if s == "stdout"] == [str(i) for i in range(1, count + 1)]


# ---- ten thousand lines ---------------------------------------------------------------------


async def test_exec_task_lines_arrive_all_in_order_numbered_once_then_the_end(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        script = f"seq 1 {BURST}; echo oops >&2"
        await seq_task(cluster, {"runtime": "exec", "args": ["sh", "-c", script]})
        batches = await read_batches(cluster.nc, "counter")
        assert_well_formed(batches, "counter", "n1")
        lines = numbered(batches)
        assert [n for n, _, _ in lines] == list(range(1, BURST + 2))
        assert_counted_to(lines, BURST)
        assert [(s, text) for _, s, text in lines if s == "stderr"] == [("stderr", "oops")]
        epoch = (await cluster.task("counter"))["status"]["epoch"]
        assert all(b.dropped == 0 and b.epoch == epoch for _, b in batches)
        assert sum(b.eof for _, b in batches) == 1


@pytest.fixture
def docker_node() -> Iterator[str]:
    require_test_image()
    name = f"d{os.getpid()}-{os.urandom(3).hex()}"
    yield name
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.voiyd.node={name}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.split()
    if found:
        subprocess.run(["docker", "rm", "-f", *found], capture_output=True, timeout=60, check=False)


@pytest.mark.docker
async def test_docker_task_lines_arrive_all_in_order_numbered_once_then_the_end(
    nats_server: NatsServer, tmp_path: Path, docker_node: str
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(docker_node, "--runtime", "docker")
        script = f"seq 1 {BURST}; echo oops >&2"
        await seq_task(cluster, {"image": TEST_IMAGE, "args": ["sh", "-c", script]})
        batches = await read_batches(cluster.nc, "counter")
        assert_well_formed(batches, "counter", docker_node)
        lines = numbered(batches)
        # The engine records the two streams apart: where "oops" falls among the last lines
        # of seq may vary, so only the numbers and each stream's own order are fixed.
        assert [n for n, _, _ in lines] == list(range(1, BURST + 2))
        assert_counted_to(lines, BURST)
        assert [(s, text) for _, s, text in lines if s == "stderr"] == [("stderr", "oops")]
        assert sum(b.eof for _, b in batches) == 1


# ---- an agent killed mid-stream -------------------------------------------------------------


async def _kill_mid_stream(
    cluster: Cluster, node: str, config: dict[str, Any], count: int, runtime: str
) -> None:
    agent = cluster.node(node, "--runtime", runtime)
    await cluster.create("printer", {**config, "restart": "never"})
    await cluster.wait_phase("printer", "running")
    await wait_lines(cluster.nc, "printer", 300)
    agent.kill()
    await asyncio.sleep(1.0)  # the task goes on printing while no agent reads it
    agent.start()
    await cluster.wait_phase("printer", "exited", timeout=90)
    batches = await read_batches(cluster.nc, "printer")
    assert_well_formed(batches, "printer", node)
    lines = numbered(batches)
    assert [n for n, _, _ in lines] == list(range(1, count + 1))
    assert_counted_to(lines, count)
    assert all(b.dropped == 0 for _, b in batches)


async def test_an_agent_killed_mid_stream_goes_on_numbering_without_duplicates(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    count = 3000
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        config = {"runtime": "exec", "args": printer(count, 0.003)}
        await _kill_mid_stream(cluster, "n1", config, count, "exec")


@pytest.mark.docker
async def test_a_docker_agent_killed_mid_stream_goes_on_without_duplicates(
    nats_server: NatsServer, tmp_path: Path, docker_node: str
) -> None:
    count = 2000
    script = f"seq 1 {count} | while read i; do echo $i; sleep 0.005; done"
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        config = {"image": TEST_IMAGE, "args": ["sh", "-c", script]}
        await _kill_mid_stream(cluster, docker_node, config, count, "docker")


# ---- NATS away ------------------------------------------------------------------------------


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, flags=re.MULTILINE)
    return float(m.group(1)) if m else 0.0


async def _outage(nats_server: NatsServer, cluster: Cluster) -> None:
    """NATS away for ``OUTAGE_S`` while the task prints, then back on the same port and store."""
    await wait_lines(cluster.nc, "printer", 200)
    nats_server.stop()
    await asyncio.sleep(OUTAGE_S)
    nats_server.start()


@pytest.mark.timeout(240)
async def test_nats_away_with_a_big_buffer_every_line_arrives_afterwards(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    count = 8000
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        await cluster.create(
            "printer", {"runtime": "exec", "args": printer(count, 0.002), "restart": "never"}
        )
        await cluster.wait_phase("printer", "running")
        await _outage(nats_server, cluster)
        await cluster.wait_phase("printer", "exited", timeout=120)
        batches = await read_batches(cluster.nc, "printer", timeout=120)
        assert_well_formed(batches, "printer", "n1")
        lines = numbered(batches)
        assert [n for n, _, _ in lines] == list(range(1, count + 1))
        assert_counted_to(lines, count)
        assert batches[-1][1].dropped == 0
        assert (await cluster.task("printer"))["status"]["logs_dropped"] == 0


@pytest.mark.timeout(240)
async def test_nats_away_with_a_small_buffer_drops_counts_and_reports(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    count, port = 8000, _free_port()
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node(
            "n1",
            "--runtime",
            "exec",
            "--log-buffer",
            str(SMALL_BUFFER),
            "--metrics-port",
            str(port),
        )
        await cluster.create(
            "printer", {"runtime": "exec", "args": printer(count, 0.002), "restart": "never"}
        )
        await cluster.wait_phase("printer", "running")
        await _outage(nats_server, cluster)
        task = await cluster.wait_task(
            "printer", lambda t: t["status"]["logs_dropped"] > 0, 120, "reported dropped lines"
        )
        await cluster.wait_phase("printer", "exited", timeout=120)
        batches = await read_batches(cluster.nc, "printer", timeout=120)
        assert_well_formed(batches, "printer", "n1")
        lines = numbered(batches)
        dropped = batches[-1][1].dropped
        numbers = [n for n, _, _ in lines]
        gaps = count - len(numbers)
        assert 0 < gaps <= dropped, "every missing line is counted as dropped"
        assert numbers[-1] == count
        # What did arrive is the right line under its number: a gap never shifts the numbering.
        assert all(text == str(n) for n, _, text in lines)
        final = await cluster.wait_task(
            "printer", lambda t: t["status"]["logs_dropped"] == dropped, 60, "reported the total"
        )
        assert task["status"]["logs_dropped"] <= final["status"]["logs_dropped"]
        assert _metric(port, "voiyd_node_log_lines_dropped_total") >= dropped
        assert _metric(port, "voiyd_node_log_batches_total") > 0
