"""How runtimes cut output into lines: LineAssembler, Docker's frames, the exec read index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voiyd.agent.runtimes.docker import LOG_DRIVER, create_body
from voiyd.agent.runtimes.docker_logs import (
    DockerLogDecoder,
    FrameSplitter,
    log_params,
    split_timestamp,
)
from voiyd.agent.runtimes.exec_logs import IndexEntry, parse_index, start_positions
from voiyd.agent.runtimes.lines import LineAssembler, Seen
from voiyd.agent.runtimes.protocol import ContainerSpec, RawLine
from voiyd.api.specs import TaskConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def t(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def fed(chunks: list[bytes], limit: int = 8) -> list[tuple[int, bytes, bool]]:
    """``(ms, data, partial)`` of the lines cut from chunks arriving at 0, 1, 2... ms."""
    lines = LineAssembler("stdout", limit)
    out: list[RawLine] = []
    for i, chunk in enumerate(chunks):
        out += lines.feed(chunk, t(i))
    out += lines.flush()
    return [(round((x.t - T0).total_seconds() * 1000), x.data, x.partial) for x in out]


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        pytest.param([b"a\nb\n"], [(0, b"a", False), (0, b"b", False)], id="whole-lines"),
        pytest.param(
            [b"ab", b"c\nd\n"],
            [(0, b"abc", False), (1, b"d", False)],
            id="line-keeps-its-start-time",
        ),
        pytest.param(
            [b"a\n", b"tail"], [(0, b"a", False), (1, b"tail", False)], id="no-final-newline"
        ),
        pytest.param([b"\n\n"], [(0, b"", False), (0, b"", False)], id="empty-lines"),
        pytest.param(
            [b"0123456789\n"], [(0, b"01234567", True), (0, b"89", False)], id="cut-at-the-limit"
        ),
        pytest.param(
            [b"0123", b"4567", b"89\n"],
            [(0, b"01234567", True), (0, b"89", False)],
            id="cut-while-growing",
        ),
        pytest.param(
            [b"01234567", b"\n"],
            [(0, b"01234567", True), (0, b"", False)],
            id="exact-limit-ends-empty",
        ),
        pytest.param([b"\xff\xfe\n"], [(0, b"\xff\xfe", False)], id="bytes-untouched"),
    ],
)
def test_line_assembler(chunks: list[bytes], lines: list[tuple[int, bytes, bool]]) -> None:
    assert fed(chunks) == lines


def test_line_assembler_skips_the_tail_of_a_line_begun_earlier() -> None:
    lines = LineAssembler("stderr")
    lines.skip_to_newline()
    assert [x.data for x in lines.feed(b"tail of old\nnew\n", T0)] == [b"new"]


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


STREAM = (
    frame(1, b"2026-01-01T00:00:00.000001000Z hello\n")
    + frame(2, b"2026-01-01T00:00:00.000002999Z oops\n")
    + frame(1, b"2026-01-01T00:00:00.000003000Z first half ")
    + frame(1, b"2026-01-01T00:00:00.000004000Z second half\n")
    + frame(1, b"2026-01-01T00:00:00.000005000Z \xff no newline")
)
EXPECTED = [
    ("stdout", 1, b"hello"),
    ("stderr", 2, b"oops"),
    ("stdout", 3, b"first half second half"),
    ("stdout", 5, b"\xff no newline"),
]


@pytest.mark.parametrize("size", [1, 3, 8, 9, 64, len(STREAM)], ids=lambda n: f"chunks-of-{n}")
def test_docker_frames_decode_whatever_the_chunks(size: int) -> None:
    decoder = DockerLogDecoder()
    lines: list[RawLine] = []
    for i in range(0, len(STREAM), size):
        lines += decoder.feed(STREAM[i : i + size])
    lines += decoder.flush()
    got = [(x.stream, (x.t - T0) // timedelta(microseconds=1), x.data) for x in lines]
    assert sorted(got, key=lambda x: x[1]) == EXPECTED


def test_frame_splitter_keeps_an_incomplete_frame() -> None:
    frames = FrameSplitter()
    assert frames.feed(frame(1, b"abc")[:-1]) == []
    assert frames.leftover == 10
    assert frames.feed(b"c") == [("stdout", b"abc")]
    assert frames.leftover == 0


@pytest.mark.parametrize(
    ("payload", "time", "rest"),
    [
        pytest.param(
            b"2026-01-01T00:00:00.123456789Z x y",
            T0 + timedelta(microseconds=123456),
            b"x y",
            id="nanoseconds-truncated",
        ),
        pytest.param(b"no-time here", None, b"no-time here", id="not-a-time"),
        pytest.param(b"single", None, b"single", id="no-space"),
    ],
)
def test_split_timestamp(payload: bytes, time: datetime | None, rest: bytes) -> None:
    assert split_timestamp(payload) == (time, rest)


def test_log_params_ask_for_both_streams_with_times_and_since() -> None:
    params = log_params(T0 + timedelta(microseconds=5))
    assert params == {
        "stdout": "1",
        "stderr": "1",
        "follow": "1",
        "timestamps": "1",
        "since": f"{T0.timestamp():.0f}.000005",
    }
    assert "since" not in log_params(None)


def test_containers_log_with_a_driver_that_keeps_bytes(tmp_path: Path) -> None:
    spec = ContainerSpec("web", 1, "n1", TaskConfig(image="busybox"), volumes_dir=tmp_path)
    assert create_body(spec)["HostConfig"]["LogConfig"] == {"Type": LOG_DRIVER, "Config": {}}
    assert LOG_DRIVER == "local"


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        pytest.param(
            "o 10 5\ne 3 6\no 20 7\n", [("o", 10, 5), ("e", 3, 6), ("o", 20, 7)], id="in-order"
        ),
        pytest.param("o 10 5\no 1", [("o", 10, 5)], id="torn-last-line-ignored"),
        pytest.param("o 10 5\nx 3 6\no ten 7\n", [("o", 10, 5)], id="garbage-ignored"),
        pytest.param("o 10 5\no 10 6\no 8 7\n", [("o", 10, 5)], id="covers-nothing-new"),
    ],
)
def test_parse_index(text: str, entries: list[tuple[str, int, int]]) -> None:
    assert parse_index(text) == [IndexEntry(*e) for e in entries]


INDEX = [
    IndexEntry("o", 10, 100),
    IndexEntry("e", 4, 100),
    IndexEntry("o", 30, 200),
    IndexEntry("e", 9, 300),
]


@pytest.mark.parametrize(
    ("since", "first", "positions"),
    [
        pytest.param(None, 0, {"o": 0, "e": 0}, id="from-the-start"),
        pytest.param(100, 0, {"o": 0, "e": 0}, id="since-the-first-read"),
        pytest.param(150, 2, {"o": 10, "e": 4}, id="skips-older-reads"),
        pytest.param(300, 3, {"o": 30, "e": 4}, id="the-last-read"),
        pytest.param(999, 4, {"o": 30, "e": 9}, id="after-everything"),
    ],
)
def test_start_positions(since: int | None, first: int, positions: dict[str, int]) -> None:
    assert start_positions(INDEX, since) == (first, positions)


def line(ms: int, data: str, stream: str = "stdout") -> RawLine:
    return RawLine(t(ms), "stderr" if stream == "stderr" else "stdout", data.encode())


FIRST_READ = [line(1, "a"), line(1, "b"), line(0, "x", "stderr"), line(2, "c")]


@pytest.mark.parametrize(
    ("second_read", "new"),
    [
        pytest.param(
            [line(1, "a"), line(1, "b"), line(2, "c"), line(2, "d"), line(3, "e")],
            ["d", "e"],
            id="only-the-tail-is-new",
        ),
        pytest.param([line(0, "x", "stderr"), line(4, "y", "stderr")], ["y"], id="per-stream"),
        pytest.param([line(2, "c")], [], id="nothing-new"),
        pytest.param([line(0, "old"), line(1, "a")], [], id="older-lines-were-seen"),
    ],
)
def test_seen_hands_over_only_what_a_first_read_did_not(
    second_read: list[RawLine], new: list[str]
) -> None:
    seen = Seen()
    for x in FIRST_READ:
        seen.add(x)
    assert seen.since(timedelta(milliseconds=1)) == t(-1)
    seen.again()
    fresh = [x for x in second_read if seen.new(x)]
    assert [x.data.decode() for x in fresh] == new


def test_seen_with_nothing_read_starts_from_the_beginning() -> None:
    seen = Seen()
    assert seen.since(timedelta(seconds=1)) is None
    assert seen.new(line(0, "a"))
