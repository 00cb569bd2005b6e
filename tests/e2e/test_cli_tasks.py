"""voiydctl's task commands against a real nats-server and an in-process voiyd-server.

``run``, ``get`` (every output), ``describe``, ``delete``/``start``/``stop``, ``version``, and
the exit code of each error class.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import RunningServer
from tests.e2e.test_cli_support import Cli, rows
from tests.natsserver import NatsServer

pytestmark = pytest.mark.nats


@pytest.fixture
def voiydctl(nats_server: NatsServer, tmp_path: Path) -> Cli:
    return Cli(nats_server.url, tmp_path)


async def test_run_then_get_shows_the_task(api_server: RunningServer, voiydctl: Cli) -> None:
    out = await voiydctl.ok(
        "run", "web", "--image", "nginx:alpine", "--port", "8080:80", "--label", "app=web"
    )
    assert out == "task/web created (revision 1)\n"
    table = rows(await voiydctl.ok("get", "tasks"))
    assert table[0] == ["NAME", "PHASE", "NODE", "IMAGE", "RESTARTS", "AGE", "REVISION"]
    assert table[1][:5] == ["web", "pending", "<none>", "nginx:alpine", "0"]
    assert table[1][-1] == "1"
    wide = rows(await voiydctl.ok("get", "tasks", "-o", "wide"))
    assert wide[0][-4:] == ["PORTS", "IP", "CONTAINER", "REASON"]
    assert wide[1][7] == "8080:80/tcp"


async def test_run_passes_every_flag_and_the_command_line(
    api_server: RunningServer, voiydctl: Cli
) -> None:
    await voiydctl.ok(
        "run", "job", "--runtime", "exec", "--env", "A=1=2", "--cpus", "0.5", "--memory", "64m",
        "--restart", "on-failure:3", "--workdir", "/tmp", "--node-selector", "disk=ssd",
        "--mount", "/data:/data:ro", "--cap-add", "net_admin", "--", "sleep", "30",
    )  # fmt: skip
    task = json.loads(await voiydctl.ok("get", "task", "job", "-o", "json"))
    cfg = task["config"]
    assert cfg["args"] == ["sleep", "30"]
    assert cfg["env"] == {"A": "1=2"}
    assert cfg["resources"] == {"cpus": 0.5, "memory": 64 * 1024**2}
    assert cfg["restart"]["policy"] == "on-failure"
    assert cfg["restart"]["max_retries"] == 3
    assert cfg["node_selector"] == "disk=ssd"
    assert cfg["mounts"][0]["read_only"] is True
    assert cfg["capabilities"]["add"] == ["NET_ADMIN"]


async def test_get_outputs_json_yaml_name_and_filters_by_selector(
    api_server: RunningServer, voiydctl: Cli
) -> None:
    await voiydctl.ok("run", "web", "--image", "nginx", "--label", "app=web")
    await voiydctl.ok("run", "db", "--image", "postgres", "--label", "app=db")
    listed = json.loads(await voiydctl.ok("get", "tasks", "-o", "json"))
    assert [t["meta"]["name"] for t in listed["items"]] == ["db", "web"]
    assert listed["revision"] >= 2
    one = yaml.safe_load(await voiydctl.ok("get", "task/web", "-o", "yaml"))
    assert one["meta"]["labels"] == {"app": "web"}
    assert one["status"]["phase"] == "pending"
    assert await voiydctl.ok("get", "tasks", "-o", "name") == "task/db\ntask/web\n"
    assert await voiydctl.ok("get", "tasks", "-l", "app=web", "-o", "name") == "task/web\n"
    assert await voiydctl.ok("get", "tasks", "-l", "app in (db,x)", "-o", "name") == "task/db\n"


async def test_get_of_nothing_says_so_on_stderr(api_server: RunningServer, voiydctl: Cli) -> None:
    result = await voiydctl("get", "tasks")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "No tasks found.\n"


async def test_run_dry_run_creates_nothing(api_server: RunningServer, voiydctl: Cli) -> None:
    assert await voiydctl.ok("run", "web", "--image", "x", "--dry-run") == (
        "task/web created (dry run)\n"
    )
    assert (await voiydctl("get", "task", "web")).exit_code == 4


async def test_describe_task_shows_spec_status_and_events(
    api_server: RunningServer, voiydctl: Cli
) -> None:
    await voiydctl.ok("run", "web", "--image", "nginx", "--memory", "256m")
    await voiydctl.ok("stop", "task", "web")
    text = await voiydctl.ok("describe", "task", "web")
    assert "Name:       web" in text
    assert "  Image:         nginx" in text
    assert "  Memory:        256Mi" in text
    assert re.search(r"^  Desired: +stopped$", text, re.M)
    events = text.split("Events:\n", 1)[1].splitlines()
    assert events[0].split() == ["SEQ", "AGE", "TYPE", "ACTOR", "SUMMARY"]
    assert [line.split()[2] for line in events[1:]] == ["task.created", "task.stop-requested"]
    assert events[1].split()[3].startswith("voiydctl:")


async def test_stop_start_delete_report_what_changed(
    api_server: RunningServer, voiydctl: Cli
) -> None:
    await voiydctl.ok("run", "web", "--image", "nginx")
    assert await voiydctl.ok("stop", "task", "web") == "task/web stopped (revision 2)\n"
    assert await voiydctl.ok("stop", "task", "web") == "task/web unchanged (revision 2)\n"
    assert await voiydctl.ok("start", "task/web") == "task/web started (revision 3)\n"
    assert await voiydctl.ok("delete", "task", "web") == "task/web deleted (revision 4)\n"
    assert (await voiydctl("get", "task", "web")).exit_code == 4


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(("get", "task", "ghost"), 4, "task 'ghost' not found", id="not-found"),
        pytest.param(("describe", "node", "n9"), 4, "node 'n9' not found", id="node-not-found"),
        pytest.param(("delete", "task/ghost"), 4, "task 'ghost' not found", id="delete-missing"),
        pytest.param(
            ("run", "web", "--image", "nginx"), 5, "task 'web' already exists", id="exists"
        ),
        pytest.param(
            ("delete", "task", "web", "--expected-revision", "7"),
            6,
            "task 'web' is at revision 1, not 7",
            id="conflict",
        ),
        pytest.param(
            ("run", "bad", "--image", "x", "--port", "99999:80"),
            3,
            "task.config.ports.0.host",
            id="invalid",
        ),
    ],
)
async def test_each_error_class_has_its_exit_code_and_one_line(
    api_server: RunningServer, voiydctl: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    await voiydctl.ok("run", "web", "--image", "nginx")
    result = await voiydctl(*args)
    assert result.exit_code == code
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


async def test_version_shows_the_server(api_server: RunningServer, voiydctl: Cli) -> None:
    out = await voiydctl.ok("version")
    assert out.startswith("Client version: 0.1.0\nServer version: 0.1.0 (id ")
    info = json.loads(await voiydctl.ok("version", "-o", "json"))
    assert info["server"]["server_id"] == api_server.server.settings.server_id


async def test_server_comes_from_the_current_context(
    api_server: RunningServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(None, tmp_path)
    await voiydctl.ok("config", "create-server", "here", "--server", nats_server.url, "--use")
    assert json.loads(await voiydctl.ok("get", "tasks", "-o", "json"))["items"] == []


async def test_context_comes_from_voiyd_context(
    api_server: RunningServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    voiydctl = Cli(None, tmp_path, env={"VOIYD_CONTEXT": "here"})
    await voiydctl.ok("config", "init")  # current: default, where nothing listens
    await voiydctl.ok("config", "create-server", "here", "--server", nats_server.url)
    assert await voiydctl.ok("run", "web", "--image", "x") == "task/web created (revision 1)\n"
