"""deploy/nats/*.conf are working nats-server configs, not just examples.

Every file passes ``nats-server -t``; then the single server, the three-node cluster and a hub
with a leaf node really run (temporary copies with every port swapped for a free loopback port,
working directory in ``tmp_path`` so the relative store_dirs land there) and hold voiyd's
streams: R1 on the single server, R3 on the cluster, and through the leaf link on the hub.
Everything started here is stopped here, by PID.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import msgpack
import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import APIError

from tests.natsserver import nats_server_binary
from voiyd.bus import subjects
from voiyd.bus.streams import ensure_streams

pytestmark = pytest.mark.nats

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nats"
CONFIGS = sorted(DEPLOY.glob("*.conf"))
LEAF_PASSWORD = "dummy-leaf-password"
DUMMY_ENV = {
    "VOIYD_LEAF_PASSWORD": LEAF_PASSWORD,
    "VOIYD_HUB_URL": f"nats-leaf://voiyd-leaf:{LEAF_PASSWORD}@127.0.0.1:7422",
}
"""Every environment variable the configs reference, with a harmless value for ``-t``."""

READY_TIMEOUT_S = 30.0
_ADDR_RE = re.compile(r"\b(?:127\.0\.0\.1|0\.0\.0\.0):(\d{2,5})\b")
_VAR_RE = re.compile(r"(?<![\w$])\$([A-Za-z_][A-Za-z0-9_]*)")
_CLIENT_RE = re.compile(r"^listen:\s*\S+:(\d+)", re.MULTILINE)


@pytest.fixture
def binary() -> str:
    found = nats_server_binary()
    if found is None:
        if os.environ.get("VOIYD_REQUIRE_NATS", "") not in ("", "0"):
            pytest.fail("nats-server is required (VOIYD_REQUIRE_NATS=1) but was not found")
        pytest.skip("nats-server not installed")
    return found


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **DUMMY_ENV, **extra}


def _code(text: str) -> str:
    """The config without quoted strings (never expanded) and comments (``#`` to line end)."""
    lines = (re.sub(r'"[^"]*"', '""', line) for line in text.splitlines())
    return "\n".join(line.split("#", 1)[0] for line in lines)


def test_there_is_a_config_for_each_documented_topology() -> None:
    names = {p.name for p in CONFIGS}
    expected = {"single.conf", "cluster-n1.conf", "cluster-n2.conf", "cluster-n3.conf"}
    assert expected | {"hub.conf", "leaf.conf"} <= names


def test_configs_reference_only_documented_env_vars() -> None:
    referenced = {v for p in CONFIGS for v in _VAR_RE.findall(_code(p.read_text()))}
    assert referenced <= set(DUMMY_ENV), referenced - set(DUMMY_ENV)
    readme = (DEPLOY / "README.md").read_text()
    for var in referenced:
        assert var in readme, f"deploy/nats/README.md does not explain ${var}"


@pytest.mark.parametrize("conf", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_passes_nats_server_config_test(binary: str, conf: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [binary, "-t", "-c", str(conf)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- running them -------------------------------------------------------------------------------


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def localize(confs: list[Path], dest: Path, taken: set[int]) -> tuple[list[Path], dict[int, int]]:
    """Copies of ``confs`` in ``dest`` with every address on free loopback ports.

    One port map serves all of ``confs`` (so a cluster's routes still point at its peers);
    ``0.0.0.0`` becomes ``127.0.0.1`` because tests listen on loopback only.
    """
    mapping: dict[int, int] = {}

    def swap(m: re.Match[str]) -> str:
        old = int(m.group(1))
        if old not in mapping:
            mapping[old] = _free_port(taken)
        return f"127.0.0.1:{mapping[old]}"

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for conf in confs:
        copy = dest / conf.name
        copy.write_text(_ADDR_RE.sub(swap, conf.read_text()))
        out.append(copy)
    return out, mapping


def client_url(conf: Path) -> str:
    m = _CLIENT_RE.search(conf.read_text())
    assert m, f"{conf.name} has no client listen address"
    return f"nats://127.0.0.1:{m.group(1)}"


@contextmanager
def running(
    binary: str, confs: list[Path], cwd: Path, env: Mapping[str, str] | None = None
) -> Iterator[list[Path]]:
    """Start one nats-server per config (logs next to it); stop them all by PID on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for conf in confs:
            log = conf.with_suffix(".log")
            procs.append(
                subprocess.Popen(
                    [binary, "-c", str(conf), "-l", str(log)],
                    cwd=cwd,
                    env=dict(env) if env is not None else _env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            logs.append(log)
        yield logs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_until_ready(logs: list[Path]) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        for log in logs:
            while True:  # the log file is the only signal a separate process gives
                if log.exists() and "Server is ready" in log.read_text(errors="replace"):
                    break
                await asyncio.sleep(0.05)


@asynccontextmanager
async def connected(*urls: str) -> AsyncIterator[Client]:
    nc = await nats.connect(servers=list(urls), name="voiyd-deploy-test")
    try:
        yield nc
    finally:
        await nc.close()


async def wait_for_jetstream(nc: Client) -> None:
    """Until the JetStream API answers (a cluster first elects its meta leader)."""
    js = nc.jetstream(timeout=2)
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:
            try:
                await js.account_info()
                return
            except (nats.errors.Error, APIError):
                await asyncio.sleep(0.1)


async def test_single_server_runs_voiyd_streams_in_its_store_dir(
    binary: str, tmp_path: Path
) -> None:
    (conf,), _ = localize([DEPLOY / "single.conf"], tmp_path / "conf", set())
    with running(binary, [conf], tmp_path) as logs:
        await wait_until_ready(logs)
        async with connected(client_url(conf)) as nc:
            await wait_for_jetstream(nc)
            js = nc.jetstream()
            await ensure_streams(js)
            ack = await js.publish(
                subjects.event("task", "web-1"),
                msgpack.packb({"type": "deploy-test"}),
                headers={"Nats-Expected-Last-Subject-Sequence": "0"},
            )
            info = await js.stream_info(subjects.EVENTS_STREAM)
    assert ack.stream == subjects.EVENTS_STREAM
    assert info.config.storage == "file"
    assert (tmp_path / "nats-data" / "single" / "jetstream").is_dir()


async def test_three_node_cluster_holds_voiyd_streams_as_r3(binary: str, tmp_path: Path) -> None:
    names = ["cluster-n1.conf", "cluster-n2.conf", "cluster-n3.conf"]
    confs, _ = localize([DEPLOY / n for n in names], tmp_path / "conf", set())
    with running(binary, confs, tmp_path) as logs:
        await wait_until_ready(logs)
        async with connected(*(client_url(c) for c in confs)) as nc:
            await wait_for_jetstream(nc)
            js = nc.jetstream()
            await ensure_streams(js, replicas=3)
            ack = await js.publish(subjects.event("task", "web-1"), msgpack.packb({"n": 1}))
            info = await js.stream_info(subjects.EVENTS_STREAM)
    assert ack.seq == 1
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    assert info.cluster.name == "voiyd"
    peers = {info.cluster.leader} | {r.name for r in info.cluster.replicas or []}
    assert peers == {"voiyd-n1", "voiyd-n2", "voiyd-n3"}
    for n in (1, 2, 3):
        assert (tmp_path / "nats-data" / f"n{n}" / "jetstream").is_dir()


async def test_leaf_node_reaches_the_hubs_jetstream_and_is_reachable_from_it(
    binary: str, tmp_path: Path
) -> None:
    taken: set[int] = set()
    (hub,), hub_ports = localize([DEPLOY / "hub.conf"], tmp_path / "hub", taken)
    (leaf,), _ = localize([DEPLOY / "leaf.conf"], tmp_path / "leaf", taken)
    hub_url = f"nats-leaf://voiyd-leaf:{LEAF_PASSWORD}@127.0.0.1:{hub_ports[7422]}"
    with (
        running(binary, [hub], tmp_path) as hub_logs,
        running(binary, [leaf], tmp_path, _env(VOIYD_HUB_URL=hub_url)) as leaf_logs,
    ):
        await wait_until_ready(hub_logs + leaf_logs)
        async with connected(client_url(hub)) as at_hub, connected(client_url(leaf)) as at_site:
            # The control plane on the hub creates the streams and writes an assignment ...
            await wait_for_jetstream(at_hub)
            await ensure_streams(at_hub.jetstream())
            key = subjects.assignment_key("n1", "web-1")
            hub_kv = await at_hub.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)
            await hub_kv.put(key, b"desired")
            # ... and an agent at the site, with no JetStream there, reads it and appends.
            await wait_for_jetstream(at_site)
            site_js = at_site.jetstream()
            site_kv = await site_js.key_value(subjects.ASSIGNMENTS_BUCKET)
            entry = await site_kv.get(key)
            await site_kv.put(subjects.assignment_key("n1", "db-1"), b"from-site")
            ack = await site_js.publish(subjects.event("node", "n1"), msgpack.packb({"n": 1}))
            info = await at_hub.jetstream().stream_info(subjects.EVENTS_STREAM)
            from_site = await hub_kv.get(subjects.assignment_key("n1", "db-1"))

            # The control plane reaches the agent behind the leaf with a request.
            async def answer(msg: Msg) -> None:
                await msg.respond(b"pong")

            await at_site.subscribe(subjects.agent_control("n1", "ping"), cb=answer)
            await at_site.flush()
            reply = await _request_when_routed(at_hub, subjects.agent_control("n1", "ping"))
    assert entry.value == b"desired"
    assert from_site.value == b"from-site"
    assert ack.stream == subjects.EVENTS_STREAM
    assert info.state.messages == 1
    assert reply == b"pong"
    assert not (tmp_path / "nats-data" / "leaf").exists()


async def _request_when_routed(nc: Client, subject: str) -> bytes:
    """Request until the leaf's new interest has reached the hub (no responders until then)."""
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:
            try:
                msg = await nc.request(subject, b"ping", timeout=2)
                return bytes(msg.data)
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.05)
