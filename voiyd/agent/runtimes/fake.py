"""An in-memory runtime for the agent's unit tests: same contract, no processes, no engine.

It passes the contract suite (tests/contract/) with the Docker and exec runtimes, so what agent
tests learn from it holds for them. Containers run until a test says otherwise: ``exit()`` ends
one with a code, ``on_term()`` says how it answers SIGTERM, ``fail()`` makes the next call of a
method raise, ``available`` turns the whole engine off. Ids, pids and addresses are deterministic;
times come from ``clock``. Like Docker, a start replaces an exited container of the same task and
epoch and refuses while one runs.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from voiyd.agent.runtimes.protocol import (
    ContainerSpec,
    HealthState,
    ImagePullError,
    LogStream,
    Observed,
    Progress,
    RawLine,
    RuntimeFailure,
    RuntimeUnavailable,
    Usage,
)

TEST_IMAGE = "voiyd-test/busybox:1"
_EXIT_TERM = 143  # 128 + SIGTERM: what a process without a handler reports
_EXIT_KILL = 137  # 128 + SIGKILL
_FIRST_PID = 1000


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Container:
    observed: Observed
    spec: ContainerSpec
    term_exit_code: int | None = _EXIT_TERM  # None: ignores SIGTERM, so a stop ends in SIGKILL
    usage: Usage = field(default_factory=Usage)
    output: list[RawLine] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False

    def touch(self) -> None:
        """Wake the log readers; each waits on the event it saw, so a fresh one follows."""
        self.changed.set()
        self.changed = asyncio.Event()


class FakeRuntime:
    """In memory; ``name`` is what the agent sees (``docker`` by default, ``exec`` if asked)."""

    def __init__(
        self,
        *,
        name: str = "docker",
        images: Iterable[str] = (TEST_IMAGE,),
        registry: Iterable[str] = (),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.name = name
        self.images: set[str] = set(images)
        """Images present on the fake node."""
        self.registry: set[str] = set(registry)
        """Images ``ensure_image`` can pull; any other missing image fails with ImagePullError."""
        self.available_flag = True
        self.clock = clock
        self.signals: dict[str, list[str]] = {}
        """Signals each container received, in order (``SIGTERM``, ``SIGKILL``)."""
        self.probe_results: dict[tuple[str, ...], int] = {("false",): 1}
        """Exit codes of ``exec_probe`` commands; any other command answers 0."""
        self.pulled: list[str] = []
        self.closed = False
        self._containers: dict[str, _Container] = {}
        self._failures: dict[str, list[RuntimeFailure]] = {}
        self._count = 0

    # -- test controls ------------------------------------------------------------------------

    def fail(self, method: str, error: RuntimeFailure) -> None:
        """Make the next call of ``method`` (``start``, ``stop``, ``ensure_image``...) raise."""
        self._failures.setdefault(method, []).append(error)

    def exit(self, container_id: str, code: int) -> None:
        """The container's process ends with ``code`` (no-op if it is not running)."""
        box = self._get(container_id)
        if box.observed.state != "exited":
            box.observed = replace(
                box.observed,
                state="exited",
                exit_code=code,
                pid=None,
                ip=None,
                health=None,
                finished_at=self.clock(),
            )
            box.touch()

    def emit(
        self, container_id: str, stream: LogStream, data: bytes, t: datetime | None = None
    ) -> None:
        """The container's process writes the line ``data`` (no newline) to ``stream``."""
        box = self._get(container_id)
        box.output.append(RawLine(t or self.clock(), stream, data))
        box.touch()

    def on_term(self, container_id: str, exit_code: int | None) -> None:
        """How the container answers SIGTERM: exit with ``exit_code``, or ignore it (None)."""
        self._get(container_id).term_exit_code = exit_code

    def set_health(self, container_id: str, health: HealthState | None) -> None:
        box = self._get(container_id)
        box.observed = replace(box.observed, health=health)

    def set_usage(self, container_id: str, usage: Usage) -> None:
        self._get(container_id).usage = usage

    def spec_of(self, container_id: str) -> ContainerSpec:
        return self._get(container_id).spec

    def _get(self, container_id: str) -> _Container:
        box = self._containers.get(container_id)
        if box is None:
            raise KeyError(f"the fake runtime has no container {container_id!r}")
        return box

    def _enter(self, method: str) -> None:
        if not self.available_flag:
            raise RuntimeUnavailable(f"fake {self.name} runtime is switched off")
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)

    # -- the Runtime protocol -----------------------------------------------------------------

    async def available(self) -> bool:
        return self.available_flag

    async def ensure_image(self, image: str, progress: Progress | None = None) -> bool:
        self._enter("ensure_image")
        if image in self.images:
            return False
        if image not in self.registry:
            raise ImagePullError(f"cannot pull {image}: not in the fake registry")
        if progress is not None:
            progress(f"{image}: Pulling from fake registry")
            progress(f"{image}: Pull complete")
        self.images.add(image)
        self.pulled.append(image)
        return True

    async def start(self, spec: ContainerSpec) -> Observed:
        self._enter("start")
        image = spec.config.image or ""
        if image and image not in self.images:
            raise ImagePullError(f"image {image} is not on this node")
        self._replace_leftover(spec)
        self._count += 1
        container_id = f"fake-{self._count:06d}"
        observed = Observed(
            id=container_id,
            task=spec.task,
            epoch=spec.epoch,
            node=spec.node,
            state="running",
            image=image,
            pid=_FIRST_PID + self._count,
            ip=f"10.88.{self._count // 250}.{self._count % 250 + 2}",
            started_at=self.clock(),
            labels=spec.labels,
        )
        self._containers[container_id] = _Container(observed, spec)
        self.signals[container_id] = []
        return observed

    def _replace_leftover(self, spec: ContainerSpec) -> None:
        for cid, box in list(self._containers.items()):
            o = box.observed
            if (o.task, o.epoch, o.node) != (spec.task, spec.epoch, spec.node):
                continue
            if o.state == "running":
                raise RuntimeFailure(f"container of {spec.task} epoch {spec.epoch} is running")
            del self._containers[cid]

    async def stop(self, container_id: str, timeout_s: float) -> None:
        self._enter("stop")
        box = self._containers.get(container_id)
        if box is None or box.observed.state != "running":
            return
        self.signals[container_id].append("SIGTERM")
        if box.term_exit_code is not None:
            self.exit(container_id, box.term_exit_code)
            return
        self.signals[container_id].append("SIGKILL")
        self.exit(container_id, _EXIT_KILL)

    async def remove(self, container_id: str) -> None:
        self._enter("remove")
        box = self._containers.pop(container_id, None)
        if box is not None:
            box.removed = True
            box.touch()
            if box.observed.state == "running":
                self.signals[container_id].append("SIGKILL")

    async def list(self, node: str) -> list[Observed]:
        self._enter("list")
        return [b.observed for b in self._containers.values() if b.observed.node == node]

    async def inspect(self, container_id: str) -> Observed | None:
        self._enter("inspect")
        box = self._containers.get(container_id)
        return box.observed if box is not None else None

    async def exec_probe(self, container_id: str, cmd: builtins.list[str], timeout_s: float) -> int:
        self._enter("exec_probe")
        box = self._containers.get(container_id)
        if box is None or box.observed.state != "running":
            raise RuntimeFailure(f"container {container_id} is not running")
        return self.probe_results.get(tuple(cmd), 0)

    async def usage(self, container_id: str) -> Usage:
        self._enter("usage")
        box = self._containers.get(container_id)
        if box is None:
            raise RuntimeFailure(f"container {container_id} is gone")
        return box.usage if box.observed.state == "running" else Usage()

    async def logs(
        self, container_id: str, since: datetime | None = None
    ) -> AsyncIterator[RawLine]:
        self._enter("logs")
        box = self._containers.get(container_id)
        if box is None:
            raise RuntimeFailure(f"container {container_id} is gone")
        seen = 0
        while True:
            changed = box.changed
            for line in box.output[seen:]:
                if since is None or line.t >= since:
                    yield line
            seen = len(box.output)
            if box.removed or box.observed.state == "exited":
                return
            await changed.wait()

    async def close(self) -> None:
        self.closed = True
