"""``voiydctl upgrade node`` end to end: real processes, a real pip, the agent re-executing itself.

The agent runs from a venv of its own holding a wheel of this checkout (``tests.wheels``; the
test venv is never installed into). ``voiydctl upgrade node`` stores a second wheel, version
bumped, in the object store; the agent checks it, installs it, re-executes itself (same pid)
and rejoins with the new version, which ``get nodes`` then shows. Its tasks keep running through
it: an exec task keeps its pid and a Docker task (when Docker is there) its container id, with
no restart. A wheel that pip refuses leaves the old version running and the CLI exits non-zero
with pip's reason.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dockerimage import require_test_image
from tests.e2e.cluster import Cluster, Task, running_cluster
from tests.e2e.procs import DaemonProcess
from tests.e2e.test_cli_support import Cli, rows
from tests.natsserver import NatsServer
from tests.wheels import build_wheel, installed_version, make_agent_env
from voiyd import __version__

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

NEW_VERSION = f"{__version__}.post1"
BROKEN_VERSION = f"{__version__}.post2"
SLEEPER = ["sleep", "600"]


@dataclass(frozen=True)
class Wheels:
    current: Path
    new: Path
    broken: Path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    out = tmp_path_factory.mktemp("wheels")
    return Wheels(
        current=build_wheel(out / "current", __version__),
        new=build_wheel(out / "new", NEW_VERSION),
        broken=build_wheel(out / "broken", BROKEN_VERSION, with_wheel_file=False),
    )


@pytest.fixture
def docker_image() -> str | None:
    """The test image when Docker is there (a failure without it when VOIYD_REQUIRE_DOCKER=1:
    ``require_test_image`` fails instead of skipping), else None: the exec task alone."""
    try:
        return require_test_image()
    except pytest.skip.Exception:
        return None


@pytest.fixture
def node_name() -> Iterator[str]:
    name = f"u{os.getpid()}-{os.urandom(3).hex()}"
    yield name
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.voiyd.node={name}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if found.returncode == 0 and found.stdout.split():
        subprocess.run(
            ["docker", "rm", "-f", *found.stdout.split()], capture_output=True, check=False
        )


def agent(cluster: Cluster, name: str, python: Path, docker: bool) -> DaemonProcess:
    """voiyd-node from the agent's venv, run outside this checkout (so the venv's voiyd loads)."""
    data_dir = cluster.workdir / f"node-{name}"
    runtimes = ["--runtime", "exec", *(["--runtime", "docker"] if docker else [])]
    proc = DaemonProcess(
        "voiyd.agent.main",
        ["--nats-url", cluster.nats.url, "--name", name, "--data-dir", str(data_dir), *runtimes],
        cluster.workdir / f"node-{name}.log",
        f"node {name} joined",
        python=str(python),
        cwd=python.parent,
    )
    cluster.procs.append(proc)
    return proc.start()


async def docker_running(container_id: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        *("docker", "inspect", "-f", "{{.State.Running}}", container_id),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return out.decode().strip() == "true"


async def node_view(cluster: Cluster, name: str) -> dict[str, object]:
    return dict((await cluster.api("node", "get", {"name": name}))["node"])


def ids(task: Task) -> tuple[object, ...]:
    s = task["status"]
    return s["phase"], s["node"], s["container_id"], s["pid"], s["restarts"], s["epoch"]


@dataclass
class Setup:
    cluster: Cluster
    node: DaemonProcess
    python: Path
    cli: Cli
    tasks: list[str]


async def start(
    cluster: Cluster, tmp_path: Path, wheels: Wheels, name: str, image: str | None
) -> Setup:
    python = await asyncio.to_thread(make_agent_env, tmp_path / "agent-venv", wheels.current)
    cluster.server()
    cluster.scheduler()
    node = agent(cluster, name, python, docker=image is not None)
    await cluster.create("sleeper", {"runtime": "exec", "args": SLEEPER})
    tasks = ["sleeper"]
    if image is not None:
        await cluster.create("boxed", {"image": image, "args": SLEEPER})
        tasks.append("boxed")
    for task in tasks:
        await cluster.wait_phase(task, "running")
    assert (await node_view(cluster, name))["agent_version"] == __version__
    return Setup(cluster, node, python, Cli(cluster.nats.url, tmp_path), tasks)


async def test_upgrade_node_installs_the_new_version_and_the_tasks_keep_running(
    nats_server: NatsServer,
    tmp_path: Path,
    wheels: Wheels,
    docker_image: str | None,
    node_name: str,
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        s = await start(cluster, tmp_path, wheels, node_name, docker_image)
        before = {t: ids(await cluster.task(t)) for t in s.tasks}
        assert s.node.proc is not None
        pid = s.node.proc.pid

        out = await s.cli.ok("upgrade", "node", node_name, "--wheel", str(wheels.new))

        assert f"node/{node_name} upgraded {__version__} -> {NEW_VERSION} (ready)" in out
        table = rows(await s.cli.ok("get", "nodes"))
        version = table[0].index("VERSION")
        assert [r[version] for r in table[1:] if r[0] == node_name] == [NEW_VERSION]
        assert installed_version(s.python)[0] == NEW_VERSION
        assert s.node.proc.poll() is None and s.node.proc.pid == pid  # re-executed in place
        log = s.node.log_text()
        assert "re-executing" in log
        assert log.count(f"node {node_name} joined") == 2
        # The tasks were adopted, not restarted: same container, same pid, same placement.
        await asyncio.sleep(3)  # a few rounds of the new agent, which must change nothing
        after = {t: ids(await cluster.task(t)) for t in s.tasks}
        assert after == before
        assert all(after[t][0] == "running" and after[t][4] == 0 for t in s.tasks)
        assert await asyncio.to_thread(Path(f"/proc/{before['sleeper'][3]}").exists)
        if docker_image is not None:
            assert await docker_running(str(before["boxed"][2]))

        again = await s.cli.ok("upgrade", "node", node_name, "--wheel", str(wheels.new))
        assert f"node/{node_name} already runs {NEW_VERSION} (skipped)" in again


async def test_a_failed_install_leaves_the_old_version_running_and_the_cli_says_why(
    nats_server: NatsServer, tmp_path: Path, wheels: Wheels, node_name: str
) -> None:
    async with running_cluster(nats_server, tmp_path) as cluster:
        s = await start(cluster, tmp_path, wheels, node_name, None)
        before = ids(await cluster.task("sleeper"))
        assert s.node.proc is not None

        refused = await s.cli("upgrade", "node", node_name, "--wheel", str(wheels.broken))

        assert refused.exit_code == 1, refused.stderr
        [line] = [x for x in refused.stderr.splitlines() if x.startswith("error:")]
        assert line.startswith(
            f"error: node/{node_name} refused the upgrade to {BROKEN_VERSION} "
            f"and keeps running {__version__}: pip install failed (exit code"
        ), refused.stderr
        assert "WHEEL" in refused.stderr  # pip's own last lines
        corrupt = tmp_path / f"voiyd-{BROKEN_VERSION}-py3-none-any.whl"
        corrupt.write_bytes(b"not a zip")
        local = await s.cli("upgrade", "node", node_name, "--wheel", str(corrupt))
        assert local.exit_code == 3
        assert "not a readable wheel" in local.stderr

        assert (await node_view(cluster, node_name))["agent_version"] == __version__
        assert installed_version(s.python)[0] == __version__
        assert s.node.proc.poll() is None
        assert "re-executing" not in s.node.log_text()
        assert ids(await cluster.task("sleeper")) == before
        # Still the same agent, still upgradable: the refusal freed it.
        out = await s.cli.ok("upgrade", "node", node_name, "--wheel", str(wheels.new))
        assert f"upgraded {__version__} -> {NEW_VERSION}" in out
