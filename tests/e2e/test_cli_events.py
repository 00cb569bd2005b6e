"""``voiydctl events``: the log straight from JetStream, filtered by kind, name and position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.e2e.test_cli_support import Cli, rows
from tests.natsserver import NatsServer

pytestmark = pytest.mark.nats


@pytest.fixture
def voiydctl(nats_server: NatsServer, tmp_path: Path) -> Cli:
    return Cli(nats_server.url, tmp_path)


async def _history(voiydctl: Cli) -> None:
    await voiydctl.ok("run", "web", "--image", "nginx")  # seq 1
    await voiydctl.ok("run", "db", "--image", "postgres")  # seq 2
    await voiydctl.ok("stop", "task", "web")  # seq 3


async def test_an_empty_log_prints_nothing(api_server: RunningServer, voiydctl: Cli) -> None:
    result = await voiydctl("events")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


async def test_events_lists_the_log_as_a_table(api_server: RunningServer, voiydctl: Cli) -> None:
    await _history(voiydctl)
    table = rows(await voiydctl.ok("events"))
    assert table[0] == ["SEQ", "TIME", "OBJECT", "TYPE", "ACTOR", "SUMMARY"]
    assert [(r[0], r[3], r[4]) for r in table[1:]] == [
        ("1", "task/web", "task.created"),
        ("2", "task/db", "task.created"),
        ("3", "task/web", "task.stop-requested"),
    ]
    assert table[1][5].startswith("voiydctl:")
    assert table[1][-1] == "image=nginx"


async def test_events_filters_by_kind_name_and_since(
    api_server: RunningServer, voiydctl: Cli
) -> None:
    await _history(voiydctl)

    async def seqs(*args: str) -> list[int]:
        out = await voiydctl.ok("events", "-o", "json", *args)
        return [json.loads(line)["seq"] for line in out.splitlines()]

    assert await seqs("--kind", "task", "--name", "web") == [1, 3]
    assert await seqs("--since", "1") == [2, 3]
    assert await seqs("--since", "3") == []
    assert await seqs("--since", "10m", "--kind", "task") == [1, 2, 3]
    assert await seqs("--kind", "node") == []


async def test_events_json_is_one_object_per_line(api_server: RunningServer, voiydctl: Cli) -> None:
    await _history(voiydctl)
    lines = (await voiydctl.ok("events", "-o", "json")).splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"seq", "subject", "event"}
    assert first["subject"] == "voiyd.events.task.web"
    assert first["event"]["type"] == "task.created"
    assert first["event"]["data"]["config"]["image"] == "nginx"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        pytest.param(("--name", "web"), "--name needs --kind", id="name-without-kind"),
        pytest.param(("--since", "soon"), "neither a sequence number", id="bad-since"),
    ],
)
async def test_events_rejects_bad_filters_as_usage_errors(
    api_server: RunningServer, voiydctl: Cli, args: tuple[str, ...], problem: str
) -> None:
    result = await voiydctl("events", *args)
    assert result.exit_code == 2
    assert problem in result.stderr
