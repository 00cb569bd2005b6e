"""``voiydctl create|get|describe|delete volume`` and ``run --mount``, against voiyd-server.

No agent runs here: what is checked is what voiydctl sends and shows (the data surviving on a
node is ``test_day2_volumes``' business). The node volumes live on is joined by its event.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from tests.e2e.test_cli_apply import join_node, last_seq
from tests.e2e.test_cli_support import Cli, rows
from tests.natsserver import NatsServer

pytestmark = pytest.mark.nats


@pytest.fixture
async def voiydctl(
    api_server: RunningServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> Cli:
    await join_node(nc, "n1")
    return Cli(nats_server.url, tmp_path)


async def test_create_list_describe_and_delete_a_host_local_volume(voiydctl: Cli) -> None:
    out = await voiydctl.ok("create", "volume", "data", "--node", "n1", "--label", "app=db")
    assert out.startswith("volume/data created (revision ")
    table = rows(await voiydctl.ok("get", "volumes"))
    assert table[0] == ["NAME", "TYPE", "NODE", "USED-BY", "AGE"]
    assert table[1][:4] == ["data", "host-local", "n1", "<none>"]
    assert await voiydctl.ok("get", "vol", "-l", "app=db", "-o", "name") == "volume/data\n"
    view = json.loads(await voiydctl.ok("get", "volume/data", "-o", "json"))
    assert view["config"] == {"type": "host-local", "node": "n1", "files": {}}

    await voiydctl.ok(
        "run", "db", "--runtime", "exec", "--mount", "data:/var/lib/db:ro", "--", "sleep", "1"
    )
    table = rows(await voiydctl.ok("get", "volumes", "-o", "wide"))
    assert table[1][3] == "task/db"
    text = await voiydctl.ok("describe", "volume", "data")
    assert re.search(r"^Used by: +task/db$", text, re.M)
    assert "volume.created" in text.split("Events:", 1)[1]
    described = await voiydctl.ok("describe", "task", "db")
    assert re.search(r"^  Mounts: +data:/var/lib/db:ro$", described, re.M)

    refused = await voiydctl("delete", "volume", "data")
    assert refused.exit_code == 6, refused.stderr
    assert "in use by task db" in refused.stderr
    assert refused.stderr.count("\n") == 1

    await voiydctl.ok("delete", "task", "db")
    deleted = await voiydctl("delete", "volume/data")
    assert deleted.exit_code == 0, deleted.stderr
    assert deleted.stdout.startswith("volume/data deleted (revision ")
    assert "stays on node n1 in <agent data dir>/volumes/data" in deleted.stderr
    assert (await voiydctl("get", "volumes")).stderr == "No volumes found.\n"


async def test_create_a_template_volume_from_files(voiydctl: Cli, tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("server { listen 80; }\n")
    out = await voiydctl.ok("create", "volume", "site", "--from-file", f"{conf}=conf/nginx.conf")
    assert out.startswith("volume/site created")
    view = json.loads(await voiydctl.ok("get", "volume", "site", "-o", "json"))
    assert view["config"]["type"] == "template"
    assert view["config"]["files"] == {"conf/nginx.conf": "server { listen 80; }\n"}
    assert rows(await voiydctl.ok("get", "volumes"))[1][:3] == ["site", "template", "<any>"]
    text = await voiydctl.ok("describe", "volume/site")
    assert "  conf/nginx.conf:" in text


async def test_bad_volumes_are_refused_naming_the_field_and_append_nothing(
    voiydctl: Cli, nc: Client
) -> None:
    before = await last_seq(nc)
    no_node = await voiydctl("create", "volume", "data")
    assert no_node.exit_code == 3
    assert "a host-local volume needs node" in no_node.stderr
    unknown = await voiydctl("create", "volume", "data", "--node", "n9")
    assert unknown.exit_code == 3
    assert "n9" in unknown.stderr
    dry = await voiydctl.ok("create", "volume", "data", "--node", "n1", "--dry-run")
    assert dry == "volume/data created (dry run)\n"
    missing = await voiydctl("run", "db", "--runtime", "exec", "--mount", "ghost:/d", "--", "true")
    assert missing.exit_code == 3
    assert "config.mounts.0.source: volume 'ghost' does not exist" in missing.stderr
    assert await last_seq(nc) == before
