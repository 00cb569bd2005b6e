"""Node endpoints against a real nats-server and an in-process voiyd-server.

Nodes join through the agents' report subject (as an agent would); placements are appended as
the scheduler would. Each write is a no-op when the node is already so; refusals append nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer, start_server
from tests.natsserver import NatsServer
from voiyd import clock, ids
from voiyd.api.agent import NodeJoin
from voiyd.bus import subjects
from voiyd.bus.publish import append
from voiyd.bus.rpc import call
from voiyd.errors import ConflictError, InvalidRequestError, NotFoundError, VoiydError
from voiyd.events import models as ev

pytestmark = pytest.mark.nats


def api(verb: str) -> str:
    return subjects.api("node", verb)


async def event_count(nc: Client) -> int:
    return int((await nc.jetstream().stream_info(subjects.EVENTS_STREAM)).state.messages)


async def refused(nc: Client, subject: str, body: dict[str, Any], error: type[VoiydError]) -> Any:
    before = await event_count(nc)
    with pytest.raises(error) as caught:
        await call(nc, subject, body)
    assert await event_count(nc) == before
    return caught.value


@pytest.fixture
async def server(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The server with liveness slow enough that silent test nodes stay ready."""
    running = await start_server(
        nats_server.url, tmp_path / "server", not_ready_after_s=3600.0, lost_after_s=7200.0
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def n1(server: RunningServer, nc: Client) -> Client:
    join = NodeJoin(node="n1", runtimes=["exec"], labels={"voiyd.io/os": "linux"})
    await call(nc, subjects.agent_report("n1"), join)
    return nc


async def node_events(nc: Client) -> list[str]:
    got = await call(nc, subjects.api("event", "list"), {"kind": "node", "name": "n1"})
    return [e["event"]["type"] for e in got["events"]]


async def test_cordon_and_uncordon_once_each(n1: Client) -> None:
    cordoned = await call(n1, api("cordon"), {"name": "n1"})
    assert cordoned["node"]["schedulable"] is False
    assert (await call(n1, api("cordon"), {"name": "n1"}))["changed"] is False
    uncordoned = await call(n1, api("uncordon"), {"name": "n1"})
    assert uncordoned["node"]["schedulable"] is True
    assert (await call(n1, api("uncordon"), {"name": "n1"}))["changed"] is False
    assert await node_events(n1) == ["node.joined", "node.cordoned", "node.uncordoned"]


async def test_drain_sets_the_phase_and_deadline_and_survives_a_rejoin(n1: Client) -> None:
    drained = await call(n1, api("drain"), {"name": "n1", "deadline_s": 300})
    node = drained["node"]
    assert (node["phase"], node["schedulable"]) == ("draining", False)
    assert node["drain_deadline"] is not None
    rejoin = NodeJoin(node="n1", runtimes=["exec", "docker"])
    joined = await call(n1, subjects.agent_report("n1"), rejoin)
    got = await call(n1, api("get"), {"name": "n1", "min_revision": joined["revision"]})
    assert (got["node"]["phase"], got["node"]["drain_deadline"]) == (
        "draining",
        node["drain_deadline"],
    )
    no_deadline = await call(n1, api("drain"), {"name": "n1"})
    assert no_deadline["node"]["drain_deadline"] is None
    assert (await call(n1, api("drain"), {"name": "n1"}))["changed"] is False


async def test_label_sets_and_removes_and_is_a_no_op_when_unchanged(n1: Client) -> None:
    labelled = await call(n1, api("label"), {"name": "n1", "labels": {"disk": "ssd"}})
    assert labelled["node"]["labels"] == {"disk": "ssd", "voiyd.io/os": "linux"}
    assert (await call(n1, api("label"), {"name": "n1", "labels": {"disk": "ssd"}}))[
        "changed"
    ] is False
    removed = await call(n1, api("label"), {"name": "n1", "labels": {"disk": None}})
    assert removed["node"]["labels"] == {"voiyd.io/os": "linux"}
    listed = await call(
        n1, api("list"), {"selector": "disk=ssd", "min_revision": removed["revision"]}
    )
    assert listed["nodes"] == []
    err = await refused(
        n1, api("label"), {"name": "n1", "labels": {"bad key": "x"}}, InvalidRequestError
    )
    assert [f.loc for f in err.fields] == ["labels.bad key"]


async def test_dry_run_and_a_pinned_stale_revision_append_nothing(n1: Client) -> None:
    before = await event_count(n1)
    dry = await call(n1, api("cordon"), {"name": "n1", "dry_run": True})
    assert (dry["changed"], dry["node"]["schedulable"]) == (True, False)
    assert await event_count(n1) == before
    await refused(n1, api("cordon"), {"name": "n1", "expected_revision": 999}, ConflictError)


@pytest.mark.parametrize("verb", ["cordon", "uncordon", "drain", "delete"])
async def test_writes_to_an_unknown_node_are_not_found(n1: Client, verb: str) -> None:
    await refused(n1, api(verb), {"name": "n9"}, NotFoundError)


async def test_delete_of_a_ready_node_running_tasks_is_refused_unless_forced(n1: Client) -> None:
    made = await call(
        n1,
        subjects.api("task", "create"),
        {"task": {"meta": {"name": "web-1"}, "config": {"image": "x:1"}}},
    )
    placed = ev.TaskScheduled(
        id=ids.new_id(),
        at=clock.now(),
        actor="voiyd-scheduler",
        data=ev.PlacementData(name="web-1", node="n1", epoch=1),
    )
    await append(n1.jetstream(), placed, made["revision"])
    err = await refused(n1, api("delete"), {"name": "n1"}, ConflictError)
    assert "runs 1 task(s) (web-1): drain it or stop its agent first" in err.message
    forced = await call(n1, api("delete"), {"name": "n1", "force": True})
    assert (forced["changed"], forced["node"]) == (True, None)
    with pytest.raises(NotFoundError):
        await call(n1, api("get"), {"name": "n1", "min_revision": forced["revision"]})


async def test_a_deleted_node_that_joins_again_is_a_new_node(n1: Client) -> None:
    await call(n1, api("delete"), {"name": "n1"})
    joined = await call(n1, subjects.agent_report("n1"), NodeJoin(node="n1", runtimes=["exec"]))
    got = await call(n1, api("get"), {"name": "n1", "min_revision": joined["revision"]})
    assert (got["node"]["phase"], got["node"]["schedulable"]) == ("ready", True)
    assert await node_events(n1) == ["node.joined", "node.deleted", "node.joined"]
