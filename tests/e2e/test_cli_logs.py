"""``voiydctl logs`` against real voiyd-logrelay processes.

The task's output is published as the agent ships it (``tests.logpub``) and its life is
appended to the event log (``tests.taskevents``), so these run without an agent; the same
behaviour with real agents is in ``test_logs_agents.py``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, running_cluster
from tests.e2e.test_cli_support import Cli, read_until
from tests.logpub import LogPublisher, numbered
from tests.natsserver import NatsServer
from tests.taskevents import TaskLife
from voiyd import clock

pytestmark = [pytest.mark.nats, pytest.mark.e2e]


@pytest.fixture
async def cluster(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(nats_server, tmp_path) as c:
        c.logrelay("relay-a")
        yield c


def lines(text: bytes) -> list[str]:
    return text.decode().splitlines()


async def running(cluster: Cluster, name: str) -> tuple[TaskLife, LogPublisher]:
    js = cluster.nc.jetstream()
    life = TaskLife(js, name)
    await life.created()
    await life.started()
    return life, LogPublisher(js, name, batch_lines=250)


async def finish(life: TaskLife, pub: LogPublisher) -> None:
    await pub.end()
    await life.exited(0)


async def exited_with(proc: asyncio.subprocess.Process) -> tuple[int, bytes, str]:
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, stdout, stderr.decode()


async def test_logs_shows_ten_thousand_lines_in_order_none_twice_and_the_tail(
    cluster: Cluster, tmp_path: Path
) -> None:
    life, pub = await running(cluster, "counter")
    await pub.write(numbered(10_000))
    await finish(life, pub)
    voiydctl = Cli(cluster.nats.url, tmp_path)
    code, stdout, stderr = await exited_with(await voiydctl.spawn("logs", "counter"))
    assert code == 0, stderr
    assert lines(stdout) == numbered(10_000)
    tail = await voiydctl("logs", "counter", "--tail", "5")
    assert tail.exit_code == 0, tail.stderr
    assert lines(tail.stdout_bytes) == numbered(5, start=9996)


async def test_logs_since_filters_by_time_and_timestamps_show_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    _, pub = await running(cluster, "web")
    now = clock.now()
    await pub.write(["an hour ago"], t=now - timedelta(hours=1))
    await pub.write(["just now"], t=now)
    voiydctl = Cli(cluster.nats.url, tmp_path)
    assert lines((await voiydctl("logs", "web", "--since", "10m")).stdout_bytes) == ["just now"]
    stamped = lines((await voiydctl("logs", "web", "--timestamps", "--tail", "1")).stdout_bytes)
    assert stamped == [f"{now.isoformat().replace('+00:00', 'Z')} just now"]


async def test_logs_follow_shows_new_lines_and_exits_0_when_the_task_stops(
    cluster: Cluster, tmp_path: Path
) -> None:
    life, pub = await running(cluster, "web")
    await pub.write(numbered(3))
    follower = await Cli(cluster.nats.url, tmp_path).spawn("logs", "-f", "web")
    assert follower.stdout is not None
    await read_until(follower.stdout, "line 00003")
    await pub.write(numbered(2, start=4))
    assert (await read_until(follower.stdout, "line 00005")).splitlines() == numbered(2, start=4)
    await life.stopped()
    await pub.end()
    code, rest, stderr = await exited_with(follower)
    assert code == 0, stderr
    assert rest == b""
    assert "Traceback" not in stderr


async def test_ctrl_c_ends_a_follow_quietly(cluster: Cluster, tmp_path: Path) -> None:
    _, pub = await running(cluster, "web")
    await pub.write(["hello"])
    follower = await Cli(cluster.nats.url, tmp_path).spawn("logs", "-f", "web")
    assert follower.stdout is not None
    await read_until(follower.stdout, "hello")
    follower.send_signal(signal.SIGINT)
    code, _, stderr = await exited_with(follower)
    assert code == 0, stderr
    assert "Traceback" not in stderr


async def test_a_sets_lines_come_with_their_task(cluster: Cluster, tmp_path: Path) -> None:
    for name in ("web-1", "web-2"):
        life, pub = await running(cluster, name)
        await pub.write([f"hello from {name}"])
        await finish(life, pub)
    result = await Cli(cluster.nats.url, tmp_path)("logs", "-f", "set/web")
    assert result.exit_code == 0, result.stderr
    assert sorted(lines(result.stdout_bytes)) == [
        "[web-1] hello from web-1",
        "[web-2] hello from web-2",
    ]


async def test_logs_of_an_exited_task_survive_a_relay_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    life, pub = await running(cluster, "job")
    await pub.write(numbered(100))
    await finish(life, pub)
    cluster.procs[0].kill()
    cluster.logrelay("relay-b")
    result = await Cli(cluster.nats.url, tmp_path)("logs", "job")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout_bytes) == numbered(100)


async def test_a_follow_survives_the_relay_being_killed_when_another_serves(
    cluster: Cluster, tmp_path: Path
) -> None:
    life, pub = await running(cluster, "web")
    await pub.write(numbered(1000))
    follower = await Cli(cluster.nats.url, tmp_path).spawn("logs", "-f", "web")
    assert follower.stdout is not None
    await read_until(follower.stdout, "line 01000")
    cluster.logrelay("relay-b")
    cluster.procs[0].kill()  # SIGKILL, possibly in the middle of the follow's long poll
    await pub.write(numbered(1000, start=1001))
    await finish(life, pub)
    code, rest, stderr = await exited_with(follower)
    assert code == 0, stderr
    assert lines(rest) == numbered(1000, start=1001)


async def test_a_follow_says_the_stream_broke_when_no_relay_is_left(
    cluster: Cluster, tmp_path: Path
) -> None:
    _, pub = await running(cluster, "web")
    await pub.write(numbered(3))
    follower = await Cli(cluster.nats.url, tmp_path).spawn("logs", "-f", "web")
    assert follower.stdout is not None
    await read_until(follower.stdout, "line 00003")
    cluster.procs[0].kill()
    code, _, stderr = await exited_with(follower)
    assert code == 7
    assert stderr.splitlines()[-1].startswith("error: log stream broke: ")
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        pytest.param(["ghost"], 4, "task 'ghost' not found", id="unknown-task"),
        pytest.param(["web", "--tail", "-1"], 3, "tail:", id="negative-tail"),
        pytest.param(["web", "--since", "last week"], 3, "since:", id="malformed-since"),
        pytest.param(["web*"], 3, "task:", id="wildcard"),
    ],
)
async def test_bad_input_is_one_clear_error_line(
    cluster: Cluster, tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    await TaskLife(cluster.nc.jetstream(), "web").created()
    result = await Cli(cluster.nats.url, tmp_path)("logs", *args)
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and says in result.stderr
    assert len(result.stderr.splitlines()) == 1


async def test_logs_without_a_relay_is_unavailable(nats_server: NatsServer, tmp_path: Path) -> None:
    result = await Cli(nats_server.url, tmp_path)("logs", "web")
    assert result.exit_code == 7
    assert "is voiyd-logrelay running?" in result.stderr
