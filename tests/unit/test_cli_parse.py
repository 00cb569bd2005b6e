"""The CLI's own argument syntax: KEY=VALUE, KIND[/NAME], --since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voiyd.cli.parse import parse_pairs, parse_since, parse_target

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([], {}, id="nothing"),
        pytest.param(["a=1"], {"a": "1"}, id="one"),
        pytest.param(["a=x=y"], {"a": "x=y"}, id="value-with-equals"),
        pytest.param(["a="], {"a": ""}, id="empty-value"),
        pytest.param(["a=1", "a=2"], {"a": "2"}, id="last-wins"),
    ],
)
def test_parse_pairs_accepts_key_value(values: list[str], expected: dict[str, str]) -> None:
    assert parse_pairs(values) == expected


@pytest.mark.parametrize("bad", ["FOO", "=1", " =1"])
def test_parse_pairs_rejects_what_is_not_key_value(bad: str) -> None:
    with pytest.raises(ValueError, match="is not KEY=VALUE"):
        parse_pairs([bad])


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        pytest.param("tasks", None, ("task", None), id="plural"),
        pytest.param("task", "web", ("task", "web"), id="kind-and-name"),
        pytest.param("task/web", None, ("task", "web"), id="slash"),
        pytest.param("NODES", None, ("node", None), id="case-insensitive"),
        pytest.param("no", "n1", ("node", "n1"), id="alias"),
    ],
)
def test_parse_target_reads_kind_and_name(
    kind: str, name: str | None, expected: tuple[str, str | None]
) -> None:
    assert parse_target(kind, name) == expected


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        pytest.param("sets", None, id="unknown-kind"),
        pytest.param("task/web", "web", id="slash-and-name"),
        pytest.param("task/", None, id="slash-without-name"),
    ],
)
def test_parse_target_rejects(kind: str, name: str | None) -> None:
    with pytest.raises(ValueError):
        parse_target(kind, name)


def test_parse_since_integer_is_an_exclusive_sequence() -> None:
    assert parse_since("42", NOW) == (43, None)


def test_parse_since_duration_is_a_time_back_from_now() -> None:
    assert parse_since("10m", NOW) == (None, NOW - timedelta(minutes=10))


def test_parse_since_nothing_means_from_the_start() -> None:
    assert parse_since(None, NOW) == (None, None)


def test_parse_since_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="neither a sequence number"):
        parse_since("yesterday", NOW)
