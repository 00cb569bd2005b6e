"""The server's API against a real nats-server: writes append, queries read their writes."""

from __future__ import annotations

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from voiyd.bus.rpc import call
from voiyd.errors import AlreadyExistsError, ConflictError, NotFoundError

pytestmark = pytest.mark.nats

WEB = {"meta": {"name": "web", "labels": {"app": "web"}}, "config": {"image": "nginx:alpine"}}


async def test_create_then_get_reads_its_own_write(api_server: RunningServer, nc: Client) -> None:
    created = await call(nc, "voiyd.api.v1.task.create", {"task": WEB})
    assert created["changed"] is True
    got = await call(
        nc, "voiyd.api.v1.task.get", {"name": "web", "min_revision": created["revision"]}
    )
    assert got["task"]["status"]["phase"] == "pending"
    assert got["task"]["revision"] == created["revision"]


async def test_duplicate_create_is_already_exists(api_server: RunningServer, nc: Client) -> None:
    await call(nc, "voiyd.api.v1.task.create", {"task": WEB})
    with pytest.raises(AlreadyExistsError):
        await call(nc, "voiyd.api.v1.task.create", {"task": WEB})


async def test_update_with_stale_revision_is_conflict(
    api_server: RunningServer, nc: Client
) -> None:
    created = await call(nc, "voiyd.api.v1.task.create", {"task": WEB})
    patched = await call(nc, "voiyd.api.v1.task.patch", {"name": "web", "labels": {"tier": "a"}})
    assert patched["revision"] > created["revision"]
    with pytest.raises(ConflictError):
        await call(
            nc,
            "voiyd.api.v1.task.patch",
            {"name": "web", "labels": {"tier": "b"}, "expected_revision": created["revision"]},
        )


async def test_delete_unknown_task_is_not_found(api_server: RunningServer, nc: Client) -> None:
    with pytest.raises(NotFoundError):
        await call(nc, "voiyd.api.v1.task.delete", {"name": "ghost"})


async def test_recreate_after_delete(api_server: RunningServer, nc: Client) -> None:
    await call(nc, "voiyd.api.v1.task.create", {"task": WEB})
    await call(nc, "voiyd.api.v1.task.delete", {"name": "web"})
    again = await call(nc, "voiyd.api.v1.task.create", {"task": WEB})
    assert again["task"]["generation"] == 1
    listed = await call(nc, "voiyd.api.v1.task.list", {"min_revision": again["revision"]})
    assert [t["meta"]["name"] for t in listed["tasks"]] == ["web"]
