"""The error tree (voiyd.errors): codes, statuses, and the wire round trip."""

from __future__ import annotations

from typing import Any

import pytest

from voiyd.errors import (
    ERRORS_BY_CODE,
    AlreadyExistsError,
    ConflictError,
    FieldError,
    ForbiddenError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
    VoiydError,
    error_from_wire,
)


@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        pytest.param(InvalidRequestError, "invalid", 400, id="invalid"),
        pytest.param(NotFoundError, "not_found", 404, id="not-found"),
        pytest.param(AlreadyExistsError, "already_exists", 409, id="already-exists"),
        pytest.param(ConflictError, "conflict", 409, id="conflict"),
        pytest.param(UnavailableError, "unavailable", 503, id="unavailable"),
        pytest.param(ForbiddenError, "forbidden", 403, id="forbidden"),
        pytest.param(InternalError, "internal", 500, id="internal"),
    ],
)
def test_each_error_class_has_its_wire_code_and_status(
    cls: type[VoiydError], code: str, status: int
) -> None:
    assert (cls.code, cls.status) == (code, status)
    assert ERRORS_BY_CODE[code] is cls
    assert issubclass(cls, VoiydError)


def test_errors_by_code_covers_every_class_once() -> None:
    assert sorted(ERRORS_BY_CODE) == sorted(
        [
            "invalid",
            "not_found",
            "already_exists",
            "conflict",
            "unavailable",
            "forbidden",
            "internal",
        ]
    )


@pytest.mark.parametrize("cls", list(ERRORS_BY_CODE.values()), ids=list(ERRORS_BY_CODE))
def test_error_survives_the_wire_with_its_class_message_and_fields(cls: type[VoiydError]) -> None:
    err = cls("task 'web': bad", [FieldError("ports.0", "out of range"), FieldError("x", "y")])
    back = error_from_wire(err.to_wire())
    assert type(back) is cls
    assert back.message == "task 'web': bad"
    assert back.fields == err.fields
    assert str(back) == "task 'web': bad"


def test_to_wire_is_plain_data() -> None:
    err = InvalidRequestError("name: bad", [FieldError("name", "bad")])
    assert err.to_wire() == {
        "code": "invalid",
        "message": "name: bad",
        "fields": [{"loc": "name", "message": "bad"}],
    }


def test_conflict_carries_the_actual_revision() -> None:
    err = ConflictError("stale", actual_revision=7)
    assert err.actual_revision == 7
    assert ConflictError("stale").actual_revision is None


@pytest.mark.parametrize(
    ("payload", "cls", "message", "fields"),
    [
        pytest.param({}, InternalError, "unknown error", (), id="empty"),
        pytest.param({"code": "teapot", "message": "m"}, InternalError, "m", (), id="unknown-code"),
        pytest.param(
            {"code": "invalid", "fields": "x"},
            InvalidRequestError,
            "unknown error",
            (),
            id="fields-not-a-list",
        ),
        pytest.param(
            {"code": "invalid", "message": 5, "fields": [{"loc": "a"}, "junk", {"message": 1}]},
            InvalidRequestError,
            "5",
            (FieldError("a", ""), FieldError("", "1")),
            id="odd-fields",
        ),
    ],
)
def test_error_from_wire_tolerates_odd_payloads(
    payload: dict[str, Any], cls: type[VoiydError], message: str, fields: tuple[FieldError, ...]
) -> None:
    err = error_from_wire(payload)
    assert (type(err), err.message, err.fields) == (cls, message, fields)
