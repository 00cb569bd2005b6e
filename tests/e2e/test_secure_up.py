"""`voiyd up --secure`: the local cluster with TLS and a user per role, used through `local`.

Every daemon runs with its own credentials, so the check that matters most is the last one:
a whole session (join, run, events, logs, delete) leaves no "Violation" in nats-server's log,
i.e. the permission matrix covers what each real process does.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import yaml

from tests.e2e.cluster import kill_exec_tasks
from tests.e2e.test_voiyd_up import Up, _free_port
from voiyd.bus.connect import NatsOptions, connect
from voiyd.errors import ForbiddenError

pytestmark = [pytest.mark.nats, pytest.mark.e2e]


class SecureUp(Up):
    def __init__(self, data: Path, config: Path, port: int) -> None:
        super().__init__(data, config, port)
        self.argv.append("--secure")


def local_context(config: Path) -> dict[str, str]:
    data = yaml.safe_load(config.read_text())
    return next(c for c in data["contexts"] if c["name"] == "local")


async def refused_without_credentials(url: str, ca: str) -> str:
    with pytest.raises(ForbiddenError) as refused:
        await connect(NatsOptions(servers=(url,), tls_ca=Path(ca)), "anonymous", reconnect=False)
    return refused.value.message


def says_nothing_in_the_clear(port: int) -> bool:
    """A plain TCP client gets no INFO: the server waits for a TLS hello first."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(1.0)
        try:
            return sock.recv(1024) == b""
        except TimeoutError:
            return True


SET_MANIFEST = """\
version: set/v1
meta: {name: web}
config:
  replicas: 2
  template: {runtime: exec, args: [sleep, "600"], mounts: ["data:/data"], stop_timeout_s: 1}
"""


def test_secure_up_runs_every_daemon_with_its_own_credentials(tmp_path: Path) -> None:
    data, config, port = tmp_path / "data", tmp_path / "config.yaml", _free_port()
    up = SecureUp(data, config, port).start()
    try:
        local = local_context(config)
        assert local["server"] == f"tls://127.0.0.1:{port}"
        assert Path(local["creds"]) == data.absolute() / "secure" / "auth" / "creds" / "admin.creds"
        assert Path(local["tls_ca"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        nodes = up.ctl("get", "nodes")
        assert nodes.returncode == 0, nodes.stderr
        assert "local" in nodes.stdout and "ready" in nodes.stdout
        hello = up.ctl("run", "hello", "--runtime", "exec", "--wait", "--", "sh", "-c", "sleep 600")
        assert hello.returncode == 0, hello.stderr
        events = up.ctl("events")
        assert events.returncode == 0 and "task.started" in events.stdout, events.stderr
        logs = up.ctl("logs", "hello")
        assert logs.returncode == 0, logs.stderr
        assert up.ctl("delete", "task", "hello").returncode == 0
        # Day-2 operations with the daemons' own credentials: the scheduler's Set controller
        # appends member and rollout events; the admin drives volumes and the node.
        web = tmp_path / "web.yaml"
        web.write_text(SET_MANIFEST)
        for args in (
            ("create", "volume", "data", "--node", "local"),
            ("apply", "-f", str(web)),
            ("rollout", "status", "set/web", "--timeout", "60s"),
            ("scale", "set", "web", "1"),
            ("label", "node", "local", "zone=a"),
            ("cordon", "local"),
            ("uncordon", "local"),
            ("delete", "set", "web"),
        ):
            done = up.ctl(*args)
            assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        refused = asyncio.run(refused_without_credentials(local["server"], local["tls_ca"]))
        assert "refused these credentials" in refused
        assert says_nothing_in_the_clear(port)
    finally:
        assert up.stop() == 0
        kill_exec_tasks(tmp_path)
    nats_log = (data / "logs" / "nats-server.log").read_text()
    daemon_logs = "".join(p.read_text() for p in (data / "logs").glob("voiyd-*.log"))
    assert "Violation - " not in nats_log.replace("Authorization Violation", "")
    assert "permission denied" not in daemon_logs
    assert "Traceback" not in up.log.read_text() + daemon_logs

    again = SecureUp(data, config, port).start()  # the same material and state again
    try:
        got = again.ctl("get", "tasks", "-o", "name")
        assert got.returncode == 0, got.stderr
    finally:
        assert again.stop() == 0
        kill_exec_tasks(tmp_path)
