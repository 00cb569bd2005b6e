"""The day-2 commands' own parts that need no cluster: arguments, documents, edit checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from voiyd.api.requests import WriteReply
from voiyd.api.specs import SetDoc, TaskConfig, TaskDoc, VolumeConfig, VolumeDoc
from voiyd.api.views import VolumeView
from voiyd.cli import apply, delete, edit, sets, volumes
from voiyd.errors import ConflictError, FieldError, InvalidRequestError

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "rest", "replicas", "expected"),
    [
        pytest.param("set", ("web", "3"), None, ("web", 3), id="set-name-n"),
        pytest.param("set/web", ("0",), None, ("web", 0), id="slash-n"),
        pytest.param("set/web", (), 6, ("web", 6), id="replicas-flag"),
        pytest.param("sets", ("web",), 2, ("web", 2), id="name-and-flag"),
    ],
)
def test_scale_reads_the_set_and_the_count(
    kind: str, rest: tuple[str, ...], replicas: int | None, expected: tuple[str, int]
) -> None:
    assert sets._parse_scale(kind, rest, replicas) == expected


@pytest.mark.parametrize(
    ("kind", "rest", "replicas", "message"),
    [
        pytest.param("set/web", (), None, "how many replicas", id="no-count"),
        pytest.param("set/web", ("3",), 3, "once", id="count-twice"),
        pytest.param("set/web", ("three",), None, "not a replica count", id="not-a-number"),
        pytest.param("set/web", ("3", "4"), None, "unexpected arguments: 4", id="extra"),
        pytest.param("task/web", ("3",), None, "works on sets", id="not-a-set"),
    ],
)
def test_scale_rejects(
    kind: str, rest: tuple[str, ...], replicas: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sets._parse_scale(kind, rest, replicas)


def _opts(**changes: Any) -> dict[str, Any]:
    return {"type": None, "node": None, "files": (), "labels": (), **changes}


def test_a_volume_without_files_is_host_local(tmp_path: Path) -> None:
    doc = volumes.volume_document("data", _opts(node="n1", labels=("app=db",)))
    assert doc == {
        "version": "volume/v1",
        "meta": {"name": "data", "labels": {"app": "db"}},
        "config": {"type": "host-local", "node": "n1"},
    }
    VolumeDoc.model_validate(doc)


def test_from_file_makes_a_template_volume_from_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("server {}\n")
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>")
    (site / "css" / "a.css").write_text("h1 {}")
    specs = (
        f"{tmp_path / 'nginx.conf'}",
        f"{tmp_path / 'nginx.conf'}=conf/main.conf",
        f"{site}=www",
    )
    doc = volumes.volume_document("web", _opts(files=specs))
    assert doc["config"] == {
        "type": "template",
        "files": {
            "nginx.conf": "server {}\n",
            "conf/main.conf": "server {}\n",
            "www/css/a.css": "h1 {}",
            "www/index.html": "<h1>hi</h1>",
        },
    }
    VolumeDoc.model_validate(doc)


def test_from_file_of_a_binary_or_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not UTF-8 text"):
        volumes.read_files([str(tmp_path / "blob")])
    with pytest.raises(ValueError, match="No such file"):
        volumes.read_files([str(tmp_path / "missing")])


def _volume_view(config: VolumeConfig) -> VolumeView:
    return VolumeView.model_validate(
        {
            "meta": {"name": "data"},
            "config": config,
            "revision": 1,
            "created_at": NOW,
            "updated_at": NOW,
        }
    )


def test_deleting_a_host_local_volume_says_where_its_data_stays() -> None:
    note = delete.volume_note(_volume_view(VolumeConfig(node="n1")))
    assert note is not None
    assert "stays on node n1 in <agent data dir>/volumes/data" in note
    template = VolumeConfig(type="template", files={"a": "b"})
    assert delete.volume_note(_volume_view(template)) is None


WEB = TaskDoc.model_validate({"meta": {"name": "web"}, "config": {"image": "nginx"}})


def test_a_server_error_names_the_document_and_drops_the_request_prefix() -> None:
    err = InvalidRequestError(
        "task.config.mounts.0: volume 'data' does not exist",
        [FieldError("task.config.mounts.0", "volume 'data' does not exist")],
    )
    labelled = apply.labelled(3, WEB, err)
    assert isinstance(labelled, InvalidRequestError)
    assert (
        labelled.message == "document 3 (task/web): config.mounts.0: volume 'data' does not exist"
    )
    assert labelled.fields == (
        FieldError("document 3 (task/web): config.mounts.0", "volume 'data' does not exist"),
    )


def test_a_labelled_conflict_keeps_its_class_and_revision() -> None:
    labelled = apply.labelled(1, WEB, ConflictError("changed meanwhile", actual_revision=7))
    assert isinstance(labelled, ConflictError)
    assert labelled.actual_revision == 7


def _missing(*locs: str) -> InvalidRequestError:
    return InvalidRequestError("x", [FieldError(loc, "volume does not exist") for loc in locs])


def test_a_dry_run_excuses_only_mounts_of_volumes_new_in_the_file() -> None:
    task = TaskDoc.model_validate(
        {"meta": {"name": "db"}, "config": {"image": "pg", "mounts": ["a:/a", "b:/b"]}}
    )
    new = {"a", "b"}
    src = "task.config.mounts.{}.source"
    assert apply.volumes_from_file(task, _missing(src.format(0)), new) == ["a"]
    assert apply.volumes_from_file(task, _missing(src.format(0), src.format(1)), new) == ["a", "b"]
    assert apply.volumes_from_file(task, _missing(src.format(1)), {"a"}) == []
    assert apply.volumes_from_file(task, _missing(src.format(0), "task.config.image"), new) == []
    assert apply.volumes_from_file(task, _missing(src.format(7)), new) == []
    assert apply.volumes_from_file(task, _missing(), new) == []
    web = SetDoc.model_validate(
        {"meta": {"name": "web"}, "config": {"template": {"image": "x", "mounts": ["a:/a"]}}}
    )
    assert apply.volumes_from_file(web, _missing("set.config.template.mounts.0.source"), new) == [
        "a"
    ]


@pytest.mark.parametrize(
    ("changed", "same_times", "word"),
    [(False, True, "unchanged"), (True, True, "created"), (True, False, "configured")],
)
def test_apply_outcome(changed: bool, same_times: bool, word: str) -> None:
    later = NOW if same_times else NOW.replace(hour=13)
    task = {
        "meta": {"name": "web"},
        "config": {"image": "nginx"},
        "status": {},
        "revision": 4,
        "generation": 1,
        "created_at": NOW,
        "updated_at": later,
    }
    reply = WriteReply.model_validate({"revision": 4, "changed": changed, "task": task})
    assert apply.outcome(reply, "task") == word


EDITED = "version: task/v1\nmeta: {name: web}\nconfig: {image: 'nginx:1.27'}\n"


def test_an_edited_document_is_validated_and_must_keep_its_kind_and_name() -> None:
    doc = edit.edited_document(EDITED, "f.yaml", "task", "web")
    assert isinstance(doc.config, TaskConfig)
    assert doc.config.image == "nginx:1.27"
    with pytest.raises(InvalidRequestError, match="cannot be renamed to 'db'"):
        edit.edited_document(EDITED.replace("name: web", "name: db"), "f", "task", "web")
    with pytest.raises(InvalidRequestError, match="cannot become a task"):
        edit.edited_document(EDITED, "f.yaml", "set", "web")
    with pytest.raises(InvalidRequestError, match=r"config.cpu: unknown field"):
        edit.edited_document(EDITED.replace("image:", "cpu: 1, image:"), "f", "task", "web")
    with pytest.raises(InvalidRequestError, match="expected one document, found 2"):
        edit.edited_document(EDITED + "---\n" + EDITED, "f", "task", "web")


@pytest.mark.parametrize(
    ("text", "unchanged"),
    [
        pytest.param(EDITED, True, id="same-text"),
        pytest.param("# a comment\n" + EDITED.replace("{image", "{ image"), True, id="same-data"),
        pytest.param("", True, id="emptied"),
        pytest.param(EDITED.replace("1.27", "1.28"), False, id="changed"),
        pytest.param("meta: {", False, id="broken"),
    ],
)
def test_an_edit_is_cancelled_when_the_data_did_not_change(text: str, unchanged: bool) -> None:
    assert edit._unchanged(text, EDITED) is unchanged
