"""The CLI's own argument syntax: KEY=VALUE, KIND[/NAME], --since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voiyd.cli.parse import (
    parse_file_spec,
    parse_label_changes,
    parse_pairs,
    parse_ref,
    parse_since,
    parse_target,
)

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
        pytest.param("sets", None, ("set", None), id="sets"),
        pytest.param("set/web", None, ("set", "web"), id="set-slash"),
        pytest.param("vol", "data", ("volume", "data"), id="volume-alias"),
        pytest.param("volumes", None, ("volume", None), id="volumes"),
    ],
)
def test_parse_target_reads_kind_and_name(
    kind: str, name: str | None, expected: tuple[str, str | None]
) -> None:
    assert parse_target(kind, name) == expected


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        pytest.param("jobs", None, id="unknown-kind"),
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


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(["disk=ssd"], {"disk": "ssd"}, id="set"),
        pytest.param(["gpu-"], {"gpu": None}, id="remove"),
        pytest.param(["a=1", "b-", "c="], {"a": "1", "b": None, "c": ""}, id="mixed"),
        pytest.param(["a=x-"], {"a": "x-"}, id="value-ending-in-dash"),
    ],
)
def test_parse_label_changes_sets_and_removes(
    values: list[str], expected: dict[str, str | None]
) -> None:
    assert parse_label_changes(values) == expected


@pytest.mark.parametrize("bad", [[], ["disk"], ["-"], ["=ssd"]])
def test_parse_label_changes_rejects(bad: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_label_changes(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("conf/nginx.conf", ("conf/nginx.conf", None), id="path"),
        pytest.param("a.conf=site/b.conf", ("a.conf", "site/b.conf"), id="path-and-name"),
    ],
)
def test_parse_file_spec(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_file_spec(text) == expected


@pytest.mark.parametrize("bad", ["=name", "path="])
def test_parse_file_spec_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_file_spec(bad)


@pytest.mark.parametrize(
    ("kind", "name"), [("set/web", None), ("set", "web"), ("sets", "web"), ("SET/web", None)]
)
def test_parse_ref_reads_set_slash_name_and_set_name(kind: str, name: str | None) -> None:
    assert parse_ref(kind, name, "set") == "web"


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("task/web", None, "works on sets, not tasks"),
        ("set", None, "which set?"),
    ],
)
def test_parse_ref_rejects(kind: str, name: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ref(kind, name, "set")
