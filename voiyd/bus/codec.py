"""CORE: the wire format: msgpack of plain types, readable by any msgpack library.

Models are encoded as ``model_dump(mode="json")`` so datetimes travel as ISO-8601 strings and
the same shapes appear in ``-o json``. Decoding never raises anything but ``InvalidRequestError``.
"""

from __future__ import annotations

from typing import Any

import msgpack
from pydantic import BaseModel

from voiyd.errors import InvalidRequestError


def encode(value: BaseModel | dict[str, Any]) -> bytes:
    plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    data: bytes = msgpack.packb(plain, use_bin_type=True)
    return data


def decode(data: bytes) -> Any:
    """Decode one msgpack value; garbage bytes become ``InvalidRequestError``."""
    if not data:
        return {}
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many unrelated types on garbage
        raise InvalidRequestError(f"payload is not valid msgpack: {exc}") from None


def decode_map(data: bytes) -> dict[str, Any]:
    value = decode(data)
    if not isinstance(value, dict):
        raise InvalidRequestError(f"payload must be a msgpack map, not {type(value).__name__}")
    return value
