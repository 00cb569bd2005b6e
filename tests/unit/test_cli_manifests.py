"""Manifests for ``apply -f``: parsing YAML/JSON documents and reporting every problem."""

from __future__ import annotations

from typing import Any

import pytest

from voiyd.api.specs import SetDoc, TaskDoc, VolumeDoc
from voiyd.cli.manifests import (
    live_spec,
    load_documents,
    ref,
    spec_diff,
    spec_of,
    validate_documents,
)
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
    (doc,) = validate_documents([view], "-")
    assert isinstance(doc, TaskDoc)
    assert doc.config.image == "nginx"


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
            "document 1 (?/web): version: required field is missing (use task/v1, set/v1, "
            "volume/v1)",
            id="no-version",
        ),
        pytest.param(
            {"version": "job/v1", "meta": {"name": "web"}, "config": {}},
            "document 1 (job/web): version: unsupported kind 'job/v1': this release supports "
            "task/v1, set/v1, volume/v1",
            id="unknown-kind",
        ),
        pytest.param(
            {"version": "set/v1", "meta": {"name": "web"}, "config": {"replicas": 2}},
            "document 1 (set/web): config.template: required field is missing",
            id="set-without-template",
        ),
        pytest.param(
            {"version": "volume/v1", "meta": {"name": "data"}, "config": {"type": "template"}},
            "document 1 (volume/data): config: a template volume needs files",
            id="template-volume-without-files",
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


DAY2 = """
version: volume/v1
meta: {name: web}
config: {type: host-local, node: n1}
---
version: set/v1
meta: {name: web, labels: {app: web}}
config:
  replicas: 3
  template: {image: nginx, mounts: ["web:/data"]}
  update: {max_parallel: 2}
---
version: task/v1
meta: {name: web}
config: {runtime: exec, args: [sleep, "60"]}
"""


def test_tasks_sets_and_volumes_share_a_file_and_may_share_a_name() -> None:
    docs = validate_documents(load_documents(DAY2, "f.yaml"), "f.yaml")
    assert [type(d) for d in docs] == [VolumeDoc, SetDoc, TaskDoc]
    assert [ref(d) for d in docs] == ["volume/web", "set/web", "task/web"]
    assert isinstance(docs[1], SetDoc)
    assert docs[1].config.update.max_parallel == 2


def test_every_problem_of_every_kind_is_reported_with_document_and_field() -> None:
    bad = """
version: volume/v1
meta: {name: data}
config: {type: host-local, node: n1, files: {a.txt: x}}
---
version: set/v1
meta: {name: web}
config: {replicas: -1, template: {image: nginx}, update: {order: sideways}}
---
version: task/v1
meta: {name: Bad_Name}
config: {image: nginx}
---
version: volume/v1
meta: {name: data}
config: {type: host-local, node: n1}
"""
    with pytest.raises(InvalidRequestError) as err:
        validate_documents(load_documents(bad, "f.yaml"), "f.yaml")
    problems = [(f.loc, f.message) for f in err.value.fields]
    locs = [loc for loc, _ in problems]
    assert locs == [
        "document 1 (volume/data): config",
        "document 2 (set/web): config.replicas",
        "document 2 (set/web): config.update.order",
        "document 3 (task/Bad_Name): meta.name",
        "document 4 (volume/data): meta.name",
    ]
    assert "files belong to template volumes" in problems[0][1]
    assert problems[4][1] == "volume/data is also defined in document 1"
    assert err.value.message == "f.yaml: 5 problems; nothing was applied"


def test_a_set_view_round_trips_without_its_status_and_history() -> None:
    view = {
        "version": "set/v1",
        "meta": {"name": "web"},
        "config": {"template": {"image": "nginx"}},
        "status": {"template_revision": 2},
        "history": [{"revision": 1}],
        "revision": 9,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
    }
    (doc,) = validate_documents([view], "-")
    assert ref(doc) == "set/web"
    assert live_spec("set", view) == spec_of(doc)


def test_spec_diff_is_empty_when_only_defaults_differ() -> None:
    (doc,) = validate_documents([WEB], "-")
    stored = {**WEB, "config": {"image": "nginx", "runtime": "docker", "restart": "always"}}
    assert spec_diff(live_spec("task", stored), spec_of(doc), ("a", "b")) == ""


def test_spec_diff_shows_the_changed_lines_under_both_names() -> None:
    (doc,) = validate_documents([{**WEB, "config": {"image": "nginx:1.27"}}], "-")
    text = spec_diff(live_spec("task", WEB), spec_of(doc), ("task/web (live)", "task/web (f)"))
    lines = text.splitlines()
    assert lines[:2] == ["--- task/web (live)", "+++ task/web (f)"]
    assert "-  image: nginx" in lines
    assert "+  image: nginx:1.27" in lines


def test_spec_diff_of_a_new_object_adds_every_line() -> None:
    (doc,) = validate_documents([WEB], "-")
    text = spec_diff(None, spec_of(doc), ("/dev/null", "task/web (f)"))
    body = text.splitlines()[3:]
    assert body and all(line.startswith("+") for line in body)
