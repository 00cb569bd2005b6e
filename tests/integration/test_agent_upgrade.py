"""An agent's upgrade handler against a real nats-server and voiyd-server, and a real pip.

The agent runs in this process (with the fake runtime) and installs into a venv of its own
(``tests.wheels``), never into the test venv. A refused upgrade (checksum, missing object, pip
failure, a second request while one runs) is answered with the reason and leaves the agent
running with its environment as it was; an installed one is answered, then the agent stops so
that ``voiyd-node`` can re-execute it (tests/e2e/test_upgrade.py does that part). With the
secure config, a node's credentials download a wheel and cannot store or delete one.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.errors import APIError, NoStreamResponseError

from tests.conftest import RunningServer
from tests.natsserver import NatsServer
from tests.secure_nats import SecureNats
from tests.wheels import build_wheel, installed_version, make_agent_env
from voiyd import __version__
from voiyd.agent.runner import Agent, AgentSettings
from voiyd.agent.runtimes.fake import FakeRuntime
from voiyd.agent.upgrade import fetch_object
from voiyd.api.agent import UpgradeReply, UpgradeRequest
from voiyd.bus import codec, subjects
from voiyd.bus.connect import NatsOptions, connect

pytestmark = pytest.mark.nats

NEW_VERSION = f"{__version__}.post7"
REPLY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Wheels:
    current: Path
    new: Path
    broken: Path
    """Reads as a voiyd wheel, but pip refuses it (no ``.dist-info/WHEEL``)."""


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    out = tmp_path_factory.mktemp("wheels")
    return Wheels(
        current=build_wheel(out / "current", __version__),
        new=build_wheel(out / "new", NEW_VERSION),
        broken=build_wheel(out / "broken", f"{__version__}.post8", with_wheel_file=False),
    )


@pytest.fixture(scope="module")
def agent_python(wheels: Wheels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv holding the current wheel, shared by the tests that leave it as it is."""
    yield make_agent_env(tmp_path_factory.mktemp("agent-env") / "venv", wheels.current)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def put(nc: Client, wheel: Path) -> None:
    js = nc.jetstream()
    store = await js.create_object_store(subjects.WHEELS_BUCKET)
    await store.put(wheel.name, await asyncio.to_thread(wheel.read_bytes))


@dataclass
class RunningAgent:
    agent: Agent
    stop: asyncio.Event
    task: asyncio.Task[None]


StartAgent = Callable[[Path], Awaitable[RunningAgent]]


@pytest.fixture
async def agent_runner(
    api_server: RunningServer, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[StartAgent]:
    started: list[RunningAgent] = []

    async def start(python: Path) -> RunningAgent:
        settings = AgentSettings(
            name="n1",
            nats=NatsOptions(servers=(nats_server.url,), inbox_prefix="_INBOX.n1"),
            data_dir=tmp_path / "node",
            python=str(python),
            upgrade_timeout_s=REPLY_TIMEOUT_S,
        )
        agent = Agent(settings, {"exec": FakeRuntime()})
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        async with asyncio.timeout(30):
            await agent.joined.wait()
        running = RunningAgent(agent, stop, task)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop.set()
        await asyncio.wait_for(running.task, 15)


async def ask(nc: Client, req: UpgradeRequest | dict[str, object]) -> UpgradeReply:
    subject = subjects.agent_control("n1", subjects.UPGRADE_VERB)
    msg = await nc.request(subject, codec.encode(req), timeout=REPLY_TIMEOUT_S)
    return UpgradeReply.model_validate(codec.decode_map(msg.data))


def request(wheel: Path, *, sha: str | None = None, version: str = NEW_VERSION) -> UpgradeRequest:
    return UpgradeRequest(
        bucket=subjects.WHEELS_BUCKET,
        object=wheel.name,
        sha256=sha or sha256(wheel),
        version=version,
    )


async def test_a_wheel_with_another_checksum_is_refused_and_nothing_changes(
    agent_runner: StartAgent, nc: Client, wheels: Wheels, agent_python: Path
) -> None:
    running = await agent_runner(agent_python)
    await put(nc, wheels.new)
    before = installed_version(agent_python)
    reply = await ask(nc, request(wheels.new, sha="0" * 64))
    assert not reply.accepted
    assert "checksum mismatch" in reply.reason
    assert reply.from_version == __version__
    assert installed_version(agent_python) == before
    assert not running.task.done()
    assert not running.agent.restart_requested


async def test_a_missing_object_or_bucket_is_refused(
    agent_runner: StartAgent, nc: Client, wheels: Wheels, agent_python: Path
) -> None:
    running = await agent_runner(agent_python)
    no_bucket = await ask(nc, request(wheels.new))
    assert not no_bucket.accepted
    assert f"no object store {subjects.WHEELS_BUCKET}" in no_bucket.reason
    await put(nc, wheels.current)
    no_object = await ask(nc, request(wheels.new))
    assert not no_object.accepted
    assert "no such object" in no_object.reason
    outside = request(wheels.new).model_copy(update={"object": "../voiyd-9-py3-none-any.whl"})
    named = await ask(nc, outside)
    assert not named.accepted
    assert "is not a wheel file name" in named.reason
    bad = await ask(nc, {"bucket": subjects.WHEELS_BUCKET, "object": "x.whl", "sha256": "zz"})
    assert not bad.accepted
    assert "bad upgrade request" in bad.reason
    assert not running.task.done()


async def test_a_failed_pip_install_is_refused_with_pips_last_lines(
    agent_runner: StartAgent, nc: Client, wheels: Wheels, agent_python: Path
) -> None:
    running = await agent_runner(agent_python)
    await put(nc, wheels.broken)
    before = installed_version(agent_python)
    reply = await ask(nc, request(wheels.broken, version=f"{__version__}.post8"))
    assert not reply.accepted
    assert "pip install failed (exit code" in reply.reason
    assert "WHEEL" in reply.reason  # pip's own words about the missing file
    assert installed_version(agent_python) == before
    assert not running.task.done()
    assert not (running.agent.settings.data_dir / "upgrades" / wheels.broken.name).exists()


async def test_an_installed_wheel_is_accepted_and_the_agent_stops_to_restart(
    agent_runner: StartAgent, nc: Client, wheels: Wheels, tmp_path: Path
) -> None:
    python = await asyncio.to_thread(make_agent_env, tmp_path / "own-venv", wheels.current)
    running = await agent_runner(python)
    await put(nc, wheels.new)
    first = await ask(nc, request(wheels.new))
    assert first.accepted, first.reason
    assert (first.from_version, first.to_version) == (__version__, NEW_VERSION)
    async with asyncio.timeout(15):
        await running.task  # the agent stopped by itself, for voiyd-node to re-execute it
    assert running.agent.restart_requested
    version, where = installed_version(python)
    assert version == NEW_VERSION
    assert where.startswith(str(python.parent.parent))


async def test_a_second_request_while_one_runs_is_refused(
    agent_runner: StartAgent, nc: Client, wheels: Wheels, agent_python: Path
) -> None:
    running = await agent_runner(agent_python)
    await put(nc, wheels.broken)
    first = asyncio.create_task(ask(nc, request(wheels.broken, version=f"{__version__}.post8")))
    async with asyncio.timeout(30):
        while True:  # the first request has been taken on
            if running.agent.upgrading:
                break
            await asyncio.sleep(0.01)
    second = await ask(nc, request(wheels.broken, version=f"{__version__}.post8"))
    assert not second.accepted
    assert "another upgrade of this node is under way" in second.reason
    assert not (await first).accepted  # the broken wheel: refused, and the node is free again
    assert not running.agent.upgrading


# ---- permissions --------------------------------------------------------------------------------

REFUSED = (nats.errors.TimeoutError, NoStreamResponseError, APIError)


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[SecureNats]:
    server = SecureNats(tmp_path / "nats", tls=False)
    server.prepare(nodes=("n1",))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_node_downloads_a_wheel_and_cannot_store_or_delete_one(
    secure: SecureNats, wheels: Wheels, tmp_path: Path
) -> None:
    admin = await connect(secure.options("admin"), "test-admin", reconnect=False)
    node = await connect(secure.options("node-n1", inbox="_INBOX.n1"), "test-n1", reconnect=False)
    try:
        await put(admin, wheels.current)  # the admin creates the bucket and stores the wheel
        js = node.jetstream(timeout=2)
        got = tmp_path / "downloaded.whl"
        await fetch_object(js, subjects.WHEELS_BUCKET, wheels.current.name, got)
        assert got.read_bytes() == wheels.current.read_bytes()
        store = await js.object_store(subjects.WHEELS_BUCKET)
        with pytest.raises(REFUSED):
            await store.put("voiyd-9.9.9-py3-none-any.whl", b"not a wheel")
        with pytest.raises(REFUSED):
            await store.delete(wheels.current.name)
        assert any("$O.voiyd-wheels" in line for line in secure.violations())
        check = await admin.jetstream().object_store(subjects.WHEELS_BUCKET)
        assert [o.name for o in await check.list()] == [wheels.current.name]
        assert (await check.get(wheels.current.name)).data == wheels.current.read_bytes()
    finally:
        await node.close()
        await admin.close()
