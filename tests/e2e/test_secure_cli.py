"""voiydctl and the daemons as real processes on a secure nats-server, one user per role.

The viewer reads everything (get, describe, events, logs, logs -f) and every write it tries is
refused with exit code 8 and a "permission denied" line; the admin can do everything. A
voiyd-node started under the wrong name (with node n1's credentials, as n2) is refused by the
server, says so clearly in its log, and keeps running instead of crashing in a loop.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import kill_exec_tasks
from tests.e2e.procs import DaemonProcess, voiyd_logrelay, voiyd_node, voiyd_server
from tests.secure_nats import SecureNats

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

BIN = Path(sys.executable).parent
TASK_OUTPUT = "hello-from-a-secure-task"


class SecureCluster:
    def __init__(self, secure: SecureNats, workdir: Path) -> None:
        self.nats = secure
        self.workdir = workdir
        self.config = workdir / "voiydctl.yaml"
        self.procs: list[DaemonProcess] = []

    def auth(self, user: str) -> list[str]:
        opts = self.nats.options(user)
        return ["--creds", str(opts.creds_file), "--tls-ca", str(opts.tls_ca)]

    def start(self) -> None:
        url, w = self.nats.url, self.workdir
        self.procs += [
            voiyd_server(url, w / "server", *self.auth("server")).start(),
            DaemonProcess(
                "voiyd.scheduler.main",
                ["--nats-url", url, *self.auth("scheduler")],
                w / "scheduler.log",
                " ready: view at seq ",
            ).start(),
            voiyd_logrelay(url, w, "logrelay", *self.auth("logrelay")).start(),
            self.node("n1", "node-n1").start(),
        ]
        for user in ("admin", "vic"):
            ctl = [str(BIN / "voiydctl"), "--config", str(self.config), "config", "create-server"]
            subprocess.run([*ctl, user, "--server", url, *self.auth(user)], check=True)

    def node(self, name: str, user: str) -> DaemonProcess:
        extra = ["--runtime", "exec", *self.auth(user)]
        return voiyd_node(self.nats.url, name, self.workdir / f"node-{name}", *extra)

    def ctl(self, user: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / "voiydctl"), "--config", str(self.config), "--context", user, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        kill_exec_tasks(self.workdir)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SecureCluster]:
    secure = SecureNats(tmp_path / "nats")
    secure.prepare(nodes=("n1",), viewers=("vic",))
    secure.start()
    c = SecureCluster(secure, tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        secure.stop()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_viewer_reads_everything_and_writes_nothing_admin_does_both(
    cluster: SecureCluster,
) -> None:
    script = f"echo {TASK_OUTPUT}; sleep 1; echo done"
    ok(cluster.ctl("admin", "run", "hello", "--runtime", "exec", "--restart", "never", "--wait",
                   "--", "sh", "-c", script))  # fmt: skip
    assert "hello" in ok(cluster.ctl("vic", "get", "tasks"))
    assert "n1" in ok(cluster.ctl("vic", "get", "nodes"))
    assert "task.created" in ok(cluster.ctl("vic", "describe", "task", "hello"))
    assert "task.started" in ok(cluster.ctl("vic", "events"))
    followed = ok(cluster.ctl("vic", "logs", "-f", "hello"))  # ends when the task's output does
    assert followed.splitlines() == [TASK_OUTPUT, "done"]
    assert TASK_OUTPUT in ok(cluster.ctl("vic", "logs", "hello"))

    for write in (
        ("run", "nope", "--runtime", "exec", "--", "true"),
        ("delete", "task", "hello"),
        ("stop", "task", "hello"),
    ):
        refused = cluster.ctl("vic", *write)
        assert refused.returncode == 8, refused.stderr
        assert "permission denied" in refused.stderr
        assert f"voiyd.api.v1.task.{'create' if write[0] == 'run' else write[0]}" in refused.stderr
    assert "nope" not in ok(cluster.ctl("admin", "get", "tasks"))

    ok(cluster.ctl("admin", "delete", "task", "hello"))
    assert "hello" not in ok(cluster.ctl("vic", "get", "tasks", "-o", "name"))
    refused_by_server = [v for v in cluster.nats.violations() if "Publish Violation" in v]
    assert refused_by_server and all("voiyd.api.v1.task." in v for v in refused_by_server)


def test_a_node_under_another_nodes_name_is_refused_and_says_so_without_crashing(
    cluster: SecureCluster,
) -> None:
    impostor = cluster.node("n2", "node-n1")  # n1's credentials, n2's name
    log = cluster.workdir / "node-n2.log"
    impostor.log_path = log
    impostor.ready_text = "permission denied"
    impostor.start(timeout=30)  # "ready" = the first refusal is in its log
    cluster.procs.append(impostor)
    time.sleep(8)  # it keeps retrying its join meanwhile
    assert impostor.proc is not None and impostor.proc.poll() is None, "it must keep running"
    text = impostor.log_text()
    denied = [line for line in text.splitlines() if " ERROR " in line and "denied" in line]
    assert any("may not publish to 'voiyd.agent.n2.report'" in line for line in denied)
    assert any("may not subscribe to '_INBOX.n2." in line for line in denied)
    assert len(denied) == 2, "one line per refused subject (and 30 s), not one per retry"
    assert "Traceback" not in text
    assert "n2" not in ok(cluster.ctl("admin", "get", "nodes", "-o", "name"))
    assert any('"voiyd.agent.n2.report"' in v for v in cluster.nats.violations())
