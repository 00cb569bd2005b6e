"""The bus against a real nats-server: stream config, append dedupe, concurrency, retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, StorageType

from tests.natsserver import NatsServer
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.publish import append
from voiyd.bus.streams import ensure_streams
from voiyd.errors import ConflictError
from voiyd.events import models as ev

pytestmark = pytest.mark.nats


def _created(name: str, event_id: str = "") -> ev.TaskCreated:
    return ev.TaskCreated(
        id=event_id or f"id-{name}",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="test",
        data=ev.TaskSpecData.model_validate({"name": name, "config": {"image": "busybox"}}),
    )


def _stop(name: str, event_id: str) -> ev.TaskStopRequested:
    return ev.TaskStopRequested(
        id=event_id, at=datetime(2026, 1, 1, tzinfo=UTC), actor="test", data=ev.TaskRef(name=name)
    )


async def _count(nc: Client) -> int:
    info = await nc.jetstream().stream_info(subjects.EVENTS_STREAM)
    return int(info.state.messages)


async def test_ensure_streams_is_idempotent_and_protects_the_log(nc: Client) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    await ensure_streams(js)
    info = await js.stream_info(subjects.EVENTS_STREAM)
    assert info.config.deny_delete and info.config.deny_purge
    assert info.config.storage == StorageType.FILE
    assert info.config.discard == DiscardPolicy.NEW
    assert info.config.duplicate_window == 120
    await js.key_value(subjects.ASSIGNMENTS_BUCKET)
    with pytest.raises(Exception, match="purge"):
        await js.purge_stream(subjects.EVENTS_STREAM)


async def test_append_with_the_same_id_stores_one_event(js_ready: Client) -> None:
    js = js_ready.jetstream()
    first = await append(js, _created("web"), 0)
    again = await append(js, _created("web"), 0)
    assert again == first
    assert await _count(js_ready) == 1


async def test_append_with_a_stale_revision_is_a_conflict_with_the_actual_revision(
    js_ready: Client,
) -> None:
    js = js_ready.jetstream()
    seq = await append(js, _created("web"), 0)
    await append(js, _stop("web", "stop-1"), seq)
    with pytest.raises(ConflictError) as info:
        await append(js, _stop("web", "stop-2"), seq)
    assert info.value.actual_revision == seq + 1
    with pytest.raises(ConflictError):
        await append(js, _created("web", "again"), 0)
    assert await _count(js_ready) == 2


async def test_append_retries_until_the_server_is_back(nats_server: NatsServer) -> None:
    nc = await connect(NatsOptions(servers=(nats_server.url,)), "test-retry")
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        nats_server.stop()
        pending = asyncio.create_task(append(js, _created("web"), 0, deadline_s=30))
        await asyncio.sleep(1.0)  # the append is retrying against a dead server
        assert not pending.done()
        nats_server.start()
        seq = await asyncio.wait_for(pending, 30)
        assert seq == 1
        assert await _count(nc) == 1
    finally:
        await nc.close()
