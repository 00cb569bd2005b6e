"""Set endpoints against a real nats-server and an in-process voiyd-server.

Writes append the Set's own events (member tasks are the scheduler's); a refused write appends
nothing; applying the same Set twice appends nothing the second time; ``undo`` restores the
previous template as a new revision; get/list count the members when read.
"""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from voiyd import clock, ids
from voiyd.api.specs import SET_LABEL, SET_REVISION_LABEL, TaskDoc
from voiyd.bus import subjects
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


def api(verb: str) -> str:
    return subjects.api("set", verb)


def web(image: str = "nginx:1", replicas: int = 3, **template: Any) -> dict[str, Any]:
    return {
        "version": "set/v1",
        "meta": {"name": "web", "labels": {"app": "web"}},
        "config": {
            "replicas": replicas,
            "template": {"image": image, **template},
            "update": {"max_parallel": 2},
        },
    }


async def event_count(nc: Client) -> int:
    return int((await nc.jetstream().stream_info(subjects.EVENTS_STREAM)).state.messages)


async def set_events(nc: Client) -> list[str]:
    got = await call(nc, subjects.api("event", "list"), {"kind": "set", "name": "web"})
    return [e["event"]["type"] for e in got["events"]]


async def refused(nc: Client, subject: str, body: dict[str, Any], error: type[VoiydError]) -> Any:
    """Call, expect ``error``, and check that nothing was appended."""
    before = await event_count(nc)
    with pytest.raises(error) as caught:
        await call(nc, subject, body)
    assert await event_count(nc) == before
    return caught.value


async def test_create_then_get_reads_the_set_with_its_first_revision(
    api_server: RunningServer, nc: Client
) -> None:
    created = await call(nc, api("create"), {"set": web()})
    assert created["changed"] is True
    assert created["set"]["status"]["template_revision"] == 1
    got = await call(nc, api("get"), {"name": "web", "min_revision": created["revision"]})
    view = got["set"]
    assert (view["config"]["replicas"], view["revision"]) == (3, created["revision"])
    assert [h["cause"] for h in view["history"]] == ["created"]
    assert view["status"]["tasks"] == 0
    listed = await call(nc, api("list"), {"selector": "app=web"})
    assert [s["meta"]["name"] for s in listed["sets"]] == ["web"]
    assert (await call(nc, api("list"), {"selector": "app=db"}))["sets"] == []


async def test_apply_twice_appends_nothing_the_second_time(
    api_server: RunningServer, nc: Client
) -> None:
    first = await call(nc, api("apply"), {"set": web()})
    assert first["changed"] is True
    before = await event_count(nc)
    again = await call(nc, api("apply"), {"set": web()})
    assert (again["changed"], again["revision"]) == (False, first["revision"])
    assert await event_count(nc) == before
    assert await set_events(nc) == ["set.created"]


async def test_dry_run_shows_the_result_and_appends_nothing(
    api_server: RunningServer, nc: Client
) -> None:
    before = await event_count(nc)
    dry = await call(nc, api("create"), {"set": web(), "dry_run": True})
    assert dry["changed"] is True
    assert dry["set"]["meta"]["name"] == "web"
    assert await event_count(nc) == before
    with pytest.raises(NotFoundError):
        await call(nc, api("get"), {"name": "web"})


async def test_scale_appends_set_scaled_once(api_server: RunningServer, nc: Client) -> None:
    await call(nc, api("create"), {"set": web()})
    scaled = await call(nc, api("scale"), {"name": "web", "replicas": 6})
    assert scaled["set"]["config"]["replicas"] == 6
    same = await call(nc, api("scale"), {"name": "web", "replicas": 6})
    assert same["changed"] is False
    assert await set_events(nc) == ["set.created", "set.scaled"]


async def test_undo_restores_the_previous_template_as_a_new_revision(
    api_server: RunningServer, nc: Client
) -> None:
    await call(nc, api("create"), {"set": web("nginx:1")})
    await call(nc, api("update"), {"set": web("nginx:2")})
    undone = await call(nc, api("undo"), {"name": "web"})
    view = undone["set"]
    assert view["config"]["template"]["image"] == "nginx:1"
    assert view["status"]["template_revision"] == 3
    got = await call(nc, api("get"), {"name": "web", "min_revision": undone["revision"]})
    assert [h["cause"] for h in got["set"]["history"]] == [
        "created",
        "updated",
        "rollback to revision 1",
    ]
    assert await set_events(nc) == ["set.created", "set.updated", "set.updated"]


async def test_undo_to_an_unknown_revision_is_invalid_and_appends_nothing(
    api_server: RunningServer, nc: Client
) -> None:
    await call(nc, api("create"), {"set": web()})
    err = await refused(nc, api("undo"), {"name": "web", "to_revision": 7}, InvalidRequestError)
    assert [f.loc for f in err.fields] == ["to_revision"]
    assert "known revisions: 1" in err.message


async def test_restart_makes_a_new_revision_with_the_same_template(
    api_server: RunningServer, nc: Client
) -> None:
    await call(nc, api("create"), {"set": web()})
    restarted = await call(nc, api("restart"), {"name": "web"})
    assert restarted["set"]["status"]["template_revision"] == 2
    assert restarted["set"]["history"][-1]["cause"] == "restart"


async def test_refusals_append_nothing(api_server: RunningServer, nc: Client) -> None:
    created = await call(nc, api("create"), {"set": web()})
    await refused(nc, api("create"), {"set": web()}, AlreadyExistsError)
    await refused(nc, api("scale"), {"name": "ghost", "replicas": 1}, NotFoundError)
    await refused(nc, api("delete"), {"name": "ghost"}, NotFoundError)
    await refused(
        nc,
        api("update"),
        {"set": web("nginx:9"), "expected_revision": created["revision"] - 1},
        ConflictError,
    )
    err = await refused(nc, api("apply"), {"set": web(mounts=["data:/data"])}, InvalidRequestError)
    assert [f.loc for f in err.fields] == ["set.config.template.mounts.0.source"]


async def test_delete_then_recreate(api_server: RunningServer, nc: Client) -> None:
    await call(nc, api("create"), {"set": web()})
    deleted = await call(nc, api("delete"), {"name": "web"})
    assert deleted["set"] is None
    again = await call(nc, api("create"), {"set": web()})
    got = await call(nc, api("get"), {"name": "web", "min_revision": again["revision"]})
    assert got["set"]["status"]["template_revision"] == 1


async def test_get_counts_the_members_the_scheduler_made(
    api_server: RunningServer, nc: Client
) -> None:
    created = await call(nc, api("create"), {"set": web(replicas=2)})
    js = nc.jetstream()
    last = created["revision"]
    for index, revision in ((1, 1), (2, 0)):
        labels = {SET_LABEL: "web", SET_REVISION_LABEL: str(revision)}
        doc = TaskDoc.model_validate(
            {"meta": {"name": f"web-{index}", "labels": labels}, "config": {"image": "nginx:1"}}
        )
        event = ev.TaskCreated(
            id=ids.new_id(), at=clock.now(), actor="t", data=ev.TaskSpecData.from_doc(doc)
        )
        last = await append(js, event, 0)
    got = await call(nc, api("get"), {"name": "web", "min_revision": last})
    status = got["set"]["status"]
    assert (status["tasks"], status["updated"], status["available"]) == (2, 1, 0)
