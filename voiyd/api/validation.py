"""CORE: turn pydantic's validation errors into one ``InvalidRequestError`` naming each field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from voiyd.errors import FieldError, InvalidRequestError

M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not _is_validator_tag(p))
        loc = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = _MESSAGES.get(err["type"], err["msg"])
        msg = msg.removeprefix("Value error, ")
        out.append(FieldError(loc or "(request)", msg))
    return out


def _is_validator_tag(part: Any) -> bool:
    # pydantic puts function-validator names such as "function-after[...]" in some locations.
    return isinstance(part, str) and "[" in part and part.endswith("]")


def summarize(fields: list[FieldError]) -> str:
    first = fields[0]
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return f"{first.loc}: {first.message}{more}"


def parse_model(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` as ``model`` or raise ``InvalidRequestError`` naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = field_errors(exc, prefix)
        raise InvalidRequestError(summarize(fields), fields) from None
