"""Volume endpoints against a real nats-server and an in-process voiyd-server.

A host-local volume needs a known node; tasks and Sets may only mount volumes that exist; a
volume in use cannot be deleted; get/list show who uses it; the assignment of a task that mounts
a template volume carries the volume's files.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from tests.conftest import RunningServer
from voiyd import clock, ids
from voiyd.api.agent import Assignment, NodeJoin
from voiyd.bus import codec, subjects
from voiyd.bus.publish import append
from voiyd.bus.rpc import call
from voiyd.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    VoiydError,
)
from voiyd.events import models as ev

pytestmark = pytest.mark.nats


def api(kind: str, verb: str) -> str:
    return subjects.api(kind, verb)


def volume(name: str = "data", **config: Any) -> dict[str, Any]:
    return {
        "version": "volume/v1",
        "meta": {"name": name},
        "config": config or {"type": "host-local", "node": "n1"},
    }


def task(name: str, *mounts: str) -> dict[str, Any]:
    return {"meta": {"name": name}, "config": {"image": "pg:16", "mounts": list(mounts)}}


def web_set(*mounts: str) -> dict[str, Any]:
    return {
        "meta": {"name": "web"},
        "config": {"template": {"image": "x:1", "mounts": list(mounts)}},
    }


TEMPLATE: dict[str, Any] = {"type": "template", "files": {"app.conf": "port = 80\n"}}


async def event_count(nc: Client) -> int:
    return int((await nc.jetstream().stream_info(subjects.EVENTS_STREAM)).state.messages)


async def refused(nc: Client, subject: str, body: dict[str, Any], error: type[VoiydError]) -> Any:
    before = await event_count(nc)
    with pytest.raises(error) as caught:
        await call(nc, subject, body)
    assert await event_count(nc) == before
    return caught.value


@pytest.fixture
async def with_node(api_server: RunningServer, nc: Client) -> Client:
    """The API with node ``n1`` joined."""
    await call(nc, subjects.agent_report("n1"), NodeJoin(node="n1", runtimes=["exec"]))
    return nc


async def test_create_get_list_and_delete_a_host_local_volume(with_node: Client) -> None:
    nc = with_node
    created = await call(nc, api("volume", "create"), {"volume": volume()})
    assert created["volume"]["config"] == {"type": "host-local", "node": "n1", "files": {}}
    got = await call(
        nc, api("volume", "get"), {"name": "data", "min_revision": created["revision"]}
    )
    assert got["volume"]["status"]["used_by"] == []
    listed = await call(nc, api("volume", "list"), {})
    assert [v["meta"]["name"] for v in listed["volumes"]] == ["data"]
    deleted = await call(nc, api("volume", "delete"), {"name": "data"})
    assert deleted["volume"] is None
    with pytest.raises(NotFoundError):
        await call(nc, api("volume", "get"), {"name": "data", "min_revision": deleted["revision"]})


async def test_apply_twice_appends_nothing_and_type_and_node_never_change(
    with_node: Client,
) -> None:
    nc = with_node
    await call(nc, api("volume", "apply"), {"volume": volume()})
    again = await call(nc, api("volume", "apply"), {"volume": volume()})
    assert again["changed"] is False
    moved = volume(type="host-local", node="n2")
    err = await refused(nc, api("volume", "apply"), {"volume": moved}, InvalidRequestError)
    assert [f.loc for f in err.fields] == ["volume.config.node"]
    err = await refused(
        nc, api("volume", "apply"), {"volume": volume(**TEMPLATE)}, InvalidRequestError
    )
    assert [f.loc for f in err.fields] == ["volume.config.type"]


async def test_a_volume_on_an_unknown_node_is_refused(with_node: Client) -> None:
    body = {"volume": volume(type="host-local", node="n9")}
    err = await refused(with_node, api("volume", "create"), body, InvalidRequestError)
    assert [f.loc for f in err.fields] == ["volume.config.node"]
    assert "'n9' is unknown" in err.message
    await refused(
        with_node, api("volume", "create"), {**body, "dry_run": True}, InvalidRequestError
    )


async def test_duplicate_create_and_unknown_delete(with_node: Client) -> None:
    await call(with_node, api("volume", "create"), {"volume": volume()})
    await refused(with_node, api("volume", "create"), {"volume": volume()}, AlreadyExistsError)
    await refused(with_node, api("volume", "delete"), {"name": "ghost"}, NotFoundError)


async def test_mounting_a_volume_that_does_not_exist_is_refused(with_node: Client) -> None:
    nc = with_node
    err = await refused(
        nc, api("task", "create"), {"task": task("db", "/srv:/srv", "data:/d")}, InvalidRequestError
    )
    assert [f.loc for f in err.fields] == ["task.config.mounts.1.source"]
    assert "volume 'data' does not exist" in err.message
    await refused(nc, api("set", "create"), {"set": web_set("data:/d")}, InvalidRequestError)
    await call(nc, api("volume", "create"), {"volume": volume()})
    assert (await call(nc, api("task", "create"), {"task": task("db", "data:/d")}))["changed"]


async def test_deleting_a_volume_in_use_is_refused_naming_its_users(with_node: Client) -> None:
    nc = with_node
    await call(nc, api("volume", "create"), {"volume": volume()})
    await call(nc, api("task", "create"), {"task": task("db-1", "data:/d")})
    made = await call(nc, api("set", "create"), {"set": web_set("data:/d")})
    got = await call(nc, api("volume", "get"), {"name": "data", "min_revision": made["revision"]})
    assert got["volume"]["status"]["used_by"] == ["task/db-1", "set/web"]
    err = await refused(nc, api("volume", "delete"), {"name": "data"}, ConflictError)
    assert err.message == (
        "volume data is in use by task db-1, set web: delete or change them first"
    )
    await call(nc, api("task", "delete"), {"name": "db-1"})
    await call(nc, api("set", "delete"), {"name": "web"})
    assert (await call(nc, api("volume", "delete"), {"name": "data"}))["changed"] is True


async def _assignment(nc: Client, key: str, revision: int) -> Assignment:
    """The assignment under ``key`` once it was written for a task revision >= ``revision``."""
    kv = await nc.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)
    async with asyncio.timeout(10):
        while True:  # the server writes the key after its projection applied the batch
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                entry = None
            if entry is not None and entry.value is not None:
                got = Assignment.model_validate(codec.decode_map(entry.value))
                if got.revision >= revision:
                    return got
            await asyncio.sleep(0.05)


async def test_an_assignment_carries_the_template_volumes_its_task_mounts(
    with_node: Client,
) -> None:
    nc = with_node
    await call(nc, api("volume", "create"), {"volume": volume("conf", **TEMPLATE)})
    await call(nc, api("volume", "create"), {"volume": volume("data")})
    made = await call(
        nc, api("task", "create"), {"task": task("db", "conf:/etc/app:ro", "data:/d")}
    )
    placed = ev.TaskScheduled(
        id=ids.new_id(),
        at=clock.now(),
        actor="voiyd-scheduler",
        data=ev.PlacementData(name="db", node="n1", epoch=1),
    )
    seq = await append(nc.jetstream(), placed, made["revision"])
    key = subjects.assignment_key("n1", "db")
    assignment = await _assignment(nc, key, seq)
    assert list(assignment.volumes) == ["conf"]
    assert assignment.volumes["conf"].files == {"app.conf": "port = 80\n"}

    changed = volume("conf", type="template", files={"app.conf": "port = 81\n"})
    await call(nc, api("volume", "apply"), {"volume": changed})
    kv = await nc.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)
    async with asyncio.timeout(10):
        while True:  # the volume's new files reach the assignment of the task that mounts it
            entry = await kv.get(key)
            assert entry.value is not None
            files = Assignment.model_validate(codec.decode_map(entry.value)).volumes["conf"].files
            if files == {"app.conf": "port = 81\n"}:
                break
            await asyncio.sleep(0.05)
