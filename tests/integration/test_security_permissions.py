"""With a node's credentials, nothing outside that node's own subjects works, and nothing changes.

A real nats-server runs the config ``voiyd auth`` generated (TLS on), a real voiyd-server runs in
this process with the ``server`` role, and node ``n1`` tries, with its own credentials, what a
leaked credential would try: another node's heartbeat, report, assignments and control subjects,
the event log, stream and consumer management, the API's write verbs. Each attempt is refused
by nats-server (its log says "Violation"), shows up as one "permission denied" line in the
client's log (``voiyd.bus.connect``'s error callback), and leaves the streams, the bucket and
the projection exactly as they were.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from tests.conftest import RunningServer
from tests.secure_nats import SecureNats
from voiyd import clock
from voiyd.api.agent import Heartbeat, NodeJoin
from voiyd.bus import codec, subjects
from voiyd.bus.connect import connect
from voiyd.bus.kvwatch import KeyChange, KeyWatch
from voiyd.bus.rpc import call
from voiyd.errors import ForbiddenError
from voiyd.server.runner import Server, ServerSettings

pytestmark = pytest.mark.nats

WRITE_VERBS = ("create", "apply", "update", "patch", "delete", "start", "stop")
REFUSED = (nats.errors.TimeoutError, NoStreamResponseError, APIError)
"""How a refused JetStream request ends for the client: nobody ever answers it."""
SHORT_S = 1.0


@dataclass
class Env:
    nats: SecureNats
    server: RunningServer
    admin: Client
    n1: Client

    async def snapshot(self) -> dict[str, Any]:
        """Everything a refused request must leave alone."""
        js = self.admin.jetstream()
        streams = {}
        for name in (subjects.EVENTS_STREAM, subjects.LOGS_STREAM, "KV_voiyd-assignments"):
            info = await js.stream_info(name)
            streams[name] = (info.state.messages, info.state.last_seq, info.config.subjects)
        kv = await js.key_value(subjects.ASSIGNMENTS_BUCKET)
        keys = sorted(await kv.keys())
        values = {k: (await kv.get(k)).value for k in keys}
        nodes = await call(self.admin, subjects.api("node", "list"), {})
        tasks = await call(self.admin, subjects.api("task", "list"), {})
        return {
            "streams": streams,
            "stream_names": sorted(s.config.name or "" for s in await js.streams_info()),
            "kv": values,
            "nodes": sorted((n["name"], n["phase"]) for n in nodes["nodes"]),
            "tasks": sorted(t["meta"]["name"] for t in tasks["tasks"]),
        }


async def _start_server(secure: SecureNats, data_dir: Path) -> RunningServer:
    settings = ServerSettings(
        nats=secure.options("server"),
        data_dir=data_dir,
        not_ready_after_s=600.0,  # node n2 joins but sends no heartbeats: keep it ready
        lost_after_s=1200.0,
    )
    server = Server(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    ready = asyncio.create_task(server.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task.done():
            task.result()
        raise RuntimeError("voiyd-server did not become ready")
    return RunningServer(server, stop, task)


async def _seed(secure: SecureNats) -> None:
    """Node n2 has joined, and both nodes have an assignment key."""
    n2 = await connect(secure.options("node-n2", inbox="_INBOX.n2"), "seed-n2", reconnect=False)
    try:
        join = NodeJoin(node="n2", runtimes=["exec"])
        await call(n2, subjects.agent_report("n2"), join)
    finally:
        await n2.close()
    server = await connect(secure.options("server"), "seed-server", reconnect=False)
    try:
        kv = await server.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)
        await kv.put(subjects.assignment_key("n1", "web"), b"for-n1")
        await kv.put(subjects.assignment_key("n2", "db"), b"for-n2")
    finally:
        await server.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    secure = SecureNats(tmp_path / "nats")
    secure.prepare(nodes=("n1", "n2"))
    secure.start()
    try:
        server = await _start_server(secure, tmp_path / "server")
        try:
            await _seed(secure)
            admin = await connect(secure.options("admin"), "test-admin", reconnect=False)
            n1 = await connect(secure.options("node-n1", inbox="_INBOX.n1"), "test-n1")
            try:
                yield Env(secure, server, admin, n1)
            finally:
                await n1.close()
                await admin.close()
        finally:
            await server.stop()
    finally:
        secure.stop()


def denied_in_log(caplog: pytest.LogCaptureFixture, subject: str) -> bool:
    """The client's log has the one clear line for this refusal."""
    return any(
        "permission denied" in r.getMessage() and subject.lower() in r.getMessage().lower()
        for r in caplog.records
        if r.levelno >= logging.ERROR
    )


async def until_logged(caplog: pytest.LogCaptureFixture, subject: str) -> None:
    async with asyncio.timeout(5):
        while True:  # the refusal arrives on the connection, after the attempt
            if denied_in_log(caplog, subject):
                return
            await asyncio.sleep(0.02)


def violation(env: Env, subject: str) -> bool:
    return any(f'Subject "{subject}"' in line for line in env.nats.violations())


# ---- another node's subjects --------------------------------------------------------------------


async def test_node_cannot_publish_another_nodes_heartbeat(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str] = []

    async def on_beat(msg: Msg) -> None:
        heard.append(msg.subject)

    listener = await connect(env.nats.options("server"), "test-listener", reconnect=False)
    try:
        await listener.subscribe("voiyd.agent.*.heartbeat", cb=on_beat)
        await listener.flush()
        before = await env.snapshot()
        for node in ("n2", "n1"):
            beat = Heartbeat(node=node, at=clock.now())
            await env.n1.publish(subjects.agent_heartbeat(node), codec.encode(beat))
        await env.n1.flush()
        await until_logged(caplog, subjects.agent_heartbeat("n2"))
        await asyncio.sleep(0.3)
    finally:
        await listener.close()
    assert heard == [subjects.agent_heartbeat("n1")]
    assert violation(env, subjects.agent_heartbeat("n2"))
    assert await env.snapshot() == before


async def test_node_cannot_report_for_another_node(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    before = await env.snapshot()
    join = NodeJoin(node="n3", runtimes=["exec"])
    with pytest.raises(ForbiddenError, match="permission denied"):
        await call(env.n1, subjects.agent_report("n2"), join.model_copy(update={"node": "n2"}))
    # Its own report subject, but for another node: the server refuses that (fencing by subject).
    with pytest.raises(ForbiddenError, match="may not report for node"):
        await call(env.n1, subjects.agent_report("n1"), join)
    await until_logged(caplog, subjects.agent_report("n2"))
    assert violation(env, subjects.agent_report("n2"))
    assert await env.snapshot() == before


async def test_node_reads_its_own_assignment_keys_and_no_others(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    before = await env.snapshot()
    mine: list[KeyChange] = []
    theirs: list[KeyChange] = []
    stop = asyncio.Event()
    own = KeyWatch(env.n1, subjects.ASSIGNMENTS_BUCKET, "n1.*")
    other = KeyWatch(env.n1, subjects.ASSIGNMENTS_BUCKET, "n2.*")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(own.run(mine.append, stop))
        tg.create_task(other.run(theirs.append, stop))
        await until_logged(caplog, "$KV.voiyd-assignments.n2.*")
        async with asyncio.timeout(10):
            while True:  # the watch's first delivery
                if mine:
                    break
                await asyncio.sleep(0.05)
        stop.set()
    js = env.n1.jetstream(timeout=SHORT_S)
    kv = await js.key_value(subjects.ASSIGNMENTS_BUCKET)  # stream info of the bucket: allowed
    with pytest.raises(REFUSED):  # nats-py's own watch names no filter: refused, even for n1.*
        await kv.watch("n1.*")
    with pytest.raises(REFUSED):
        await kv.get(subjects.assignment_key("n2", "db"))
    with pytest.raises(REFUSED):
        await kv.get(subjects.assignment_key("n1", "web"))  # direct gets: not even its own
    assert [(c.key, c.value) for c in mine] == [("n1.web", b"for-n1")]
    assert theirs == []
    assert await env.snapshot() == before


async def test_node_cannot_listen_to_another_nodes_control_subjects(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    async def answer(msg: Msg) -> None:
        await msg.respond(msg.subject.encode())

    await env.n1.subscribe(subjects.agent_control("n1", "ping"), cb=answer)
    await env.n1.subscribe(subjects.agent_control("n2", "ping"), cb=answer)
    await env.n1.flush()
    await until_logged(caplog, subjects.agent_control("n2", "ping"))
    own = await env.admin.request(subjects.agent_control("n1", "ping"), b"", timeout=5)
    with pytest.raises(nats.errors.NoRespondersError):
        await env.admin.request(subjects.agent_control("n2", "ping"), b"", timeout=SHORT_S)
    assert own.data == subjects.agent_control("n1", "ping").encode()
    assert any("Subscription Violation" in line for line in env.nats.violations())


# ---- the event log, streams and consumers -------------------------------------------------------


async def test_node_cannot_append_to_the_event_log(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    before = await env.snapshot()
    js = env.n1.jetstream(timeout=SHORT_S)
    for subject in (subjects.event("node", "n1"), subjects.event("task", "web")):
        with pytest.raises(REFUSED):
            await js.publish(subject, msgpack.packb({"type": "node.joined"}))
        await until_logged(caplog, subject)
        assert violation(env, subject)
    with pytest.raises(REFUSED):  # nor the assignments bucket
        await js.publish(f"$KV.{subjects.ASSIGNMENTS_BUCKET}.n1.evil", b"evil")
    assert await env.snapshot() == before


async def test_node_cannot_create_or_delete_streams_or_consumers(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    before = await env.snapshot()
    js = env.n1.jetstream(timeout=SHORT_S)
    consumer = ConsumerConfig(name="evil", ack_policy=AckPolicy.NONE, deliver_subject="_INBOX.n1.x")
    attempts = {
        "$JS.API.STREAM.CREATE.EVIL": js.add_stream(StreamConfig(name="EVIL", subjects=["evil.>"])),
        "$JS.API.STREAM.UPDATE.VOIYD_EVENTS": js.update_stream(
            StreamConfig(name=subjects.EVENTS_STREAM, subjects=["voiyd.events.>", "evil.>"])
        ),
        "$JS.API.STREAM.DELETE.VOIYD_EVENTS": js.delete_stream(subjects.EVENTS_STREAM),
        "$JS.API.STREAM.PURGE.VOIYD_LOGS": js.purge_stream(subjects.LOGS_STREAM),
        "$JS.API.CONSUMER.CREATE.VOIYD_EVENTS.evil": js.add_consumer(
            subjects.EVENTS_STREAM, consumer
        ),
        "$JS.API.CONSUMER.DELETE.VOIYD_EVENTS.evil": js.delete_consumer(
            subjects.EVENTS_STREAM, "evil"
        ),
        "$JS.API.STREAM.INFO.VOIYD_EVENTS": js.stream_info(subjects.EVENTS_STREAM),
    }
    for subject, attempt in attempts.items():
        with pytest.raises(REFUSED):
            await attempt
        await until_logged(caplog, subject)
    assert await env.snapshot() == before
    events = await env.admin.jetstream().consumers_info(subjects.EVENTS_STREAM)
    assert all(c.name != "evil" for c in events)


async def test_a_consumer_of_its_own_keys_cannot_deliver_elsewhere(env: Env) -> None:
    """The filter is the node's, but the deliver subject is another node's heartbeat."""
    heard: list[str] = []

    async def on_msg(msg: Msg) -> None:
        heard.append(msg.subject)

    listener = await connect(env.nats.options("server"), "test-listener", reconnect=False)
    try:
        await listener.subscribe("voiyd.agent.>", cb=on_msg)
        await listener.flush()
        before = await env.snapshot()
        config = ConsumerConfig(
            name="sneaky",
            filter_subject="$KV.voiyd-assignments.n1.*",
            deliver_subject=subjects.agent_heartbeat("n2"),
            ack_policy=AckPolicy.NONE,
        )
        await env.n1.jsm().add_consumer("KV_voiyd-assignments", config=config, timeout=5)
        await asyncio.sleep(1.0)
    finally:
        await listener.close()
    assert heard == []
    assert await env.snapshot() == before


# ---- the API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", WRITE_VERBS)
async def test_node_cannot_call_the_apis_write_verbs(
    env: Env, caplog: pytest.LogCaptureFixture, verb: str
) -> None:
    before = await env.snapshot()
    subject = subjects.api("task", verb)
    body = {"task": {"meta": {"name": "evil"}, "config": {"runtime": "exec", "args": ["true"]}}}
    with pytest.raises(ForbiddenError, match="permission denied"):
        await call(env.n1, subject, {**body, "name": "evil"}, timeout=5)
    await until_logged(caplog, subject)
    assert violation(env, subject)
    assert await env.snapshot() == before
