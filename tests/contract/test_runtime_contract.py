"""The Runtime contract, run against the fake, the exec and the Docker runtime alike.

Commands are plain POSIX sh that busybox (in the test image) and the host's /bin/sh both run.
Files are written to relative paths (``data/...``): the image's working directory is ``/`` and
an exec task's is its container directory, where the exec runtime links each mount, so
``data/x`` is the bind mount at ``/data`` for both. Nothing here times how long a step takes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from tests.contract.conftest import Kit, wait_exited, wait_file
from voiyd.agent.runtimes.protocol import (
    LABEL_EPOCH,
    LABEL_NODE,
    LABEL_TASK,
    ImagePullError,
    InvalidSpecError,
    Runtime,
    RuntimeFailure,
)
from voiyd.api.specs import Resources

SLEEPER = ["sleep", "300"]
ABSENT_IMAGE = "localhost:1/voiyd-test/absent:1"  # port 1 refuses at once: no registry is asked
DATA = "/data"
TRAP_TERM = (
    'trap "echo term > data/term; exit 0" TERM; echo ready > data/ready; '
    "while true; do sleep 0.1; done"
)
IGNORE_TERM = 'trap "" TERM; echo ready > data/ready; while true; do sleep 0.1; done'


def needs_processes(kit: Kit) -> None:
    if not kit.runs_processes:
        pytest.skip("the fake runtime runs no processes")


def needs_images(kit: Kit) -> None:
    if kit.kind == "exec":
        pytest.skip("the exec runtime has no images")


async def test_start_returns_a_running_container_with_the_voiyd_labels(
    kit: Kit, runtime: Runtime
) -> None:
    spec = kit.spec(SLEEPER, task="web", epoch=4)
    observed = await runtime.start(spec)
    assert observed.state == "running"
    assert (observed.task, observed.epoch, observed.node) == ("web", 4, spec.node)
    assert observed.labels[LABEL_TASK] == "web"
    assert observed.labels[LABEL_EPOCH] == "4"
    assert observed.labels[LABEL_NODE] == spec.node
    assert observed.pid is not None
    assert observed.started_at is not None
    assert observed.exit_code is None


async def test_list_shows_the_nodes_containers_and_not_another_nodes(
    kit: Kit, runtime: Runtime
) -> None:
    node_a, node_b = kit.node(), kit.node()
    a = await runtime.start(kit.spec(SLEEPER, node=node_a, task="a"))
    b = await runtime.start(kit.spec(SLEEPER, node=node_b, task="b"))
    assert [o.id for o in await runtime.list(node_a)] == [a.id]
    assert [o.id for o in await runtime.list(node_b)] == [b.id]
    assert await runtime.list(kit.node()) == []


async def test_inspect_reports_a_container_and_none_for_an_unknown_id(
    kit: Kit, runtime: Runtime
) -> None:
    started = await runtime.start(kit.spec(SLEEPER))
    observed = await runtime.inspect(started.id)
    assert observed is not None
    assert (observed.id, observed.state, observed.pid) == (started.id, "running", started.pid)
    assert await runtime.inspect("voiyd-no-such-container") is None


async def test_a_process_that_exits_3_is_observed_exited_with_code_3(
    kit: Kit, runtime: Runtime
) -> None:
    spec = kit.spec(["sh", "-c", "exit 3"])
    started = await runtime.start(spec)
    kit.script_exit(started.id, 3)
    observed = await wait_exited(runtime, started.id)
    assert observed.exit_code == 3
    assert observed.finished_at is not None
    assert observed.pid is None
    listed = await runtime.list(spec.node)
    assert [(o.id, o.state, o.exit_code) for o in listed] == [(started.id, "exited", 3)]


async def test_stop_sends_sigterm_first(kit: Kit, runtime: Runtime) -> None:
    data = kit.bind_dir()
    spec = kit.spec(["sh", "-c", TRAP_TERM], mounts=[f"{data}:{DATA}"])
    started = await runtime.start(spec)
    if kit.runs_processes:
        await wait_file(data / "ready")
    else:
        kit.fake.on_term(started.id, 0)
    await runtime.stop(started.id, 20)
    observed = await runtime.inspect(started.id)
    assert observed is not None
    assert (observed.state, observed.exit_code) == ("exited", 0)
    if kit.runs_processes:
        assert (data / "term").read_text() == "term\n"
    else:
        assert kit.fake.signals[started.id] == ["SIGTERM"]


async def test_stop_kills_a_process_that_ignores_sigterm_once_the_timeout_passed(
    kit: Kit, runtime: Runtime
) -> None:
    data = kit.bind_dir()
    spec = kit.spec(["sh", "-c", IGNORE_TERM], mounts=[f"{data}:{DATA}"])
    started = await runtime.start(spec)
    if kit.runs_processes:
        await wait_file(data / "ready")
    else:
        kit.fake.on_term(started.id, None)
    await runtime.stop(started.id, 1)
    observed = await runtime.inspect(started.id)
    assert observed is not None
    assert (observed.state, observed.exit_code) == ("exited", 137)


async def test_stop_and_remove_are_idempotent(kit: Kit, runtime: Runtime) -> None:
    started = await runtime.start(kit.spec(SLEEPER))
    await runtime.stop(started.id, 1)
    await runtime.stop(started.id, 1)
    await runtime.remove(started.id)
    await runtime.remove(started.id)
    await runtime.stop(started.id, 1)
    await runtime.stop("voiyd-no-such-container", 1)
    await runtime.remove("voiyd-no-such-container")
    assert await runtime.inspect(started.id) is None


async def test_remove_of_a_running_container_makes_it_gone(kit: Kit, runtime: Runtime) -> None:
    spec = kit.spec(SLEEPER)
    started = await runtime.start(spec)
    await runtime.remove(started.id)
    assert await runtime.inspect(started.id) is None
    assert await runtime.list(spec.node) == []


async def test_env_and_args_reach_the_process(kit: Kit, runtime: Runtime) -> None:
    needs_processes(kit)
    data = kit.bind_dir()
    script = 'printf "%s|%s|%s" "$GREETING" "$1" "$2" > data/out'
    spec = kit.spec(
        ["sh", "-c", script, "argv0", "first", "second words"],
        env={"GREETING": "hello world"},
        mounts=[f"{data}:{DATA}"],
    )
    started = await runtime.start(spec)
    assert (await wait_exited(runtime, started.id)).exit_code == 0
    assert (data / "out").read_text() == "hello world|first|second words"


async def test_a_bind_mount_shows_the_host_directory(kit: Kit, runtime: Runtime) -> None:
    needs_processes(kit)
    data = kit.bind_dir()
    (data / "in").write_text("from the host\n")
    started = await runtime.start(
        kit.spec(["sh", "-c", "cat data/in > data/copy"], mounts=[f"{data}:{DATA}"])
    )
    assert (await wait_exited(runtime, started.id)).exit_code == 0
    assert (data / "copy").read_text() == "from the host\n"


async def test_named_volume_data_survives_remove_and_reaches_the_next_container(
    kit: Kit, runtime: Runtime
) -> None:
    needs_processes(kit)
    node = kit.node()
    writer = kit.spec(["sh", "-c", "echo kept > vol/keep"], node=node, mounts=["store:/vol"])
    first = await runtime.start(writer)
    assert (await wait_exited(runtime, first.id)).exit_code == 0
    await runtime.remove(first.id)
    assert (kit.volumes_dir / "store" / "keep").read_text() == "kept\n"
    reader = kit.spec(
        ["sh", "-c", 'test "$(cat vol/keep)" = kept'], node=node, epoch=2, mounts=["store:/vol"]
    )
    second = await runtime.start(reader)
    assert (await wait_exited(runtime, second.id)).exit_code == 0
    await runtime.remove(second.id)
    assert (kit.volumes_dir / "store" / "keep").exists()


async def test_exec_probe_returns_the_commands_exit_code_and_124_on_timeout(
    kit: Kit, runtime: Runtime
) -> None:
    started = await runtime.start(kit.spec(SLEEPER))
    if not kit.runs_processes:
        kit.fake.probe_results[("sh", "-c", "exit 3")] = 3
        kit.fake.probe_results[("sleep", "30")] = 124
    assert await runtime.exec_probe(started.id, ["true"], 10) == 0
    assert await runtime.exec_probe(started.id, ["sh", "-c", "exit 3"], 10) == 3
    assert await runtime.exec_probe(started.id, ["sleep", "30"], 0.3) == 124


async def test_exec_probe_of_a_missing_command_answers_127(kit: Kit, runtime: Runtime) -> None:
    needs_processes(kit)
    started = await runtime.start(kit.spec(SLEEPER))
    assert await runtime.exec_probe(started.id, ["voiyd-no-such-command"], 10) == 127


async def test_exec_probe_of_a_stopped_container_is_a_runtime_failure(
    kit: Kit, runtime: Runtime
) -> None:
    started = await runtime.start(kit.spec(SLEEPER))
    await runtime.stop(started.id, 1)  # busybox sleep as PID 1 ignores SIGTERM: killed after 1 s
    with pytest.raises(RuntimeFailure):
        await runtime.exec_probe(started.id, ["true"], 5)


async def test_ensure_image_of_a_present_image_pulls_nothing(kit: Kit, runtime: Runtime) -> None:
    lines: list[str] = []
    image = kit.spec(SLEEPER).config.image or "none"
    assert await runtime.ensure_image(image, lines.append) is False
    assert lines == []


async def test_an_unknown_image_is_an_image_pull_error_without_hanging(
    kit: Kit, runtime: Runtime
) -> None:
    needs_images(kit)
    async with asyncio.timeout(60):
        with pytest.raises(ImagePullError, match="absent"):
            await runtime.ensure_image(ABSENT_IMAGE)


async def test_start_of_an_image_missing_on_the_node_is_an_image_pull_error(
    kit: Kit, runtime: Runtime
) -> None:
    needs_images(kit)
    spec = kit.spec(SLEEPER, image=ABSENT_IMAGE)
    with pytest.raises(ImagePullError):
        await runtime.start(spec)
    assert await runtime.list(spec.node) == []


async def test_an_unknown_user_is_an_invalid_spec_and_leaves_nothing(
    kit: Kit, runtime: Runtime
) -> None:
    needs_processes(kit)
    spec = kit.spec(SLEEPER, user="voiyd-no-such-user")
    with pytest.raises(InvalidSpecError):
        await runtime.start(spec)
    assert await runtime.list(spec.node) == []


async def test_a_command_that_does_not_exist_is_an_invalid_spec(kit: Kit, runtime: Runtime) -> None:
    needs_processes(kit)
    spec = kit.spec(["voiyd-no-such-command"])
    with pytest.raises(InvalidSpecError):
        await runtime.start(spec)
    assert await runtime.list(spec.node) == []


# -- Docker only ----------------------------------------------------------------------------


docker_only = pytest.mark.parametrize(
    "kit", [pytest.param("docker", id="docker", marks=pytest.mark.docker)], indirect=True
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _http_get(port: int, deadline_s: float = 30.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        try:
            async with asyncio.timeout(5):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                body = await reader.read()
                writer.close()
                await writer.wait_closed()
            if body:
                return body.decode(errors="replace")
        except (OSError, TimeoutError):
            pass
        if loop.time() >= deadline:
            pytest.fail(f"nothing answered HTTP on 127.0.0.1:{port}")
        await asyncio.sleep(0.1)


@docker_only
async def test_docker_publishes_a_port_on_loopback(kit: Kit, runtime: Runtime) -> None:
    www = kit.bind_dir("www")
    (www / "index.html").write_text("hello from voiyd\n")
    port = _free_port()
    spec = kit.spec(
        ["httpd", "-f", "-p", "80", "-h", "/www"],
        ports=[f"127.0.0.1:{port}:80"],
        mounts=[f"{www}:/www:ro"],
    )
    await runtime.start(spec)
    assert "hello from voiyd" in await _http_get(port)


@docker_only
async def test_docker_refuses_memory_below_its_minimum_as_invalid_spec(
    kit: Kit, runtime: Runtime
) -> None:
    # The spec's own validation refuses it too; model_construct gets it past, to the engine.
    tiny = Resources.model_construct(cpus=None, memory=1024 * 1024)
    spec = kit.spec(SLEEPER, resources=tiny)
    with pytest.raises(InvalidSpecError, match=r"[Mm]inimum memory"):
        await runtime.start(spec)
    assert await runtime.list(spec.node) == []


@docker_only
async def test_docker_reports_the_container_ip(kit: Kit, runtime: Runtime) -> None:
    started = await runtime.start(kit.spec(SLEEPER))
    assert started.ip is not None
    assert ipaddress.ip_address(started.ip).version == 4


@docker_only
async def test_docker_replaces_an_exited_container_of_the_same_task_and_epoch(
    kit: Kit, runtime: Runtime
) -> None:
    node = kit.node()
    first = await runtime.start(kit.spec(["true"], node=node))
    await wait_exited(runtime, first.id)
    second = await runtime.start(kit.spec(SLEEPER, node=node))
    assert second.id != first.id
    assert [o.id for o in await runtime.list(node)] == [second.id]
    with pytest.raises(RuntimeFailure, match="already running"):
        await runtime.start(kit.spec(SLEEPER, node=node))


@docker_only
async def test_docker_applies_cpu_and_memory_limits(kit: Kit, runtime: Runtime) -> None:
    started = await runtime.start(kit.spec(SLEEPER, resources={"cpus": 0.5, "memory": "64Mi"}))
    usage = await runtime.usage(started.id)
    assert 0 < usage.memory <= 64 * 1024 * 1024
    assert usage.cpus >= 0
