"""Pydantic's errors as one InvalidRequestError naming each field (voiyd.api.validation)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, field_validator

from voiyd.api import requests as rq
from voiyd.api.specs import TaskConfig
from voiyd.api.validation import parse_model
from voiyd.errors import FieldError, InvalidRequestError


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int
    y: int = 0
    tags: list[str] = []

    @field_validator("y")
    @classmethod
    def _small(cls, value: int) -> int:
        if value > 10:
            raise ValueError("must be at most 10")
        return value


def refusal(model: type[BaseModel], data: Any, prefix: str = "") -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse_model(model, data, prefix)
    return caught.value


def test_parse_model_returns_the_model_when_valid() -> None:
    assert parse_model(Point, {"x": 1}) == Point(x=1)


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        pytest.param({}, [FieldError("x", "required field is missing")], id="missing"),
        pytest.param({"x": 1, "z": 2}, [FieldError("z", "unknown field")], id="unknown"),
        pytest.param(
            {"x": 1, "y": 11}, [FieldError("y", "must be at most 10")], id="value-error-prefix-gone"
        ),
        pytest.param(
            {"x": 1, "tags": ["a", 2]},
            [FieldError("tags.1", "Input should be a valid string")],
            id="list-index-in-loc",
        ),
        pytest.param(
            [1],
            [FieldError("(request)", "Input should be a valid dictionary or instance of Point")],
            id="not-a-map",
        ),
    ],
)
def test_parse_model_names_each_field(data: Any, fields: list[FieldError]) -> None:
    assert list(refusal(Point, data).fields) == fields


def test_parse_model_reports_every_field_and_summarises_the_first() -> None:
    err = refusal(Point, {"y": 11, "z": 0})
    assert [f.loc for f in err.fields] == ["x", "y", "z"]
    assert err.message == "x: required field is missing (and 2 more)"


def test_parse_model_message_is_the_only_problem_when_there_is_one() -> None:
    assert refusal(Point, {"x": "a"}).message.startswith("x: Input should be a valid integer")


@pytest.mark.parametrize(
    ("prefix", "data", "loc"),
    [
        pytest.param("config", {"image": "x", "bogus": 1}, "config.bogus", id="field"),
        pytest.param("config", {"runtime": "exec"}, "config", id="model-level"),
        pytest.param("", {"runtime": "exec"}, "(request)", id="model-level-no-prefix"),
    ],
)
def test_parse_model_prefixes_locations(prefix: str, data: Any, loc: str) -> None:
    assert [f.loc for f in refusal(TaskConfig, data, prefix).fields] == [loc]


def test_function_validator_tags_are_left_out_of_locations() -> None:
    err = refusal(TaskConfig, {"image": "x", "ports": ["0:80"]})
    assert [f.loc for f in err.fields] == ["ports.0.host"]
    assert not any("[" in f.loc for f in err.fields)


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        pytest.param(rq.GetByName, {"name": "a.b"}, "name", id="get-name"),
        pytest.param(
            rq.GetByName, {"name": "web", "min_revision": -1}, "min_revision", id="min-revision"
        ),
        pytest.param(rq.ListQuery, {"selector": "a in (b"}, "selector", id="list-selector"),
        pytest.param(rq.ListQuery, {"limit": 0}, "limit", id="list-limit-0"),
        pytest.param(rq.ListQuery, {"limit": rq.MAX_LIST + 1}, "limit", id="list-limit-max"),
        pytest.param(rq.ListEvents, {"kind": "Task"}, "kind", id="events-kind"),
        pytest.param(rq.ListEvents, {"since_seq": -1}, "since_seq", id="events-since"),
        pytest.param(
            rq.DeleteTask,
            {"name": "w", "expected_revision": -1},
            "expected_revision",
            id="expected-revision",
        ),
        pytest.param(rq.StopTask, {"name": "w", "actor": "x" * 129}, "actor", id="actor"),
        pytest.param(rq.PatchTask, {"name": "w", "labels": {"a": 1}}, "labels.a", id="patch"),
        pytest.param(rq.CreateTask, {}, "task", id="create-empty"),
        pytest.param(rq.Query, {"x": 1}, "x", id="query-unknown"),
    ],
)
def test_request_models_name_the_bad_field(
    model: type[BaseModel], data: dict[str, Any], loc: str
) -> None:
    assert loc in [f.loc for f in refusal(model, data).fields]


def test_list_query_stores_the_canonical_selector() -> None:
    assert parse_model(rq.ListQuery, {"selector": " b in (y,x) "}).selector == "b in (x,y)"
