"""The log relay's pure decisions: decoding batches, budgets, tails, merges, end of stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.logpub import encode_batch
from voiyd.api.logread import Position, ReadLogs, parse_when
from voiyd.api.logs import LogBatch, LogLine
from voiyd.api.specs import Meta, TaskConfig
from voiyd.api.views import TaskStatus, TaskView
from voiyd.errors import InvalidRequestError
from voiyd.logrelay import framing
from voiyd.logrelay.framing import Budget, Filter, LastLog, Message, TaskEnd, Tracked

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
BIG = Budget(lines=1_000_000, bytes=1 << 30)


def msg(
    seq: int,
    texts: list[str | bytes],
    *,
    first_n: int = 1,
    eof: bool = False,
    streams: str = "",
    t0: datetime = T0,
    task: str = "web",
) -> Message:
    lines = [
        LogLine(
            n=first_n + i,
            t=t0 + timedelta(seconds=first_n + i),
            s="stderr" if streams[i : i + 1] == "e" else "stdout",
            line=text,
        )
        for i, text in enumerate(texts)
    ]
    batch = LogBatch(task=task, node="n1", epoch=1, lines=lines, eof=eof)
    decoded = framing.decode(seq, t0, encode_batch(batch))
    assert decoded is not None
    return decoded


def texts(chunks: list[dict[str, Any]]) -> list[str | bytes]:
    return [line["line"] for c in chunks for line in c["lines"]]


# ---- decode ---------------------------------------------------------------------------------


def test_decode_keeps_text_and_bytes_lines_as_they_are() -> None:
    m = msg(7, ["héllo", b"\xff\xfe raw"])
    assert [line["line"] for line in m.batch["lines"]] == ["héllo", b"\xff\xfe raw"]
    assert m.seq == 7


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xc1", id="not-msgpack"),
        pytest.param(b"\x93\x01\x02\x03", id="a-list"),
        pytest.param(b"\x81\xa4task\xa3web", id="missing-fields"),
    ],
)
def test_decode_returns_none_for_what_is_not_a_batch(data: bytes) -> None:
    assert framing.decode(1, T0, data) is None


# ---- take -----------------------------------------------------------------------------------


def test_take_returns_every_line_after_the_position_in_order() -> None:
    messages = [msg(2, ["a", "b"]), msg(5, ["c"], first_n=3), msg(9, ["d", "e"], first_n=4)]
    taken = framing.take("web", messages, Position(seq=2), Filter(), Budget(100, 1 << 20))
    assert texts(taken.chunks) == ["c", "d", "e"]
    assert taken.position == Position(seq=9)
    assert not taken.cut


def test_take_splits_a_message_at_the_line_budget_and_resumes_without_gap_or_duplicate() -> None:
    messages = [msg(3, ["a", "b", "c", "d", "e"])]
    first = framing.take("web", messages, Position(seq=0), Filter(), Budget(2, 1 << 20))
    assert texts(first.chunks) == ["a", "b"]
    assert first.cut and first.position == Position(seq=2, skip=2)
    second = framing.take("web", messages, first.position, Filter(), Budget(2, 1 << 20))
    assert texts(second.chunks) == ["c", "d"]
    third = framing.take("web", messages, second.position, Filter(), Budget(2, 1 << 20))
    assert texts(third.chunks) == ["e"]
    assert third.position == Position(seq=3) and not third.cut


def test_take_stops_at_the_byte_budget_but_always_takes_one_line() -> None:
    messages = [msg(1, ["x" * 1000, "y" * 1000, "z"])]
    taken = framing.take("web", messages, Position(seq=0), Filter(), Budget(100, 10))
    assert texts(taken.chunks) == ["x" * 1000]
    assert taken.position == Position(seq=0, skip=1)


def test_take_filters_by_stream_and_time() -> None:
    m = msg(1, ["o1", "e1", "o2", "e2"], streams="oeoe")
    only_err = framing.take("web", [m], Position(seq=0), Filter(stream="stderr"), BIG)
    assert texts(only_err.chunks) == ["e1", "e2"]
    # line i is written at T0 + (i + 1) s
    window = Filter(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=3))
    assert texts(framing.take("web", [m], Position(seq=0), window, BIG).chunks) == ["e1", "o2"]


def test_take_passes_an_eof_batch_on_as_an_empty_chunk() -> None:
    taken = framing.take(
        "web", [msg(1, ["a"]), msg(2, [], eof=True)], Position(seq=0), Filter(), BIG
    )
    assert [c["eof"] for c in taken.chunks] == [False, True]
    assert taken.chunks[1]["lines"] == []


# ---- tail -----------------------------------------------------------------------------------


def test_locate_tail_finds_the_start_of_the_last_lines_across_messages() -> None:
    newest_first = [msg(9, ["d", "e"], first_n=4), msg(5, ["b", "c"], first_n=2)]
    assert framing.locate_tail(newest_first, 3, Filter()) == Position(seq=4, skip=1)
    assert framing.locate_tail(newest_first, 2, Filter()) == Position(seq=8, skip=0)


def test_locate_tail_says_how_many_lines_are_still_missing() -> None:
    assert framing.locate_tail([msg(9, ["d", "e"])], 5, Filter()) == 3


def test_locate_tail_counts_only_lines_that_pass_the_filter() -> None:
    m = msg(4, ["o1", "e1", "o2", "o3"], streams="oeoo")
    assert framing.locate_tail([m], 1, Filter(stream="stderr")) == Position(seq=3, skip=1)


# ---- sets -----------------------------------------------------------------------------------


def test_set_members_are_the_numbered_tasks_of_the_set_in_replica_order() -> None:
    names = ["web-10", "web-2", "web", "web-x", "webs-1", "web-1", "api-1", "web-2-1"]
    assert framing.set_members("web", names) == ["web-1", "web-2", "web-10"]


def test_a_set_cursor_naming_another_task_is_invalid_naming_after() -> None:
    req = ReadLogs.model_validate(
        {"set": "web", "after": {"web-1": {"seq": 3}, "api-1": {"seq": 1}}}
    )
    with pytest.raises(InvalidRequestError) as info:
        framing.check_after(req)
    assert info.value.fields[0].loc == "after"


def test_merge_orders_chunks_by_time_and_keeps_each_tasks_order() -> None:
    a = [msg(1, ["a1"], t0=T0, task="web-1"), msg(3, ["a2"], t0=T0 + timedelta(seconds=10))]
    b = [msg(2, ["b1"], t0=T0 + timedelta(seconds=5), task="web-2")]
    chunks_a = framing.take("web-1", a, Position(seq=0), Filter(), BIG).chunks
    chunks_b = framing.take("web-2", b, Position(seq=0), Filter(), BIG).chunks
    merged = framing.merge([chunks_a, chunks_b])
    assert [(c["task"], texts([c])) for c in merged] == [
        ("web-1", ["a1"]),
        ("web-2", ["b1"]),
        ("web-1", ["a2"]),
    ]


# ---- the end of a stream --------------------------------------------------------------------


def view(phase: str, *, restart: str = "never", exit_code: int | None = None) -> TaskView:
    return TaskView(
        meta=Meta(name="web"),
        config=TaskConfig.model_validate({"runtime": "exec", "args": ["x"], "restart": restart}),
        status=TaskStatus.model_validate(
            {"phase": phase, "exit_code": exit_code, "epoch": 2, "node": "n1", "container_id": "c"}
        ),
        revision=1,
        generation=1,
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize(
    ("phase", "restart", "exit_code", "ended"),
    [
        pytest.param("running", "never", None, False, id="running"),
        pytest.param("pending", "never", None, False, id="pending"),
        pytest.param("exited", "never", 0, True, id="exited-never"),
        pytest.param("exited", "always", 0, False, id="exited-always-restarts"),
        pytest.param("exited", "on-failure", 0, True, id="exited-on-failure-code-0"),
        pytest.param("exited", "on-failure", 3, False, id="exited-on-failure-code-3"),
        pytest.param("failed", "on-failure", 3, True, id="failed"),
        pytest.param("stopped", "always", None, True, id="stopped"),
    ],
)
def test_task_end_by_phase_and_restart_policy(
    phase: str, restart: str, exit_code: int | None, ended: bool
) -> None:
    tracked = Tracked(view(phase, restart=restart, exit_code=exit_code), False, T0)
    assert (framing.task_end("web", tracked) is not None) == ended


def test_a_deleted_task_has_ended_on_its_last_placement() -> None:
    before = view("running")
    end = framing.task_end("web", Tracked(None, True, T0, last=before))
    assert end == TaskEnd("task web was deleted", epoch=2, at=T0, node="n1", started=True)


END = TaskEnd("task web exited with code 0", epoch=2, at=T0, node="n1", started=True)
PATIENCE = timedelta(seconds=60)
LATER = T0 + timedelta(seconds=5)


def last_log(seq: int, eof: bool, epoch: int = 2, stored: datetime = T0) -> LastLog:
    return LastLog(seq=seq, eof=eof, epoch=epoch, stored=stored)


@pytest.mark.parametrize(
    ("last", "at", "now", "gone", "ended"),
    [
        pytest.param(last_log(10, True), Position(seq=10), T0, False, True, id="eof-delivered"),
        pytest.param(last_log(10, True), Position(seq=9), T0, True, False, id="not-delivered"),
        pytest.param(last_log(10, False), Position(seq=10), LATER, False, False, id="no-eof-yet"),
        pytest.param(last_log(10, False), Position(seq=10), T0, True, True, id="node-gone"),
        pytest.param(
            last_log(10, False), Position(seq=10), T0 + PATIENCE, False, True, id="gave-up"
        ),
        pytest.param(
            last_log(10, False, stored=LATER),
            Position(seq=10),
            T0 + PATIENCE,
            False,
            False,
            id="still-shipping",
        ),
        pytest.param(last_log(10, True, epoch=1), Position(seq=10), T0, False, False, id="old"),
        pytest.param(None, Position(seq=0), T0, False, False, id="no-logs-yet"),
    ],
)
def test_stream_end_waits_for_the_eof_of_the_last_placement(
    last: LastLog | None, at: Position, now: datetime, gone: bool, ended: bool
) -> None:
    got = framing.stream_end(END, last, at, now, node_gone=gone, patience=PATIENCE)
    assert (got is not None) == ended


def test_no_eof_is_awaited_from_a_placement_that_never_started_a_container() -> None:
    never = TaskEnd("task web failed: no such image", epoch=2, at=T0, node="n1", started=False)
    got = framing.stream_end(never, None, Position(seq=0), T0, node_gone=False, patience=PATIENCE)
    assert got == "task web failed: no such image"


def test_a_set_ends_when_all_of_its_tasks_have() -> None:
    assert framing.set_end("web", {"web-1": "done", "web-2": None}) is None
    assert framing.set_end("web", {"web-1": "done", "web-2": "done"}) == (
        "all 2 tasks of set web ended"
    )


def test_a_follow_with_until_ends_after_until_and_its_margin() -> None:
    flt = Filter(until=T0)
    assert framing.until_end(flt, T0) is None
    assert framing.until_end(flt, T0 + framing.SINCE_MARGIN) == "reached --until"


# ---- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10m", T0 - timedelta(minutes=10), id="duration"),
        pytest.param("2025-03-14T08:00:00Z", datetime(2025, 3, 14, 8, tzinfo=UTC), id="utc"),
        pytest.param(
            "2025-03-14T09:00:00+01:00", datetime(2025, 3, 14, 8, tzinfo=UTC), id="offset"
        ),
    ],
)
def test_parse_when_reads_durations_and_times(text: str, expected: datetime) -> None:
    assert parse_when(text, T0) == expected


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"task": "web*"}, "task", id="wildcard"),
        pytest.param({"task": "web", "tail": -1}, "tail", id="negative-tail"),
        pytest.param({"task": "web", "since": "yesterday"}, "since", id="bad-since"),
        pytest.param({"task": "web", "since": "2025-03-14T08:00:00"}, "since", id="no-zone"),
        pytest.param({"task": "web", "until": "10x"}, "until", id="bad-until"),
        pytest.param({"task": "web", "wait_s": 31}, "wait_s", id="long-wait"),
        pytest.param({"task": "web", "stream": "stdin"}, "stream", id="bad-stream"),
    ],
)
def test_a_bad_request_names_its_field(body: dict[str, Any], loc: str) -> None:
    from voiyd.api.validation import parse_model

    with pytest.raises(InvalidRequestError) as info:
        parse_model(ReadLogs, body)
    assert [f.loc for f in info.value.fields] == [loc]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"task": "web", "set": "web"}, id="both"),
        pytest.param({"task": "web", "after": {"api": {"seq": 1}}}, id="other-task-cursor"),
    ],
)
def test_a_request_needs_exactly_one_target_and_its_own_cursor(body: dict[str, Any]) -> None:
    from voiyd.api.validation import parse_model

    with pytest.raises(InvalidRequestError):
        parse_model(ReadLogs, body)


def test_a_share_of_the_budget_leaves_room_for_the_other_tasks_of_a_set() -> None:
    budget = Budget(lines=90, bytes=9000)
    given = budget.share(3)
    assert (given.lines, given.bytes) == (30, 3000)
    part = Budget(given.lines, given.bytes, given.spent)
    framing.take("web-1", [msg(1, ["a"] * 100)], Position(seq=0), Filter(), part)
    budget.absorb(part, given)
    assert budget.lines == 60 and budget.spent
