"""``voiydctl apply -f``: multi-document manifests of every kind, idempotence, dry runs.

These run against the in-process voiyd-server only (no scheduler, no agent), so nothing but
voiydctl appends to the event log and "appends nothing" is checked exactly: the log's last
sequence before and after. A node that volumes can live on is joined by appending its event.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from tests.e2e.cluster import running_cluster
from tests.e2e.test_cli_support import Cli
from tests.natsserver import NatsServer
from voiyd import clock, ids
from voiyd.bus import subjects
from voiyd.bus.publish import append
from voiyd.events import models as ev

pytestmark = pytest.mark.nats

MANIFEST = """\
version: task/v1
meta: {name: web, labels: {app: web}}
config:
  image: nginx:alpine
  ports: ["8080:80"]
---
version: task/v1
meta: {name: worker}
config:
  runtime: exec
  args: [sleep, "3600"]
"""


@pytest.fixture
def voiydctl(nats_server: NatsServer, tmp_path: Path) -> Cli:
    return Cli(nats_server.url, tmp_path)


async def _log_length(nc: Client) -> int:
    info = await nc.jetstream().stream_info(subjects.EVENTS_STREAM)
    return int(info.state.messages)


async def last_seq(nc: Client) -> int:
    """The last sequence of VOIYD_EVENTS: unchanged means nothing was appended."""
    info = await nc.jetstream().stream_info(subjects.EVENTS_STREAM)
    return int(info.state.last_seq)


async def join_node(nc: Client, name: str) -> int:
    """Append ``node.joined`` for ``name`` (a node volumes can be pinned to); its sequence."""
    data = ev.NodeJoinedData(name=name, runtimes=["exec"], agent_version="test")
    event = ev.NodeJoined(id=ids.new_id(), at=clock.now(), actor="tests", data=data)
    return await append(nc.jetstream(), event)


DAY2 = """\
version: volume/v1
meta: {name: data}
config: {type: host-local, node: n1}
---
version: set/v1
meta: {name: web, labels: {app: web}}
config:
  replicas: 2
  template: {runtime: exec, args: [sleep, "3600"], mounts: ["data:/data"]}
  update: {max_parallel: 1, min_healthy_s: 1}
---
version: task/v1
meta: {name: backup}
config: {runtime: exec, args: [sleep, "3600"], mounts: ["data:/data:ro"]}
"""


async def test_apply_creates_then_is_unchanged_and_appends_nothing(
    api_server: RunningServer, voiydctl: Cli, nc: Client, tmp_path: Path
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    first = await voiydctl.ok("apply", "-f", str(manifest))
    assert first == "task/web created\ntask/worker created\n"
    length = await _log_length(nc)
    assert length == 2
    second = await voiydctl.ok("apply", "-f", str(manifest))
    assert second == "task/web unchanged\ntask/worker unchanged\n"
    assert await _log_length(nc) == length


async def test_apply_of_a_changed_document_is_configured(
    api_server: RunningServer, voiydctl: Cli
) -> None:
    await voiydctl.ok("apply", "-f", "-", stdin=MANIFEST)
    changed = MANIFEST.replace("nginx:alpine", "nginx:1.27")
    assert await voiydctl.ok("apply", "-f", "-", stdin=changed) == (
        "task/web configured\ntask/worker unchanged\n"
    )
    assert await voiydctl.ok("get", "tasks", "-l", "app=web", "-o", "name") == "task/web\n"


async def test_apply_dry_run_appends_nothing(
    api_server: RunningServer, voiydctl: Cli, nc: Client
) -> None:
    out = await voiydctl.ok("apply", "--dry-run", "-f", "-", stdin=MANIFEST)
    assert out == "task/web created (dry run)\ntask/worker created (dry run)\n"
    assert await _log_length(nc) == 0


async def test_apply_reads_a_json_array_from_stdin(
    api_server: RunningServer, voiydctl: Cli
) -> None:
    doc = '[{"version": "task/v1", "meta": {"name": "j"}, "config": {"image": "busybox"}}]'
    assert await voiydctl.ok("apply", "-f", "-", stdin=doc) == "task/j created\n"


async def test_get_yaml_applies_back_unchanged(api_server: RunningServer, voiydctl: Cli) -> None:
    await voiydctl.ok("apply", "-f", "-", stdin=MANIFEST)
    exported = await voiydctl.ok("get", "tasks", "-o", "yaml")
    assert await voiydctl.ok("apply", "-f", "-", stdin=exported) == (
        "task/web unchanged\ntask/worker unchanged\n"
    )


async def test_apply_of_an_invalid_document_sends_nothing(
    api_server: RunningServer, voiydctl: Cli, nc: Client
) -> None:
    bad = MANIFEST + "---\nversion: task/v1\nmeta: {name: x}\nconfig: {image: nginx, cpu: 1}\n"
    result = await voiydctl("apply", "-f", "-", stdin=bad)
    assert result.exit_code == 3
    assert result.stderr == "error: document 3 (task/x): config.cpu: unknown field\n"
    assert await _log_length(nc) == 0


async def test_apply_of_a_volume_a_set_and_a_task_twice_appends_nothing_the_second_time(
    api_server: RunningServer, voiydctl: Cli, nc: Client
) -> None:
    await join_node(nc, "n1")
    first = await voiydctl.ok("apply", "-f", "-", stdin=DAY2)
    assert first == "volume/data created\nset/web created\ntask/backup created\n"
    before = await last_seq(nc)
    second = await voiydctl.ok("apply", "-f", "-", stdin=DAY2)
    assert second == "volume/data unchanged\nset/web unchanged\ntask/backup unchanged\n"
    assert await last_seq(nc) == before
    assert await voiydctl.ok("get", "sets", "-o", "name") == "set/web\n"
    assert await voiydctl.ok("get", "volumes", "-o", "name") == "volume/data\n"

    scaled = DAY2.replace("replicas: 2", "replicas: 3")
    assert await voiydctl.ok("apply", "-f", "-", stdin=scaled) == (
        "volume/data unchanged\nset/web configured\ntask/backup unchanged\n"
    )
    assert await last_seq(nc) == before + 1


async def test_apply_dry_run_of_a_new_volume_and_its_users_appends_nothing(
    api_server: RunningServer, voiydctl: Cli, nc: Client
) -> None:
    await join_node(nc, "n1")
    before = await last_seq(nc)
    out = await voiydctl.ok("apply", "--dry-run", "-f", "-", stdin=DAY2)
    assert out.splitlines() == [
        "volume/data created (dry run)",
        "set/web not checked (dry run: it mounts data, new in this file)",
        "task/backup not checked (dry run: it mounts data, new in this file)",
    ]
    assert await last_seq(nc) == before


INVALID = """\
version: volume/v1
meta: {name: data}
config: {type: template}
---
version: set/v1
meta: {name: web}
config:
  replicas: -2
  template: {runtime: exec, args: [sleep, "1"], bogus: 1}
---
version: task/v1
meta: {name: web}
config: {image: nginx, ports: ["80:80", "80:80"]}
---
version: job/v1
meta: {name: x}
"""


async def test_apply_dry_run_of_an_invalid_manifest_lists_every_problem_and_appends_nothing(
    api_server: RunningServer, voiydctl: Cli, nc: Client
) -> None:
    await join_node(nc, "n1")
    before = await last_seq(nc)
    result = await voiydctl("apply", "--dry-run", "-f", "-", stdin=INVALID)
    assert result.exit_code == 3, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "error: <stdin>: 5 problems; nothing was applied"
    assert [line.split(": ")[0:2] for line in lines[1:]] == [
        ["  document 1 (volume/data)", "config"],
        ["  document 2 (set/web)", "config.replicas"],
        ["  document 2 (set/web)", "config.template.bogus"],
        ["  document 3 (task/web)", "config"],
        ["  document 4 (job/x)", "version"],
    ]
    assert "a template volume needs files" in lines[1]
    assert "host port 80/tcp is listed twice" in lines[4]
    assert await last_seq(nc) == before


async def test_apply_dry_run_reports_what_only_the_server_can_check_for_every_document(
    api_server: RunningServer, voiydctl: Cli, nc: Client
) -> None:
    await join_node(nc, "n1")
    manifest = """\
version: volume/v1
meta: {name: data}
config: {type: host-local, node: n9}
---
version: task/v1
meta: {name: db}
config: {runtime: exec, args: [sleep, "1"], mounts: ["ghost:/data"]}
---
version: task/v1
meta: {name: ok}
config: {runtime: exec, args: [sleep, "1"]}
"""
    before = await last_seq(nc)
    result = await voiydctl("apply", "--dry-run", "-f", "-", stdin=manifest)
    assert result.exit_code == 3, result.stderr
    assert result.stdout == "task/ok created (dry run)\n"
    lines = result.stderr.splitlines()
    assert lines[0] == "error: <stdin>: 2 problems found by the server; nothing was applied"
    assert lines[1].startswith("  document 1 (volume/data): ")
    assert "n9" in lines[1]
    assert lines[2].startswith("  document 2 (task/db): config.mounts.0.source: volume 'ghost'")
    assert await last_seq(nc) == before


async def test_a_server_error_during_apply_names_its_document(
    api_server: RunningServer, voiydctl: Cli, nc: Client
) -> None:
    manifest = MANIFEST + "---\n" + DAY2.split("---\n")[2]
    result = await voiydctl("apply", "-f", "-", stdin=manifest)
    assert result.exit_code == 3
    assert result.stdout == "task/web created\ntask/worker created\n"
    assert result.stderr.startswith(
        "error: document 3 (task/backup): config.mounts.0.source: volume 'data' does not exist"
    )


@pytest.mark.e2e
async def test_apply_twice_on_a_running_cluster_appends_nothing_the_second_time(
    nats_server: NatsServer, nc: Client, tmp_path: Path
) -> None:
    voiydctl = Cli(nats_server.url, tmp_path)
    async with running_cluster(nats_server, tmp_path) as cluster:
        cluster.server()
        cluster.scheduler()
        cluster.node("n1", "--runtime", "exec")
        cluster.node("n2", "--runtime", "exec")
        manifest = tmp_path / "day2.yaml"
        manifest.write_text(DAY2)
        first = await voiydctl.ok("apply", "-f", str(manifest))
        assert first == "volume/data created\nset/web created\ntask/backup created\n"
        rolled = await voiydctl("rollout", "status", "set/web", "--timeout", "90s")
        assert rolled.exit_code == 0, rolled.stderr
        backup = await cluster.wait_phase("backup", "running")
        members = await cluster.api("task", "list", {"selector": "voiyd.io/set=web"})
        # Everything that mounts the host-local volume runs on the volume's node.
        assert {t["status"]["node"] for t in members["tasks"]} | {backup["status"]["node"]} == {
            "n1"
        }

        before = await last_seq(nc)
        second = await voiydctl.ok("apply", "-f", str(manifest))
        assert second == "volume/data unchanged\nset/web unchanged\ntask/backup unchanged\n"
        assert await voiydctl.ok("diff", "-f", str(manifest)) == ""
        assert await last_seq(nc) == before
