"""Manifests for ``apply -f``: parsing YAML/JSON documents and reporting every problem."""

from __future__ import annotations

from typing import Any

import pytest

from voiyd.cli.manifests import load_documents, validate_documents
from voiyd.errors import InvalidRequestError

WEB = {"version": "task/v1", "meta": {"name": "web"}, "config": {"image": "nginx"}}
DB = {"version": "task/v1", "meta": {"name": "db"}, "config": {"image": "postgres"}}

MULTI = """
version: task/v1
meta: {name: web}
config: {image: nginx}
---
---
version: task/v1
meta: {name: db}
config: {image: postgres}
"""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(MULTI, id="yaml-documents"),
        pytest.param(
            '[{"version": "task/v1", "meta": {"name": "web"}, "config": {"image": '
            '"nginx"}}, {"version": "task/v1", "meta": {"name": "db"}, "config": '
            '{"image": "postgres"}}]',
            id="json-array",
        ),
        pytest.param(
            '{"items": ['
            + str(WEB).replace("'", '"')
            + ", "
            + str(DB).replace("'", '"')
            + '], "revision": 3}',
            id="get-o-json-list",
        ),
        pytest.param(
            "- {version: task/v1, meta: {name: web}, config: {image: nginx}}\n"
            "- {version: task/v1, meta: {name: db}, config: {image: postgres}}\n",
            id="yaml-list",
        ),
    ],
)
def test_load_documents_reads_every_shape(text: str) -> None:
    docs = validate_documents(load_documents(text, "f.yaml"), "f.yaml")
    assert [d.name for d in docs] == ["web", "db"]


def test_a_view_round_trips_without_its_status() -> None:
    view = {**WEB, "status": {"phase": "running"}, "revision": 4, "generation": 1}
    assert validate_documents([view], "-")[0].config.image == "nginx"


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(InvalidRequestError) as err:
        load_documents("version: task/v1\nmeta: {name: a\nconfig: x\n", "bad.yaml")
    assert err.value.message.startswith("bad.yaml: not valid YAML: line 3, column")
    assert "\n" not in err.value.message


def test_malformed_json_names_the_line() -> None:
    with pytest.raises(InvalidRequestError, match=r"not valid JSON: line 2, column"):
        load_documents('{"version": "task/v1",\n  "meta": {]}', "bad.json")


def test_empty_file_is_invalid() -> None:
    with pytest.raises(InvalidRequestError, match="no documents"):
        load_documents("---\n", "empty.yaml")


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        pytest.param(
            {"meta": {"name": "web"}, "config": {}},
            "document 1 (?/web): version: required field is missing (use task/v1)",
            id="no-version",
        ),
        pytest.param(
            {"version": "set/v1", "meta": {"name": "web"}, "config": {}},
            "document 1 (set/web): version: unsupported kind 'set/v1': this release supports "
            "task/v1",
            id="unknown-kind",
        ),
        pytest.param(
            {**WEB, "config": {"image": "nginx", "ports": ["nope"]}},
            "document 1 (task/web): config.ports.0: 'nope' is not a port mapping",
            id="invalid-field",
        ),
        pytest.param(["x"], "document 1: expected a mapping", id="not-a-mapping"),
    ],
)
def test_one_problem_is_one_line_naming_document_kind_and_field(doc: Any, problem: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        validate_documents([doc], "f.yaml")
    assert err.value.message.startswith(problem)
    assert "\n" not in err.value.message


def test_every_problem_of_every_document_is_reported() -> None:
    bad_web = {**WEB, "config": {"image": "nginx", "bogus": 1, "ports": ["x"]}}
    with pytest.raises(InvalidRequestError) as err:
        validate_documents([bad_web, DB, {"version": "v9"}, DB], "f.yaml")
    locs = [f.loc for f in err.value.fields]
    assert locs == [
        "document 1 (task/web): config.ports.0",
        "document 1 (task/web): config.bogus",
        "document 3: version",
        "document 4 (task/db): meta.name",
    ]
    assert err.value.message == "f.yaml: 4 problems; nothing was applied"
