"""An outside consumer that knows only nats-py and msgpack sees what docs/subjects.md promises.

Nothing from ``voiyd`` is imported here on purpose: the API is driven with plain requests and
the events are read with a core subscription and with a JetStream ordered consumer, the way
another team's integration would. If this test ever needs a voiyd import to pass, the public
bus contract has leaked into voiyd's own code.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

pytestmark = pytest.mark.nats

SUBJECTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "subjects.md"
ENVELOPE_KEYS = {"id", "type", "v", "at", "actor", "data"}
WAIT_S = 10.0
WEB = {
    "version": "task/v1",
    "meta": {"name": "web-1", "labels": {"app": "web"}},
    "config": {"image": "nginx:alpine", "ports": ["8080:80"]},
}


async def request(nc: Client, subject: str, body: dict[str, Any]) -> Msg:
    msg: Msg = await nc.request(subject, msgpack.packb(body), timeout=WAIT_S)
    return msg


async def create_web(nc: Client) -> dict[str, Any]:
    reply = await request(nc, "voiyd.api.v1.task.create", {"task": WEB, "actor": "plain-test"})
    assert not reply.headers, reply.headers
    body: dict[str, Any] = msgpack.unpackb(reply.data)
    return body


def check_task_created(msg: Msg) -> dict[str, Any]:
    """The checks an outside consumer relies on; returns the decoded envelope."""
    assert msg.subject == "voiyd.events.task.web-1"
    headers = msg.headers or {}
    assert headers["Voiyd-Event"] == "task.created"
    envelope: dict[str, Any] = msgpack.unpackb(msg.data)
    assert set(envelope) == ENVELOPE_KEYS
    assert headers["Nats-Msg-Id"] == envelope["id"]
    assert envelope["type"] == "task.created"
    assert envelope["v"] == 1
    assert envelope["actor"] == "plain-test"
    at = datetime.fromisoformat(envelope["at"])
    assert at.tzinfo is not None
    assert at.utcoffset() is not None
    data = envelope["data"]
    assert data["name"] == "web-1"
    assert data["labels"] == {"app": "web"}
    assert data["config"]["image"] == "nginx:alpine"
    assert data["config"]["ports"] == [
        {"host": 8080, "container": 80, "protocol": "tcp", "host_ip": "0.0.0.0"}
    ]
    return envelope


async def test_core_subscriber_receives_task_created_as_documented(
    api_server: object, nc: Client
) -> None:
    received: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_event(msg: Msg) -> None:
        await received.put(msg)

    sub = await nc.subscribe("voiyd.events.>", cb=on_event)
    await nc.flush()
    created = await create_web(nc)
    msg = await asyncio.wait_for(received.get(), WAIT_S)
    await sub.unsubscribe()

    envelope = check_task_created(msg)
    assert created["changed"] is True
    assert created["task"]["meta"]["name"] == envelope["data"]["name"]


async def test_ordered_consumer_reads_task_created_at_the_replied_revision(
    api_server: object, nc: Client
) -> None:
    created = await create_web(nc)
    js = nc.jetstream()
    sub = await js.subscribe("voiyd.events.>", stream="VOIYD_EVENTS", ordered_consumer=True)
    msg = await sub.next_msg(timeout=WAIT_S)
    await sub.unsubscribe()

    check_task_created(msg)
    # An aggregate's revision is the stream sequence of its last event.
    assert msg.metadata.sequence.stream == created["revision"]
    last = await js.get_last_msg("VOIYD_EVENTS", "voiyd.events.task.web-1", direct=True)
    assert last.seq == created["revision"]


async def test_later_events_carry_the_revision_they_were_decided_on(
    api_server: object, nc: Client
) -> None:
    created = await create_web(nc)
    stopped = await request(nc, "voiyd.api.v1.task.stop", {"name": "web-1"})
    revision = msgpack.unpackb(stopped.data)["revision"]
    last = await nc.jetstream().get_last_msg("VOIYD_EVENTS", "voiyd.events.task.web-1")

    assert last.seq == revision
    assert last.headers is not None
    assert last.headers["Voiyd-Event"] == "task.stop-requested"
    assert last.headers["Nats-Expected-Last-Subject-Sequence"] == str(created["revision"])
    assert msgpack.unpackb(last.data)["data"] == {"name": "web-1"}


async def test_an_invalid_request_gets_the_documented_error_and_appends_nothing(
    api_server: object, nc: Client
) -> None:
    bad = {"task": {"meta": {"name": "Web_1"}, "config": {"image": "nginx"}}, "colour": "red"}
    reply = await request(nc, "voiyd.api.v1.task.create", bad)
    info = await nc.jetstream().stream_info("VOIYD_EVENTS")

    headers = reply.headers or {}
    assert headers["Nats-Service-Error-Code"] == "400"
    assert headers["Nats-Service-Error"]
    error = msgpack.unpackb(reply.data)["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == "invalid"
    locs = {f["loc"] for f in error["fields"]}
    assert locs == {"task.meta.name", "colour"}
    assert all(set(f) == {"loc", "message"} for f in error["fields"])
    assert info.state.last_seq == 0


async def test_every_endpoint_the_service_announces_is_documented(
    api_server: object, nc: Client
) -> None:
    ping = json.loads((await nc.request("$SRV.PING.voiyd", b"", timeout=WAIT_S)).data)
    info = json.loads((await nc.request("$SRV.INFO.voiyd", b"", timeout=WAIT_S)).data)
    doc = SUBJECTS_DOC.read_text()

    assert ping["name"] == info["name"] == "voiyd"
    served = {e["subject"] for e in info["endpoints"]}
    assert served
    assert {s for s in served if f"`{s}`" not in doc} == set()
