"""One contract suite, three runtimes: the ``kit`` fixture runs each test on fake, exec and docker.

A ``Kit`` builds specs for its runtime (an image for docker and the fake, none for exec), hands out
unique node names (``t-<uuid8>``) so leftovers and parallel runs never collide, and removes every
container of those nodes when the test ends. ``VOIYD_REQUIRE_DOCKER=1`` (set in CI) turns a
missing Docker engine into a failure instead of a skip.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.dockerimage import TEST_IMAGE, ImageUnavailable, ensure_test_image
from voiyd.agent.runtimes.docker import DockerRuntime
from voiyd.agent.runtimes.exec import ExecRuntime
from voiyd.agent.runtimes.fake import FakeRuntime
from voiyd.agent.runtimes.protocol import ContainerSpec, LogStream, Observed, Runtime
from voiyd.api.specs import TaskConfig

Kind = Literal["fake", "exec", "docker"]
POLL_S = 0.05
DEADLINE_S = 30.0


def _required(var: str) -> bool:
    return os.environ.get(var, "") not in ("", "0")


@dataclass
class Kit:
    kind: Kind
    runtime: Runtime
    tmp: Path
    nodes: list[str] = field(default_factory=list)

    @property
    def volumes_dir(self) -> Path:
        return self.tmp / "volumes"

    @property
    def runs_processes(self) -> bool:
        return self.kind != "fake"

    @property
    def fake(self) -> FakeRuntime:
        assert isinstance(self.runtime, FakeRuntime)
        return self.runtime

    def node(self) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.nodes.append(name)
        return name

    def spec(
        self,
        args: list[str],
        *,
        node: str | None = None,
        task: str = "web",
        epoch: int = 1,
        **config: Any,
    ) -> ContainerSpec:
        if self.kind == "exec":
            config.setdefault("runtime", "exec")
        else:
            config.setdefault("image", TEST_IMAGE)
        return ContainerSpec(
            task=task,
            epoch=epoch,
            node=node or self.node(),
            config=TaskConfig(args=args, **config),
            volumes_dir=self.volumes_dir,
        )

    def bind_dir(self, name: str = "bind") -> Path:
        """A host directory for a bind mount; tests mount it at ``/data``."""
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def script_exit(self, container_id: str, code: int) -> None:
        """The fake runs no command: tell it what the command would have done."""
        if self.kind == "fake":
            self.fake.exit(container_id, code)

    def script_output(
        self, container_id: str, lines: Sequence[tuple[LogStream, bytes]], code: int = 0
    ) -> None:
        """The fake runs no command: say what it printed (lines without newlines), then exit."""
        if self.kind == "fake":
            for stream, data in lines:
                self.fake.emit(container_id, stream, data)
            self.fake.exit(container_id, code)

    async def cleanup(self) -> None:
        for node in self.nodes:
            for observed in await self.runtime.list(node):
                await self.runtime.remove(observed.id)


async def wait_for(
    runtime: Runtime,
    container_id: str,
    predicate: Callable[[Observed | None], bool],
    what: str,
    deadline_s: float = DEADLINE_S,
) -> Observed | None:
    """Poll ``inspect`` until ``predicate`` holds; at the deadline, fail with what was seen."""
    deadline = time.monotonic() + deadline_s
    while True:
        observed = await runtime.inspect(container_id)
        if predicate(observed):
            return observed
        if time.monotonic() >= deadline:
            pytest.fail(f"{container_id} never became {what}; last seen: {observed}")
        await asyncio.sleep(POLL_S)


async def wait_exited(runtime: Runtime, container_id: str) -> Observed:
    observed = await wait_for(
        runtime, container_id, lambda o: o is not None and o.state == "exited", "exited"
    )
    assert observed is not None
    return observed


async def wait_file(path: Path, deadline_s: float = DEADLINE_S) -> str:
    """The text of ``path`` once a task has written it."""
    deadline = time.monotonic() + deadline_s
    while not await asyncio.to_thread(path.exists):
        if time.monotonic() >= deadline:
            pytest.fail(f"{path} was never written")
        await asyncio.sleep(POLL_S)
    return await asyncio.to_thread(path.read_text)


async def _docker_runtime() -> DockerRuntime:
    runtime = DockerRuntime(request_timeout_s=60.0, pull_timeout_s=60.0)
    problem = ""
    if not await runtime.available():
        problem = "no Docker engine answers on the default socket"
    else:
        try:
            await asyncio.to_thread(ensure_test_image)
        except ImageUnavailable as exc:
            problem = f"the test image {TEST_IMAGE} is missing and cannot be built: {exc}"
    if problem:
        await runtime.close()
        if _required("VOIYD_REQUIRE_DOCKER"):
            pytest.fail(f"Docker is required (VOIYD_REQUIRE_DOCKER=1): {problem}")
        pytest.skip(problem)
    return runtime


@pytest.fixture(
    params=[
        pytest.param("fake", id="fake"),
        pytest.param("exec", id="exec"),
        pytest.param("docker", id="docker", marks=pytest.mark.docker),
    ]
)
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    kind: Kind = request.param
    runtime: Runtime
    if kind == "fake":
        runtime = FakeRuntime()
    elif kind == "exec":
        runtime = ExecRuntime(tmp_path / "exec-state")
    else:
        runtime = await _docker_runtime()
    the_kit = Kit(kind, runtime, tmp_path)
    try:
        yield the_kit
    finally:
        try:
            await the_kit.cleanup()
        finally:
            await runtime.close()


@pytest.fixture
def runtime(kit: Kit) -> Runtime:
    return kit.runtime
