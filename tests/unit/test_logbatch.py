"""The agent's pure log rules (voiyd.agent.logbatch): splitting, numbering, resuming, batching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voiyd.agent import logbatch as lb
from voiyd.agent.runtimes.protocol import LogStream, RawLine
from voiyd.api.logs import MAX_LINE, LogBatch
from voiyd.bus import codec

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BIG = b"y" * (2 * MAX_LINE + 100)  # three parts


def t(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def raw(ms: int, data: bytes, stream: LogStream = "stdout", partial: bool = False) -> RawLine:
    return RawLine(t(ms), stream, data, partial)


# ---- splitting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "limit", "parts"),
    [
        pytest.param(b"abc", 4, [b"abc"], id="short"),
        pytest.param(b"abcd", 4, [b"abcd"], id="exactly-the-limit"),
        pytest.param(b"abcde", 4, [b"abcd", b"e"], id="one-over"),
        pytest.param(b"", 4, [b""], id="empty-line"),
        pytest.param("éé".encode(), 3, ["é".encode(), "é".encode()], id="utf8-not-cut-in-a-char"),
        pytest.param("a😀b".encode(), 4, [b"a", "😀".encode(), b"b"], id="utf8-four-byte-char"),
        pytest.param(b"\xff\xfe\xfd\xfc\xfb", 2, [b"\xff\xfe", b"\xfd\xfc", b"\xfb"], id="binary"),
    ],
)
def test_split_line(data: bytes, limit: int, parts: list[bytes]) -> None:
    assert lb.split_line(data, limit) == parts
    assert b"".join(parts) == data


@pytest.mark.parametrize(
    ("part", "value"),
    [
        pytest.param(b"hello", "hello", id="ascii-is-text"),
        pytest.param("ünïcode".encode(), "ünïcode", id="utf8-is-text"),
        pytest.param(b"\xff\xfeok", b"\xff\xfeok", id="not-utf8-stays-bytes"),
        pytest.param(b"\xc3", b"\xc3", id="a-cut-character-stays-bytes"),
    ],
)
def test_line_value(part: bytes, value: str | bytes) -> None:
    assert lb.line_value(part) == value


@pytest.mark.parametrize(
    ("line", "first", "expected"),
    [
        pytest.param(raw(1, b"x"), 0, [(7, False)], id="one-part"),
        pytest.param(raw(1, BIG), 0, [(7, True), (8, True), (9, False)], id="split-line"),
        pytest.param(raw(1, BIG), 2, [(7, False)], id="resumed-inside-a-split-line"),
        pytest.param(raw(1, b"x", partial=True), 0, [(7, True)], id="runtime-piece-goes-on"),
    ],
)
def test_parts_are_numbered_and_marked_partial(
    line: RawLine, first: int, expected: list[tuple[int, bool]]
) -> None:
    parts = lb.parts_of(line, first, 7, lb.Cursor())
    assert [(p.n, p.partial) for p in parts] == expected
    assert [p.before.parts for p in parts] == list(range(first, first + len(parts)))


# ---- resuming from a cursor -----------------------------------------------------------------

OUTPUT = [
    raw(0, b"a"),
    raw(0, b"b"),
    raw(0, b"oops", "stderr"),
    raw(5, BIG),
    raw(5, b"c"),
    raw(3, b"late", "stderr"),  # the engine may record the two streams slightly out of order
    raw(9, b"d"),
    raw(9, BIG, "stderr"),
    raw(9, b"e", "stderr"),
]


def number(lines: list[RawLine], start: lb.Start) -> list[lb.Part]:
    """What a reader numbers from ``start``, as PlacementLog does (pure here)."""
    resume, cursor, n, out = lb.Resume(start.cursor), start.cursor, start.next_n, []
    for line in lines:
        first, resume = lb.skip(resume, line)
        if first >= lb.ALL_PARTS:
            continue
        parts = lb.parts_of(line, first, n, cursor)
        out.extend(parts)
        n += len(parts)
        cursor = cursor.after(line)
    return out


def replay(lines: list[RawLine], since: datetime | None) -> list[RawLine]:
    """A runtime's answer to ``logs(since=...)``: the same lines, those at or after ``since``."""
    return [line for line in lines if since is None or line.t >= since]


ALL = number(OUTPUT, lb.Start(lb.Cursor(), 1))


@pytest.mark.parametrize("cut", range(len(ALL)), ids=lambda i: f"batch-starts-at-part-{i}")
def test_reading_again_from_a_batch_start_gives_the_same_parts(cut: int) -> None:
    start = lb.Start(ALL[cut].before, ALL[cut].n)
    again = number(replay(OUTPUT, start.cursor.since()), start)
    assert [(p.n, p.data, p.partial) for p in again] == [
        (p.n, p.data, p.partial) for p in ALL[cut:]
    ]


def test_numbers_run_from_one_without_gaps() -> None:
    assert [p.n for p in ALL] == list(range(1, len(ALL) + 1))
    assert len(ALL) == len(OUTPUT) + 4  # two lines of three parts each


# ---- batches --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "max_bytes", "last", "length"),
    [
        pytest.param([(1, 10, "a"), (2, 10, "a"), (3, 10, "a")], 100, None, 3, id="all-fit"),
        pytest.param([(1, 10, "a"), (2, 10, "a"), (3, 10, "a")], 25, None, 2, id="full"),
        pytest.param([(1, 500, "a"), (2, 10, "a")], 100, None, 1, id="at-least-one"),
        pytest.param([(1, 10, "a"), (2, 10, "a"), (5, 10, "a")], 100, None, 2, id="gap-ends-it"),
        pytest.param([(1, 10, "a"), (2, 10, "b")], 100, None, 1, id="other-container"),
        pytest.param([(1, 10, "a"), (2, 10, "a"), (3, 10, "a")], 100, 2, 2, id="replayed-batch"),
        pytest.param([], 100, None, 0, id="nothing"),
    ],
)
def test_batch_length(
    pending: list[tuple[int, int, str]], max_bytes: int, last: int | None, length: int
) -> None:
    assert lb.batch_length(pending, max_bytes, last) == length


@pytest.mark.parametrize(
    ("cost", "age", "ended", "reaches", "now"),
    [
        pytest.param(100, 0.01, False, False, False, id="small-and-fresh-waits"),
        pytest.param(lb.BATCH_BYTES, 0.0, False, False, True, id="full"),
        pytest.param(100, lb.BATCH_AGE_S, False, False, True, id="old-enough"),
        pytest.param(100, 0.0, True, False, True, id="output-ended"),
        pytest.param(100, 0.0, False, True, True, id="replayed-batch-complete"),
    ],
)
def test_send_now(cost: int, age: float, ended: bool, reaches: bool, now: bool) -> None:
    assert lb.send_now(cost, age, ended, reaches) is now


@pytest.mark.parametrize(
    ("dropped", "reported", "since", "due"),
    [
        pytest.param(0, 0, None, False, id="nothing-dropped"),
        pytest.param(5, 0, None, True, id="first-drops"),
        pytest.param(9, 5, 1.0, False, id="grew-but-too-soon"),
        pytest.param(9, 5, 5.0, True, id="grew-and-due"),
        pytest.param(5, 5, 60.0, False, id="unchanged"),
    ],
)
def test_report_due(dropped: int, reported: int, since: float | None, due: bool) -> None:
    assert lb.report_due(dropped, reported, since, 5.0) is due


def test_a_batch_built_by_hand_is_a_log_batch_on_the_wire_bytes_included() -> None:
    lines = [
        lb.line_dict(1, lb.wire_time(t(1)), "stdout", b"hello", False),
        lb.line_dict(2, lb.wire_time(t(2)), "stderr", b"\xff\xfe", True),
    ]
    wire = codec.encode(lb.batch_dict("web", "n1", 3, "c1", lines, dropped=4))
    batch = LogBatch.model_validate(codec.decode_map(wire))
    assert [(x.n, x.t, x.s, x.line, x.partial) for x in batch.lines] == [
        (1, t(1), "stdout", "hello", False),
        (2, t(2), "stderr", b"\xff\xfe", True),
    ]
    assert (batch.task, batch.node, batch.epoch, batch.dropped, batch.eof) == (
        "web",
        "n1",
        3,
        4,
        False,
    )
    assert lb.msg_id("web", 3, 1) == "web.3.1"
    assert lb.eof_msg_id("web", 3, "c1") == "web.3.eof.c1"


# ---- checkpoints ----------------------------------------------------------------------------

CURSOR = lb.Cursor(lb.Mark(t(5), 2), None, parts=1, parts_stream="stderr")


@pytest.mark.parametrize(
    "cp",
    [
        pytest.param(lb.Checkpoint("web", 1), id="fresh"),
        pytest.param(
            lb.Checkpoint("web", 2, "c1", CURSOR, next_n=40, inflight_last=55, dropped=3),
            id="in-flight",
        ),
        pytest.param(lb.Checkpoint("web", 2).finished("c1", 80), id="finished"),
    ],
)
def test_a_checkpoint_reads_back_as_written(cp: lb.Checkpoint) -> None:
    assert lb.parse_checkpoint(lb.checkpoint_text(cp)) == cp


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("{", id="torn"),
        pytest.param('{"v": 99}', id="other-version"),
        pytest.param('{"v": 1, "task": "web"}', id="missing-fields"),
        pytest.param("[1, 2]", id="not-an-object"),
    ],
)
def test_a_broken_checkpoint_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        lb.parse_checkpoint(text)


def test_finished_containers_are_remembered_but_not_forever() -> None:
    cp = lb.Checkpoint("web", 1)
    for i in range(lb.KEEP_DONE + 3):
        cp = cp.finished(f"c{i}", i + 1)
    assert len(cp.done) == lb.KEEP_DONE and cp.done[-1] == f"c{lb.KEEP_DONE + 2}"
    assert (cp.eof, cp.next_n, cp.inflight_last) == (True, lb.KEEP_DONE + 3, None)


@pytest.mark.parametrize(
    ("cp", "container", "start"),
    [
        pytest.param(lb.Checkpoint("web", 1), "c1", lb.Start(lb.Cursor(), 1), id="first-container"),
        pytest.param(
            lb.Checkpoint("web", 1, "c1", CURSOR, next_n=40, inflight_last=55),
            "c1",
            lb.Start(CURSOR, 40, 55),
            id="same-container-resumes",
        ),
        pytest.param(
            lb.Checkpoint("web", 1).finished("c1", 80),
            "c2",
            lb.Start(lb.Cursor(), 80),
            id="restart",
        ),
        pytest.param(lb.Checkpoint("web", 1).finished("c1", 80), "c1", None, id="shipped-already"),
        pytest.param(
            lb.Checkpoint("web", 1, "c1", CURSOR, next_n=40, inflight_last=55),
            "c2",
            lb.Start(lb.Cursor(), 56, unfinished="c1"),
            id="previous-container-gone-numbers-used-up",
        ),
        pytest.param(
            lb.Checkpoint("web", 1, "c1", CURSOR, next_n=40),
            "c2",
            lb.Start(lb.Cursor(), 40, unfinished="c1"),
            id="previous-container-gone-nothing-in-flight",
        ),
    ],
)
def test_plan_start(cp: lb.Checkpoint, container: str, start: lb.Start | None) -> None:
    assert lb.plan_start(cp, container) == start
