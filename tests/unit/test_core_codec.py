"""The wire format (voiyd.bus.codec): msgpack of plain types; garbage is InvalidRequestError."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

from voiyd.api.specs import TaskDoc
from voiyd.bus import codec
from voiyd.errors import InvalidRequestError
from voiyd.events import models as ev

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({}, id="empty-map"),
        pytest.param({"a": 1, "b": [1, 2.5, None, True], "c": {"d": "é"}}, id="nested"),
        pytest.param({"big": 2**64 - 1, "small": -(2**63)}, id="int64-ends"),
        pytest.param({"bin": b"\x00\xff"}, id="bytes"),
    ],
)
def test_plain_map_survives_a_round_trip(value: dict[str, Any]) -> None:
    assert codec.decode_map(codec.encode(value)) == value


def test_model_is_encoded_as_its_json_dump() -> None:
    doc = TaskDoc.model_validate(
        {"meta": {"name": "web"}, "config": {"image": "nginx", "ports": ["8080:80"]}}
    )
    decoded = codec.decode_map(codec.encode(doc))
    assert decoded == doc.model_dump(mode="json")
    assert decoded["config"]["ports"][0] == {
        "host": 8080,
        "container": 80,
        "protocol": "tcp",
        "host_ip": "0.0.0.0",
    }
    assert TaskDoc.model_validate(decoded) == doc


def test_event_travels_with_its_time_as_iso_text_and_decodes_back() -> None:
    event = ev.TaskDeleted(id="e1", at=AT, actor="t", data=ev.TaskRef(name="web"))
    decoded = codec.decode_map(codec.encode(event))
    assert decoded["at"] == "2024-05-01T12:00:00Z"
    assert decoded["type"] == "task.deleted"
    assert ev.decode_event(decoded) == event


def test_other_msgpack_readers_see_plain_types() -> None:
    raw = msgpack.unpackb(codec.encode({"a": [1, "x"]}), raw=False)
    assert raw == {"a": [1, "x"]}


def test_empty_payload_decodes_as_an_empty_map() -> None:
    assert codec.decode(b"") == {}
    assert codec.decode_map(b"") == {}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xc1", id="reserved-byte"),
        pytest.param(b"\xc1\xff garbage", id="garbage"),
        pytest.param(b"\x82\xa1a", id="truncated-map"),
        pytest.param(b"\xa5ab", id="truncated-string"),
        pytest.param(msgpack.packb(1) + msgpack.packb(2), id="two-values"),
        pytest.param(msgpack.packb({1: "int-key"}), id="int-map-key"),
        pytest.param(b"\xa2\xff\xfe", id="invalid-utf8-string"),
        pytest.param(b"{}", id="json-text"),
    ],
)
def test_decode_turns_garbage_into_invalid_request(data: bytes) -> None:
    with pytest.raises(InvalidRequestError, match="not valid msgpack"):
        codec.decode(data)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param([1, 2], "list", id="list"),
        pytest.param("web", "str", id="string"),
        pytest.param(7, "int", id="int"),
        pytest.param(None, "NoneType", id="nil"),
        pytest.param(True, "bool", id="bool"),
        pytest.param(b"x", "bytes", id="bytes"),
    ],
)
def test_decode_map_refuses_a_non_map_naming_what_it_got(value: Any, kind: str) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    assert codec.decode(data) == value
    with pytest.raises(InvalidRequestError, match=f"must be a msgpack map, not {kind}"):
        codec.decode_map(data)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_nested(codec.MAX_DEPTH), id="maps-at-the-limit"),
        pytest.param(_nested_lists(codec.MAX_DEPTH), id="lists-at-the-limit"),
        pytest.param([_nested(codec.MAX_DEPTH - 1)] * 3, id="wide-at-the-limit"),
    ],
)
def test_decode_accepts_nesting_up_to_the_limit(value: Any) -> None:
    assert codec.decode(msgpack.packb(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_nested(codec.MAX_DEPTH + 1), id="maps"),
        pytest.param(_nested_lists(codec.MAX_DEPTH + 1), id="lists"),
        pytest.param({"ok": 1, "deep": [_nested(codec.MAX_DEPTH)]}, id="one-deep-branch"),
        pytest.param(_nested(1000), id="near-the-recursion-limit"),
    ],
)
def test_decode_refuses_nesting_beyond_the_limit(value: Any) -> None:
    with pytest.raises(InvalidRequestError, match="nests deeper"):
        codec.decode(msgpack.packb(value))
