"""``voiydctl diff -f`` (exit 0 same, 1 different, >1 error) and ``edit`` through ``$EDITOR``.

The editor is a small shell script: ``sed`` makes the change, and for the conflict case it
first changes the object with another voiydctl process, as a colleague would meanwhile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from tests.e2e.test_cli_apply import DAY2, join_node, last_seq
from tests.e2e.test_cli_support import REPO, Cli
from tests.natsserver import NatsServer

pytestmark = pytest.mark.nats


@pytest.fixture
async def voiydctl(
    api_server: RunningServer, nats_server: NatsServer, nc: Client, tmp_path: Path
) -> Cli:
    await join_node(nc, "n1")
    cli = Cli(nats_server.url, tmp_path)
    await cli.ok("apply", "-f", "-", stdin=DAY2)
    return cli


async def test_diff_exits_0_when_the_file_matches_what_is_stored(voiydctl: Cli) -> None:
    result = await voiydctl("diff", "-f", "-", stdin=DAY2)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


async def test_diff_exits_1_and_shows_what_apply_would_change(voiydctl: Cli, nc: Client) -> None:
    changed = DAY2.replace("replicas: 2", "replicas: 5") + (
        "---\nversion: task/v1\nmeta: {name: extra}\nconfig: {runtime: exec, args: ['true']}\n"
    )
    before = await last_seq(nc)
    result = await voiydctl("diff", "-f", "-", stdin=changed)
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("--- set/web (live, revision ")
    assert lines[1] == "+++ set/web (<stdin>)"
    assert "-  replicas: 2" in lines
    assert "+  replicas: 5" in lines
    assert "--- /dev/null" in lines
    assert "+++ task/extra (<stdin>)" in lines
    assert "+  - 'true'" in lines
    assert not any("volume/data" in line for line in lines)
    assert await last_seq(nc) == before


@pytest.mark.parametrize(
    ("stdin", "code"),
    [
        pytest.param("version: task/v1\nmeta: {name: x}\nconfig: {cpu: 1}\n", 3, id="invalid"),
        pytest.param("meta: {", 3, id="not-yaml"),
    ],
)
async def test_diff_exits_above_1_on_errors(voiydctl: Cli, stdin: str, code: int) -> None:
    result = await voiydctl("diff", "-f", "-", stdin=stdin)
    assert result.exit_code == code
    assert result.stderr.startswith("error: ")


async def test_diff_without_a_server_is_an_error_not_a_difference(tmp_path: Path) -> None:
    result = await Cli("nats://127.0.0.1:1", tmp_path)("diff", "-f", "-", stdin=DAY2)
    assert result.exit_code == 7
    assert result.stderr.startswith("error: cannot connect to NATS")


def _editor(tmp_path: Path, body: str) -> dict[str, str]:
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\nset -e\n{body}\n")
    script.chmod(0o755)
    return {"EDITOR": str(script), "VISUAL": ""}


def _take_saved(note: str) -> str:
    """The edited file a refused ``edit`` kept (named in its note), removed once read."""
    prefix = "note: your changes are saved in "
    assert note.startswith(prefix), note
    saved = Path(note.removeprefix(prefix))
    text = saved.read_text()
    saved.unlink()
    return text


async def test_edit_sends_the_change_with_the_revision_it_read(
    voiydctl: Cli, tmp_path: Path
) -> None:
    voiydctl.env = _editor(tmp_path, "sed -i 's/replicas: 2/replicas: 4/' \"$1\"")
    before = json.loads(await voiydctl.ok("get", "set", "web", "-o", "json"))
    out = await voiydctl.ok("edit", "set/web")
    assert out.startswith("set/web edited (revision ")
    after = json.loads(await voiydctl.ok("get", "set", "web", "-o", "json"))
    assert after["config"]["replicas"] == 4
    assert after["config"]["template"] == before["config"]["template"]
    assert after["revision"] > before["revision"]


async def test_edit_without_changes_is_cancelled_and_appends_nothing(
    voiydctl: Cli, tmp_path: Path, nc: Client
) -> None:
    voiydctl.env = _editor(tmp_path, "true")
    before = await last_seq(nc)
    result = await voiydctl("edit", "volume", "data")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "edit cancelled, no changes made\n"
    assert await last_seq(nc) == before


async def test_edit_of_a_document_changed_meanwhile_is_a_conflict(
    voiydctl: Cli, tmp_path: Path, nats_server: NatsServer
) -> None:
    colleague = (
        f"{sys.executable} -m voiyd.cli.main --server {nats_server.url} scale set/web 3 >/dev/null"
    )
    voiydctl.env = {
        **_editor(tmp_path, f"cd {REPO}\n{colleague}\nsed -i 's/sleep/exec-sleep/' \"$1\""),
        "VOIYD_CONFIG": str(tmp_path / "colleague.yaml"),
    }
    result = await voiydctl("edit", "set", "web")
    assert result.exit_code == 6, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ")
    assert "revision" in lines[0]
    assert "exec-sleep" in _take_saved(lines[1])
    view = json.loads(await voiydctl.ok("get", "set", "web", "-o", "json"))
    assert view["config"]["replicas"] == 3  # the colleague's change, not overwritten
    assert view["config"]["template"]["args"] == ["sleep", "3600"]


async def test_edit_to_an_invalid_document_names_the_field_and_appends_nothing(
    voiydctl: Cli, tmp_path: Path, nc: Client
) -> None:
    voiydctl.env = _editor(
        tmp_path, "sed -i 's/^  runtime: exec/  runtime: exec\\n  cpu: 1/' \"$1\""
    )
    before = await last_seq(nc)
    result = await voiydctl("edit", "task/backup")
    assert result.exit_code == 3, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].endswith("document 1 (task/backup): config.cpu: unknown field")
    assert "cpu: 1" in _take_saved(lines[1])
    assert await last_seq(nc) == before


async def test_edit_of_a_node_is_a_usage_error(voiydctl: Cli) -> None:
    result = await voiydctl("edit", "node", "n1")
    assert result.exit_code == 2
    assert "edit works on tasks, sets and volumes" in result.stderr
