"""CORE: the wire format: msgpack of plain types, readable by any msgpack library.

Models are encoded as ``model_dump(mode="json")`` so datetimes travel as ISO-8601 strings and
the same shapes appear in ``-o json``. Decoding never raises anything but ``InvalidRequestError``,
and refuses values nested deeper than ``MAX_DEPTH`` (recursive code downstream, pydantic's
serializer and merge patches among them, would otherwise hit Python's recursion limit).
"""

from __future__ import annotations

from typing import Any

import msgpack
from pydantic import BaseModel

from voiyd.errors import InvalidRequestError

MAX_DEPTH = 64
"""Deepest nesting of maps and lists a payload may have; voiyd's own shapes need fewer than 10."""


def encode(value: BaseModel | dict[str, Any]) -> bytes:
    plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    data: bytes = msgpack.packb(plain, use_bin_type=True)
    return data


def decode(data: bytes, *, trusted: bool = False) -> Any:
    """Decode one msgpack value; garbage bytes become ``InvalidRequestError``.

    ``trusted`` skips the nesting check, for payloads voiyd itself validated before writing
    them (events read back from the log); requests from the outside are never trusted.
    """
    if not data:
        return {}
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many unrelated types on garbage
        detail = str(exc) or type(exc).__name__
        raise InvalidRequestError(f"payload is not valid msgpack: {detail}") from None
    if not trusted:
        _check_depth(value)
    return value


_CONTAINERS = (dict, list)


def _check_depth(value: Any) -> None:
    """Walk without recursion, so that the check itself cannot overflow the stack."""
    level: list[Any] = [value]
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise InvalidRequestError(f"payload nests deeper than {MAX_DEPTH} levels")
        below: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
            elif isinstance(item, list):
                below.extend(item)
        level = [item for item in below if isinstance(item, _CONTAINERS)]


def decode_map(data: bytes, *, trusted: bool = False) -> dict[str, Any]:
    value = decode(data, trusted=trusted)
    if not isinstance(value, dict):
        raise InvalidRequestError(f"payload must be a msgpack map, not {type(value).__name__}")
    return value
