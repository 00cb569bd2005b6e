"""``voiydctl apply -f``: multi-document manifests, idempotence, dry runs, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from tests.e2e.test_cli_support import Cli
from tests.natsserver import NatsServer
from voiyd.bus import subjects

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
