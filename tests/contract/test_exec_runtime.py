"""Exec-runtime behaviour beyond the shared contract: adoption by a restarted agent, mounts, limits.

A task's shim lives in its own session, so neither a new ``ExecRuntime`` object nor the exit of the
agent process that started it ends the task; the next runtime on the same state directory adopts it
by pid and process start time.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.contract.conftest import Kit, wait_exited, wait_file
from voiyd.agent.runtimes.exec import ExecRuntime
from voiyd.agent.runtimes.protocol import InvalidSpecError, Runtime

SLEEPER = ["sleep", "300"]
DATA = "/data"


exec_only = pytest.mark.parametrize("kit", [pytest.param("exec", id="exec")], indirect=True)


GO_THEN_EXIT_7 = "echo ready > data/ready; while [ ! -e data/go ]; do sleep 0.1; done; exit 7"


@exec_only
async def test_exec_a_new_runtime_on_the_same_state_dir_adopts_the_running_task(
    kit: Kit, runtime: Runtime
) -> None:
    data = kit.bind_dir()
    spec = kit.spec(["sh", "-c", GO_THEN_EXIT_7], mounts=[f"{data}:{DATA}"])
    started = await runtime.start(spec)
    await wait_file(data / "ready")
    await runtime.close()
    restarted = ExecRuntime(kit.tmp / "exec-state")
    kit.runtime = restarted
    adopted = await restarted.list(spec.node)
    assert [(o.id, o.state, o.pid) for o in adopted] == [(started.id, "running", started.pid)]
    (data / "go").write_text("")
    observed = await wait_exited(restarted, started.id)
    assert observed.exit_code == 7


_START_AND_LEAVE = """
import asyncio, sys
from pathlib import Path
from voiyd.agent.runtimes.exec import ExecRuntime
from voiyd.agent.runtimes.protocol import ContainerSpec
from voiyd.api.specs import TaskConfig

async def main() -> None:
    state, node, data = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    config = TaskConfig(runtime="exec", args=["sh", "-c", sys.argv[4]], mounts=[data + ":/data"])
    observed = await ExecRuntime(state).start(ContainerSpec("web", 1, node, config))
    print(observed.id, observed.pid)

asyncio.run(main())
"""


@exec_only
async def test_exec_a_task_outlives_the_agent_process_that_started_it(
    kit: Kit, runtime: Runtime
) -> None:
    data, node = kit.bind_dir(), kit.node()
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _START_AND_LEAVE,
        str(kit.tmp / "exec-state"),
        node,
        str(data),
        GO_THEN_EXIT_7,
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, _ = await agent.communicate()
    assert agent.returncode == 0
    container_id, pid = out.decode().split()
    await wait_file(data / "ready")
    adopted = await runtime.list(node)
    assert [(o.id, o.state, o.pid) for o in adopted] == [(container_id, "running", int(pid))]
    (data / "go").write_text("")
    assert (await wait_exited(runtime, container_id)).exit_code == 7


@exec_only
async def test_exec_removing_a_task_keeps_the_data_behind_its_mounts(
    kit: Kit, runtime: Runtime
) -> None:
    data = kit.bind_dir()
    (data / "precious").write_text("keep me\n")
    started = await runtime.start(
        kit.spec(SLEEPER, mounts=[f"{data}:{DATA}", "store:/vol", "store:/nested/vol"])
    )
    await runtime.remove(started.id)
    assert (data / "precious").read_text() == "keep me\n"
    assert (kit.volumes_dir / "store").is_dir()
    assert not (kit.tmp / "exec-state" / started.id).exists()


@exec_only
async def test_exec_refuses_capabilities_it_cannot_apply(kit: Kit, runtime: Runtime) -> None:
    spec = kit.spec(SLEEPER, capabilities={"drop": ["NET_RAW"]})
    with pytest.raises(InvalidSpecError, match="capabilities"):
        await runtime.start(spec)
    assert await runtime.list(spec.node) == []


@exec_only
async def test_exec_usage_counts_the_memory_of_the_process_group(
    kit: Kit, runtime: Runtime
) -> None:
    started = await runtime.start(kit.spec(SLEEPER))
    first = await runtime.usage(started.id)
    second = await runtime.usage(started.id)
    assert first.memory > 0 and second.memory > 0
    assert first.cpus >= 0 and second.cpus >= 0
    await runtime.stop(started.id, 1)
    assert (await runtime.usage(started.id)).memory == 0
