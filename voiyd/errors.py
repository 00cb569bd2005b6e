"""The one error tree of voiyd, and the wire codes it maps to.

    VoiydError                       code        http-ish
    ├── InvalidRequestError          invalid     400
    ├── NotFoundError                not_found   404
    ├── AlreadyExistsError           already_exists 409
    ├── ConflictError                conflict    409
    ├── UnavailableError             unavailable 503
    ├── ForbiddenError               forbidden   403
    ├── InternalError                internal    500
    └── TaskFailedError              (client side: a waited-for task did not reach running)

Library errors (nats, sqlite3, aiodocker) are translated into these at the edge with
``raise ... from exc``; callers branch on the class, never on the message. This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a request: ``loc`` is a dotted path (``ports.0``)."""

    loc: str
    message: str

    def to_wire(self) -> dict[str, str]:
        return {"loc": self.loc, "message": self.message}


class VoiydError(Exception):
    """Base of every error voiyd raises on purpose."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str, fields: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.fields: tuple[FieldError, ...] = tuple(fields)

    def to_wire(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "fields": [f.to_wire() for f in self.fields],
        }

    def __str__(self) -> str:
        return self.message


class InvalidRequestError(VoiydError):
    code = "invalid"
    status = 400


class NotFoundError(VoiydError):
    code = "not_found"
    status = 404


class AlreadyExistsError(VoiydError):
    code = "already_exists"
    status = 409


class ConflictError(VoiydError):
    """A write lost an optimistic-concurrency race, or a stale expected revision was given.

    ``actual_revision`` is the aggregate's revision at the time of the conflict when known.
    """

    code = "conflict"
    status = 409

    def __init__(
        self, message: str, fields: Sequence[FieldError] = (), actual_revision: int | None = None
    ) -> None:
        super().__init__(message, fields)
        self.actual_revision = actual_revision


class UnavailableError(VoiydError):
    code = "unavailable"
    status = 503


class ForbiddenError(VoiydError):
    code = "forbidden"
    status = 403


class InternalError(VoiydError):
    code = "internal"
    status = 500


class TaskFailedError(VoiydError):
    """``--wait`` saw the task fail, exit or stop instead of running (never sent on the wire)."""

    code = "task_failed"
    status = 500


ERRORS_BY_CODE: Mapping[str, type[VoiydError]] = {
    cls.code: cls
    for cls in (
        InvalidRequestError,
        NotFoundError,
        AlreadyExistsError,
        ConflictError,
        UnavailableError,
        ForbiddenError,
        InternalError,
    )
}


def error_from_wire(payload: Mapping[str, object]) -> VoiydError:
    """Rebuild the error a peer sent as ``{code, message, fields}``."""
    code = str(payload.get("code", "internal"))
    message = str(payload.get("message", "unknown error"))
    raw_fields = payload.get("fields") or []
    fields: list[FieldError] = []
    if isinstance(raw_fields, list):
        for item in raw_fields:
            if isinstance(item, Mapping):
                fields.append(FieldError(str(item.get("loc", "")), str(item.get("message", ""))))
    cls = ERRORS_BY_CODE.get(code, InternalError)
    return cls(message, fields)
