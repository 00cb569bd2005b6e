"""deploy/nats/secure/*.conf work with the material `voiyd auth` and `voiyd certs` make.

Each config is copied into a temporary stand-in for ``/etc/voiyd/nats`` (that path rewritten,
every port swapped for a free loopback one), next to a generated ``auth/`` and ``certs/``.
Every file passes ``nats-server -t``; the single server, the three-node cluster (routes by
certificate) and a hub with a leaf node then run, and voiyd's users get exactly their rights
over TLS. Everything started here is stopped here, by PID.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import msgpack
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import APIError, NoStreamResponseError

from tests.natsserver import nats_server_binary
from voiyd.auth.pki import CertsDir
from voiyd.auth.store import AuthDir
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.kvwatch import KeyChange, KeyWatch
from voiyd.bus.streams import ensure_streams

pytestmark = pytest.mark.nats

SECURE = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "secure"
CONFIGS = sorted(SECURE.glob("*.conf"))
ETC = "/etc/voiyd/nats"
ENV_VARS = {"VOIYD_HUB_URL", "VOIYD_LEAF_SEED"}
READY_TIMEOUT_S = 30.0
_ADDR_RE = re.compile(r"\b(127\.0\.0\.1|0\.0\.0\.0|localhost):(\d{2,5})\b")
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


def material(etc: Path, nodes: tuple[str, ...] = ("n1", "n2")) -> tuple[AuthDir, CertsDir]:
    auth, certs = AuthDir(etc / "auth"), CertsDir(etc / "certs")
    auth.init()
    for node in nodes:
        auth.add_node(node)
    certs.init([])
    return auth, certs


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def localize(confs: list[Path], etc: Path, ports: dict[int, int], taken: set[int]) -> list[Path]:
    """Copies of ``confs`` in ``etc`` reading their material there, on free loopback ports.

    ``ports`` maps the files' ports to free ones and is shared by every copy made with it, so
    a cluster's routes (and a leaf's hub) still point at the right server.
    """

    def swap(m: re.Match[str]) -> str:
        old = int(m.group(2))
        if old not in ports:
            ports[old] = _free_port(taken)
        host = "localhost" if m.group(1) == "localhost" else "127.0.0.1"
        return f"{host}:{ports[old]}"

    out = []
    for conf in confs:
        copy = etc / conf.name
        copy.write_text(_ADDR_RE.sub(swap, conf.read_text().replace(ETC, str(etc))))
        out.append(copy)
    return out


def client_url(conf: Path) -> str:
    m = _CLIENT_RE.search(conf.read_text())
    assert m, f"{conf.name} has no client listen address"
    return f"tls://127.0.0.1:{m.group(1)}"


def leaf_env(auth: AuthDir, node: str, leafnode_port: int) -> dict[str, str]:
    creds = auth.creds_path(f"node-{node}").read_text()
    seed = next(line for line in creds.splitlines() if line.startswith("SU"))
    return {
        **os.environ,
        "VOIYD_HUB_URL": f"nats-leaf://127.0.0.1:{leafnode_port}",
        "VOIYD_LEAF_SEED": seed,
    }


@contextmanager
def running(
    binary: str, confs: list[Path], cwd: Path, env: Mapping[str, str] | None = None
) -> Iterator[list[Path]]:
    """One nats-server per config (log next to it); all stopped by PID on the way out."""
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for conf in confs:
            log = conf.with_suffix(".log")
            procs.append(
                subprocess.Popen(
                    [binary, "-c", str(conf), "-l", str(log)],
                    cwd=cwd,
                    env=dict(env) if env is not None else None,
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


def log_count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text) if log.exists() else 0


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:  # a log file is the only signal another process gives
            if check():
                return
            await asyncio.sleep(0.05)


async def wait_until_ready(logs: list[Path]) -> None:
    await until(lambda: all(log_count(log, "Server is ready") for log in logs))


def options(auth: AuthDir, certs: CertsDir, user: str, *urls: str) -> NatsOptions:
    inbox = f"_INBOX.{user.removeprefix('node-')}" if user.startswith("node-") else None
    return NatsOptions(
        servers=urls,
        creds_file=auth.creds_path(user),
        tls_ca=certs.ca.cert,
        inbox_prefix=inbox,
    )


async def js_ready(nc: Client, replicas: int = 1) -> None:
    """Until JetStream answers (a cluster first elects a leader), then voiyd's streams."""
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:
            try:
                await ensure_streams(nc.jetstream(timeout=2), replicas=replicas)
                return
            except (nats.errors.Error, APIError):
                await asyncio.sleep(0.2)


# ---- the files ----------------------------------------------------------------------------------


def test_there_is_a_secure_config_for_each_topology() -> None:
    names = {p.name for p in CONFIGS}
    assert names == {f"cluster-n{i}.conf" for i in (1, 2, 3)} | {
        "single.conf",
        "hub.conf",
        "leaf.conf",
    }


def test_secure_configs_reference_only_documented_env_vars() -> None:
    text = "\n".join(line.split("#", 1)[0] for p in CONFIGS for line in p.read_text().splitlines())
    assert set(_VAR_RE.findall(re.sub(r'"[^"]*"', '""', text))) == ENV_VARS
    readme = (SECURE / "README.md").read_text()
    for var in ENV_VARS:
        assert var in readme


@pytest.mark.parametrize("conf", CONFIGS, ids=[p.name for p in CONFIGS])
def test_secure_config_passes_nats_server_config_test(
    binary: str, conf: Path, tmp_path: Path
) -> None:
    auth, _ = material(tmp_path)
    (copy,) = localize([conf], tmp_path, {}, set())
    result = subprocess.run(
        [binary, "-t", "-c", str(copy)],
        cwd=tmp_path,
        env=leaf_env(auth, "n1", 7422),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- running them -------------------------------------------------------------------------------


async def test_secure_single_server_gives_each_user_its_rights_over_tls(
    binary: str, tmp_path: Path
) -> None:
    auth, certs = material(tmp_path)
    (conf,) = localize([SECURE / "single.conf"], tmp_path, {}, set())
    url = client_url(conf)
    with running(binary, [conf], tmp_path) as logs:
        await wait_until_ready(logs)
        server = await connect(options(auth, certs, "server", url), "test-server", reconnect=False)
        node = await connect(options(auth, certs, "node-n1", url), "test-n1", reconnect=False)
        try:
            await js_ready(server)
            js = node.jetstream(timeout=2)
            ack = await js.publish(subjects.logs("n1", "web"), b"line")
            with pytest.raises((nats.errors.TimeoutError, NoStreamResponseError)):
                await js.publish(subjects.logs("n2", "web"), b"line")
            info = await server.jetstream().stream_info(subjects.LOGS_STREAM)
        finally:
            await node.close()
            await server.close()
        text = logs[0].read_text()
    assert ack.stream == subjects.LOGS_STREAM
    assert info.state.messages == 1
    assert 'Publish Violation - Subject "voiyd.logs.n2.web"' in text


async def test_a_client_without_the_ca_cannot_connect_to_the_secure_server(
    binary: str, tmp_path: Path
) -> None:
    auth, _ = material(tmp_path)
    (conf,) = localize([SECURE / "single.conf"], tmp_path, {}, set())
    url = client_url(conf)
    with running(binary, [conf], tmp_path) as logs:
        await wait_until_ready(logs)
        no_ca = NatsOptions(servers=(url,), creds_file=auth.creds_path("admin"))
        with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
            await connect(no_ca, "test-no-ca", reconnect=False)


async def test_secure_cluster_forms_by_certificate_and_holds_r3_streams(
    binary: str, tmp_path: Path
) -> None:
    auth, certs = material(tmp_path)
    names = [SECURE / f"cluster-n{i}.conf" for i in (1, 2, 3)]
    ports: dict[int, int] = {}
    taken: set[int] = set()
    confs = localize(names, tmp_path, ports, taken)
    urls = [client_url(c) for c in confs]
    with running(binary, confs, tmp_path) as logs:
        await wait_until_ready(logs)
        nc = await connect(options(auth, certs, "server", *urls), "test-server", reconnect=False)
        try:
            await js_ready(nc, replicas=3)
            ack = await nc.jetstream().publish(subjects.event("task", "web-1"), b"{}")
            info = await nc.jetstream().stream_info(subjects.EVENTS_STREAM)
        finally:
            await nc.close()
    assert ack.seq == 1
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    peers = {info.cluster.leader} | {r.name for r in info.cluster.replicas or []}
    assert peers == {"voiyd-n1", "voiyd-n2", "voiyd-n3"}


async def test_a_client_certificate_cannot_join_the_secure_cluster_as_a_route(
    binary: str, tmp_path: Path
) -> None:
    auth, certs = material(tmp_path)
    names = [SECURE / f"cluster-n{i}.conf" for i in (1, 2, 3)]
    ports: dict[int, int] = {}
    taken: set[int] = set()
    confs = localize(names, tmp_path, ports, taken)
    intruder = _intruder_route(tmp_path, certs, ports[6222], _free_port(taken), _free_port(taken))
    with running(binary, confs, tmp_path) as logs:
        await wait_until_ready(logs)
        refused_before = log_count(logs[0], "authentication error")
        nc = await connect(
            options(auth, certs, "server", client_url(confs[0])), "test-server", reconnect=False
        )
        heard: list[str] = []

        async def on_msg(msg: Msg) -> None:
            heard.append(msg.subject)

        try:
            await nc.subscribe("voiyd.agent.*.heartbeat", cb=on_msg)
            await nc.flush()
            with running(binary, [intruder], tmp_path) as intruder_logs:
                await wait_until_ready(intruder_logs)
                await until(lambda: log_count(logs[0], "authentication error") > refused_before)
                outsider = await nats.connect(_client_url_of(intruder), name="outsider")
                for _ in range(10):
                    await outsider.publish(subjects.agent_heartbeat("n1"), b"spoofed")
                    await asyncio.sleep(0.1)
                await outsider.close()
        finally:
            await nc.close()
    assert heard == []


def _intruder_route(
    etc: Path, certs: CertsDir, route_port: int, own_route: int, own_client: int
) -> Path:
    """A server that tries to join the cluster with a client certificate of the same CA."""
    files = certs.issue_client("intruder")
    conf = etc / "intruder.conf"
    conf.write_text(
        f"server_name: intruder\nlisten: 127.0.0.1:{own_client}\n"
        f"cluster {{\n  name: voiyd\n  listen: 127.0.0.1:{own_route}\n"
        f"  routes: [ nats-route://localhost:{route_port} ]\n"
        f'  tls {{ cert_file: "{files.cert}", key_file: "{files.key}", '
        f'ca_file: "{certs.ca.cert}", verify: true, timeout: 2 }}\n}}\n'
    )
    return conf


def _client_url_of(conf: Path) -> str:
    m = _CLIENT_RE.search(conf.read_text())
    assert m
    return f"nats://127.0.0.1:{m.group(1)}"


async def test_leaf_node_carries_exactly_what_its_node_may_do(binary: str, tmp_path: Path) -> None:
    auth, certs = material(tmp_path)
    ports: dict[int, int] = {}
    taken: set[int] = set()
    hub = localize([SECURE / "hub.conf"], tmp_path, ports, taken)[0]
    site = tmp_path / "site"
    site.mkdir()
    (site / "certs").mkdir()
    (site / "certs" / "ca.pem").write_bytes(certs.ca.cert.read_bytes())
    leaf = localize([SECURE / "leaf.conf"], site, {}, taken)[0]
    env = leaf_env(auth, "n1", ports[7422])
    with running(binary, [hub], tmp_path) as hub_logs, running(binary, [leaf], site, env) as l_logs:
        await wait_until_ready(hub_logs + l_logs)
        control = await connect(
            options(auth, certs, "server", client_url(hub)), "test-hub", reconnect=False
        )
        agent = await connect(
            NatsOptions(servers=(_client_url_of(leaf),), inbox_prefix="_INBOX.n1"),
            "test-site",
            reconnect=False,
        )
        try:
            mine, theirs, beats = await _through_the_leaf(control, agent)
        finally:
            await agent.close()
            await control.close()
    assert [c.key for c in mine] == ["n1.web"]
    assert theirs == []
    assert beats == [subjects.agent_heartbeat("n1")]


async def _through_the_leaf(
    control: Client, agent: Client
) -> tuple[list[KeyChange], list[KeyChange], list[str]]:
    await js_ready(control)
    kv = await control.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)
    await kv.put(subjects.assignment_key("n1", "web"), b"mine")
    await kv.put(subjects.assignment_key("n2", "db"), b"theirs")
    beats: list[str] = []

    async def on_beat(msg: Msg) -> None:
        beats.append(msg.subject)

    await control.subscribe(f"{subjects.AGENT_PREFIX}.*.heartbeat", cb=on_beat)
    await control.flush()
    mine: list[KeyChange] = []
    theirs: list[KeyChange] = []
    stop = asyncio.Event()
    own = KeyWatch(agent, subjects.ASSIGNMENTS_BUCKET, "n1.*")
    other = KeyWatch(agent, subjects.ASSIGNMENTS_BUCKET, "n2.*")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(own.run(mine.append, stop))
        tg.create_task(other.run(theirs.append, stop))
        async with asyncio.timeout(READY_TIMEOUT_S):
            while not mine:  # the leaf's interest reaches the hub in a moment
                await agent.publish(subjects.agent_heartbeat("n1"), msgpack.packb({}))
                await agent.publish(subjects.agent_heartbeat("n2"), msgpack.packb({}))
                await asyncio.sleep(0.2)
        await agent.flush()
        await asyncio.sleep(1.0)
        stop.set()
    return mine, theirs, sorted(set(beats))
