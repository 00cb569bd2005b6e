"""Volume decisions (voiyd.server.decide_volumes) and the mount check of tasks (decide.py).

A volume's type and node never change, its node must be known, and a volume in use is never
deleted; a task may not mount a volume that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from voiyd.api import requests as rq
from voiyd.api.specs import TaskDoc, VolumeDoc
from voiyd.api.views import VolumeView
from voiyd.errors import AlreadyExistsError, ConflictError, InvalidRequestError, NotFoundError
from voiyd.events import models as ev
from voiyd.events.fold import evolve_task, evolve_volume, fold_volume
from voiyd.server import decide
from voiyd.server.decide import Context, Decision
from voiyd.server.decide_volumes import decide_apply, decide_create, decide_delete

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = Context(now=datetime(2024, 5, 1, 13, 0, tzinfo=UTC), event_id="ev-new", actor="tester")


def vdoc(name: str = "data", labels: dict[str, str] | None = None, **config: Any) -> VolumeDoc:
    cfg = config or {"type": "host-local", "node": "n1"}
    return VolumeDoc.model_validate({"meta": {"name": name, "labels": labels or {}}, "config": cfg})


def view(d: VolumeDoc | None = None, seq: int = 3) -> VolumeView:
    data = ev.VolumeSpecData.from_doc(d or vdoc())
    out = evolve_volume(None, ev.VolumeCreated(id="c", at=T0, actor="t", data=data), seq)
    assert out is not None
    return out


NO_VOLUMES: dict[str, VolumeView] = {}
TEMPLATE: dict[str, Any] = {"type": "template", "files": {"nginx.conf": "events {}"}}


def test_create_makes_volume_created() -> None:
    decision = decide_create(rq.CreateVolume(volume=vdoc()), None, 0, CTX, node_known=True)
    assert isinstance(decision.event, ev.VolumeCreated)
    assert decision.expected_revision == 0
    made = fold_volume(None, decision.event, 1)
    assert made is not None and made.config.node == "n1"


def test_create_on_an_unknown_node_is_invalid_naming_config_node() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decide_create(rq.CreateVolume(volume=vdoc()), None, 0, CTX, node_known=False)
    assert [f.loc for f in caught.value.fields] == ["volume.config.node"]
    assert "node 'n1' is unknown" in caught.value.message


def test_a_template_volume_needs_no_node() -> None:
    cmd = rq.CreateVolume(volume=vdoc(**TEMPLATE))
    assert decide_create(cmd, None, 0, CTX, node_known=False).event is not None


def test_create_of_an_existing_volume_is_already_exists() -> None:
    with pytest.raises(AlreadyExistsError, match="volume 'data' already exists"):
        decide_create(rq.CreateVolume(volume=vdoc()), view(), 3, CTX, node_known=True)


def test_apply_the_same_changes_nothing_and_new_labels_update() -> None:
    current = view()
    assert decide_apply(rq.ApplyVolume(volume=vdoc()), current, 3, CTX, True) == Decision(None, 3)
    relabelled = rq.ApplyVolume(volume=vdoc(labels={"app": "db"}))
    decision = decide_apply(relabelled, current, 3, CTX, True)
    assert isinstance(decision.event, ev.VolumeUpdated)
    assert decision.event.data.labels == {"app": "db"}


def test_apply_new_files_of_a_template_updates_it() -> None:
    current = view(vdoc(**TEMPLATE))
    new = vdoc(type="template", files={"nginx.conf": "events { worker_connections 64; }"})
    decision = decide_apply(rq.ApplyVolume(volume=new), current, 3, CTX, True)
    assert isinstance(decision.event, ev.VolumeUpdated)
    updated = fold_volume(current, decision.event, 4)
    assert updated is not None and "worker_connections" in updated.config.files["nginx.conf"]


@pytest.mark.parametrize(
    ("config", "loc"),
    [
        pytest.param({"type": "host-local", "node": "n2"}, "volume.config.node", id="node"),
        pytest.param(TEMPLATE, "volume.config.type", id="type"),
    ],
)
def test_apply_may_not_change_type_or_node(config: dict[str, Any], loc: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decide_apply(rq.ApplyVolume(volume=vdoc(**config)), view(), 3, CTX, True)
    assert [f.loc for f in caught.value.fields] == [loc]
    assert "never changes" in caught.value.message


def test_apply_is_conflict_on_a_stale_expected_revision() -> None:
    with pytest.raises(ConflictError, match="volume 'data' is at revision 3, not 1"):
        decide_apply(rq.ApplyVolume(volume=vdoc(), expected_revision=1), view(), 3, CTX, True)


def test_delete_makes_volume_deleted_when_unused() -> None:
    decision = decide_delete(rq.DeleteVolume(name="data"), view(), 3, CTX, used_by=[])
    assert isinstance(decision.event, ev.VolumeDeleted)


def test_delete_of_a_volume_in_use_is_conflict_naming_its_users() -> None:
    with pytest.raises(ConflictError) as caught:
        decide_delete(rq.DeleteVolume(name="data"), view(), 3, CTX, ["task/db-1", "set/web"])
    assert caught.value.message == (
        "volume data is in use by task db-1, set web: delete or change them first"
    )


def test_delete_of_a_missing_volume_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="volume 'data' not found"):
        decide_delete(rq.DeleteVolume(name="data"), None, 0, CTX, [])


# ---- tasks that mount volumes -----------------------------------------------------------------


def task(*mounts: str) -> TaskDoc:
    return TaskDoc.model_validate(
        {"meta": {"name": "db"}, "config": {"image": "postgres:16", "mounts": list(mounts)}}
    )


def test_task_create_refuses_a_mount_of_a_missing_volume_naming_the_mount() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        cmd = rq.CreateTask(task=task("/srv:/srv", "data:/data"))
        decide.decide_create(cmd, None, 0, CTX, NO_VOLUMES.get)
    assert [f.loc for f in caught.value.fields] == ["task.config.mounts.1.source"]


def test_task_create_with_existing_volumes_is_decided() -> None:
    volumes = {"data": view()}
    cmd = rq.CreateTask(task=task("data:/data"))
    assert decide.decide_create(cmd, None, 0, CTX, volumes.get).event is not None


def test_a_task_may_not_mount_host_local_volumes_of_two_nodes() -> None:
    volumes = {"a": view(vdoc("a")), "b": view(vdoc("b", type="host-local", node="n2"))}
    with pytest.raises(InvalidRequestError) as caught:
        decide.decide_apply(rq.ApplyTask(task=task("a:/a", "b:/b")), None, 0, CTX, volumes.get)
    assert [f.loc for f in caught.value.fields] == ["task.config.mounts"]
    assert "a on n1, b on n2" in caught.value.message


def test_a_template_volume_with_a_node_pins_the_task_like_a_host_local_one() -> None:
    pinned_template = vdoc("conf", type="template", node="n2", files={"a.conf": "x"})
    volumes = {"data": view(), "conf": view(pinned_template)}
    with pytest.raises(InvalidRequestError) as caught:
        cmd = rq.CreateTask(task=task("data:/data", "conf:/etc/conf"))
        decide.decide_create(cmd, None, 0, CTX, volumes.get)
    assert "(data on n1, conf on n2)" in caught.value.message


def test_the_template_volumes_a_task_mounts_must_fit_its_assignment() -> None:
    big = {"big.txt": "x" * (200 * 1024)}
    volumes = {name: view(vdoc(name, type="template", files=big)) for name in ("t1", "t2", "t3")}
    two = rq.CreateTask(task=task("t1:/t1", "t2:/t2"))
    assert decide.decide_create(two, None, 0, CTX, volumes.get).event is not None
    three = rq.CreateTask(task=task("t1:/t1", "t2:/t2", "t3:/t3"))
    with pytest.raises(InvalidRequestError) as caught:
        decide.decide_create(three, None, 0, CTX, volumes.get)
    assert [f.loc for f in caught.value.fields] == ["task.config.mounts"]
    assert "more than 524288" in caught.value.message


def test_a_template_volume_holds_at_most_256_kib() -> None:
    with pytest.raises(ValueError, match="more than 262144"):
        vdoc("huge", type="template", files={"a": "x" * (256 * 1024)})


def test_a_patch_that_adds_a_mount_of_a_missing_volume_is_invalid() -> None:
    created = ev.TaskCreated(id="c", at=T0, actor="t", data=ev.TaskSpecData.from_doc(task()))
    current = evolve_task(None, created, 1)
    cmd = rq.PatchTask(name="db", config={"mounts": ["ghost:/g"]})
    with pytest.raises(InvalidRequestError) as caught:
        decide.decide_patch(cmd, current, 1, CTX, NO_VOLUMES.get)
    assert [f.loc for f in caught.value.fields] == ["config.mounts.0.source"]
