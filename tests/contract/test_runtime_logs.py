"""The ``logs`` part of the Runtime contract, on the fake, the exec and the Docker runtime alike.

Commands are POSIX sh that busybox and the host's /bin/sh both run. Order is checked per stream:
Docker records stdout and stderr through two copiers, so lines written close together on the two
streams may come back in either order. The fake runs nothing; each test tells it what the
command would have printed (``script_output``). Every read has a deadline; nothing is timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from tests.contract.conftest import DEADLINE_S, Kit, wait_exited
from voiyd.agent.runtimes.protocol import LogStream, RawLine, Runtime, RuntimeFailure

DATA = "/data"
BURST = 10_000
LONG_FIELDS = 6000  # `seq -s x 1 6000` prints one line of 28,893 bytes
WAIT_FOR_GO = "while [ ! -e data/go ]; do sleep 0.1; done"


async def read_all(
    runtime: Runtime, container_id: str, since: datetime | None = None
) -> list[RawLine]:
    """Every line until the iteration ends by itself (after the container exited)."""
    out: list[RawLine] = []
    async with asyncio.timeout(DEADLINE_S * 2):
        async for line in runtime.logs(container_id, since):
            out.append(line)
    return out


def of(lines: list[RawLine], stream: LogStream) -> list[bytes]:
    return [line.data for line in lines if line.stream == stream]


async def test_logs_carry_each_line_on_its_stream_in_order(kit: Kit, runtime: Runtime) -> None:
    script = "echo one; echo two >&2; echo three; echo four >&2; printf tail"
    started = await runtime.start(kit.spec(["sh", "-c", script]))
    kit.script_output(
        started.id,
        [
            ("stdout", b"one"),
            ("stderr", b"two"),
            ("stdout", b"three"),
            ("stderr", b"four"),
            ("stdout", b"tail"),
        ],
    )
    await wait_exited(runtime, started.id)
    lines = await read_all(runtime, started.id)
    assert of(lines, "stdout") == [b"one", b"three", b"tail"]
    assert of(lines, "stderr") == [b"two", b"four"]
    assert all(line.t.tzinfo is not None and not line.partial for line in lines)


async def test_a_burst_of_ten_thousand_lines_arrives_complete_and_in_order(
    kit: Kit, runtime: Runtime
) -> None:
    started = await runtime.start(kit.spec(["seq", "1", str(BURST)]))
    kit.script_output(started.id, [("stdout", str(i).encode()) for i in range(1, BURST + 1)])
    lines = await read_all(runtime, started.id)
    assert of(lines, "stdout") == [str(i).encode() for i in range(1, BURST + 1)]
    assert of(lines, "stderr") == []
    times = [line.t for line in lines]
    assert times == sorted(times)


async def test_a_line_longer_than_16_kib_arrives_in_one_piece(kit: Kit, runtime: Runtime) -> None:
    expected = "x".join(str(i) for i in range(1, LONG_FIELDS + 1)).encode()
    assert len(expected) > 16 * 1024
    started = await runtime.start(kit.spec(["seq", "-s", "x", "1", str(LONG_FIELDS)]))
    kit.script_output(started.id, [("stdout", expected)])
    lines = await read_all(runtime, started.id)
    assert [(line.data, line.partial) for line in lines] == [(expected, False)]


async def test_bytes_that_are_not_utf8_pass_through_unchanged(kit: Kit, runtime: Runtime) -> None:
    started = await runtime.start(kit.spec(["sh", "-c", r"printf '\377\376ok\n\303(\n'"]))
    kit.script_output(started.id, [("stdout", b"\xff\xfeok"), ("stdout", b"\xc3(")])
    lines = await read_all(runtime, started.id)
    assert of(lines, "stdout") == [b"\xff\xfeok", b"\xc3("]


async def first_lines(runtime: Runtime, container_id: str, count: int) -> list[RawLine]:
    """The first ``count`` lines of a follow, which is then closed."""
    follower = cast(AsyncGenerator[RawLine, None], runtime.logs(container_id))
    try:
        async with asyncio.timeout(DEADLINE_S):
            return [await follower.__anext__() for _ in range(count)]
    finally:
        await follower.aclose()


async def test_following_ends_once_the_container_has_exited(kit: Kit, runtime: Runtime) -> None:
    data = kit.bind_dir()
    script = f"echo ready; {WAIT_FOR_GO}; echo bye >&2"
    started = await runtime.start(kit.spec(["sh", "-c", script], mounts=[f"{data}:{DATA}"]))
    if kit.kind == "fake":
        kit.fake.emit(started.id, "stdout", b"ready")
    reader = asyncio.create_task(read_all(runtime, started.id))
    (first,) = await first_lines(runtime, started.id, 1)
    assert (first.stream, first.data) == ("stdout", b"ready")
    assert not reader.done()
    (data / "go").write_text("")
    kit.script_output(started.id, [("stderr", b"bye")])
    lines = await reader
    assert [(line.stream, line.data) for line in lines] == [
        ("stdout", b"ready"),
        ("stderr", b"bye"),
    ]


async def test_since_skips_the_lines_from_before_it_and_replays_the_same_times(
    kit: Kit, runtime: Runtime
) -> None:
    data = kit.bind_dir()
    script = f"echo old; echo old-err >&2; {WAIT_FOR_GO}; echo new; echo new-err >&2"
    started = await runtime.start(kit.spec(["sh", "-c", script], mounts=[f"{data}:{DATA}"]))
    t0 = datetime.now(UTC)
    if kit.kind == "fake":
        kit.fake.emit(started.id, "stdout", b"old", t0)
        kit.fake.emit(started.id, "stderr", b"old-err", t0)
    early = await first_lines(runtime, started.id, 2)
    cut = max(line.t for line in early) + timedelta(microseconds=1)
    (data / "go").write_text("")
    if kit.kind == "fake":
        kit.fake.emit(started.id, "stdout", b"new", t0 + timedelta(seconds=1))
        kit.fake.emit(started.id, "stderr", b"new-err", t0 + timedelta(seconds=1))
        kit.fake.exit(started.id, 0)
    await wait_exited(runtime, started.id)
    later = await read_all(runtime, started.id, since=cut)
    assert sorted(line.data for line in later) == [b"new", b"new-err"]
    everything = await read_all(runtime, started.id)
    assert sorted(line.data for line in everything) == [b"new", b"new-err", b"old", b"old-err"]
    again = await read_all(runtime, started.id)
    assert [(x.t, x.stream, x.data) for x in again] == [(x.t, x.stream, x.data) for x in everything]


async def test_logs_of_an_unknown_container_is_a_runtime_failure(
    kit: Kit, runtime: Runtime
) -> None:
    with pytest.raises(RuntimeFailure):
        await read_all(runtime, "voiyd-no-such-container")
