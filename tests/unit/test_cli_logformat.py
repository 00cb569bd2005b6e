"""How voiydctl prints log lines: bytes as they are, split lines joined, prefixes and times."""

from __future__ import annotations

from typing import Any

from voiyd.cli.logformat import LogFormat

T = "2025-03-14T09:26:57.120000Z"


def chunk(task: str, *lines: tuple[str | bytes, bool], epoch: int = 1, dropped: int = 0) -> Any:
    return {
        "task": task,
        "seq": 1,
        "node": "n1",
        "epoch": epoch,
        "dropped": dropped,
        "eof": False,
        "lines": [
            {"n": i + 1, "t": T, "s": "stdout", "line": text, "partial": part}
            for i, (text, part) in enumerate(lines)
        ],
    }


def test_lines_are_written_as_they_are_with_a_newline_each() -> None:
    fmt = LogFormat()
    assert fmt.render([chunk("web", ("héllo", False), (b"\xff\xfe", False))]) == (
        "héllo\n".encode() + b"\xff\xfe\n"
    )


def test_a_split_line_is_joined_even_across_replies() -> None:
    fmt = LogFormat(timestamps=True)
    first = fmt.render([chunk("web", ("one", False), ("a long ", True))])
    second = fmt.render([chunk("web", ("line", False))])
    assert first + second == f"{T} one\n{T} a long line\n".encode()


def test_a_set_prefixes_each_line_and_never_runs_two_tasks_lines_together() -> None:
    fmt = LogFormat(prefix=True)
    out = fmt.render([chunk("web-1", ("half", True)), chunk("web-2", ("other", False))])
    assert out == b"[web-1] half\n[web-2] other\n"


def test_a_note_when_the_agent_dropped_more_lines() -> None:
    fmt = LogFormat()
    assert fmt.drop_notes([chunk("web", ("x", False), dropped=0)]) == []
    (note,) = fmt.drop_notes([chunk("web", ("x", False), dropped=7)])
    assert "dropped 7 line(s) of task web" in note
    assert fmt.drop_notes([chunk("web", ("x", False), dropped=7)]) == []
