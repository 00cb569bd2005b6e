"""The ``Runtime`` protocol every runtime implements, and what it says about containers.

A runtime knows nothing of NATS or the event log: it runs ``ContainerSpec``s, lists what it runs
(by the voiyd labels task, epoch and node) and reports ``Observed`` states. The same contract
suite (tests/contract/) runs against every implementation, the fake included.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from voiyd.api.specs import Mount, TaskConfig

LABEL_TASK = "io.voiyd.task"
LABEL_EPOCH = "io.voiyd.epoch"
LABEL_NODE = "io.voiyd.node"
LABEL_REVISION = "io.voiyd.revision"

ContainerState = Literal["created", "running", "exited"]
HealthState = Literal["starting", "healthy", "unhealthy"]
LogStream = Literal["stdout", "stderr"]

MAX_RAW_LINE = 1024 * 1024
"""Longest line a runtime hands over in one piece; a longer one comes in ``partial`` pieces, so
a process that never writes a newline cannot make the agent hold unbounded memory."""


class RuntimeFailure(Exception):
    """A runtime could not do what was asked; ``reason`` is shown to operators as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImagePullError(RuntimeFailure):
    """The image is not present and could not be pulled (unknown image, no registry...)."""


class InvalidSpecError(RuntimeFailure):
    """The runtime refuses the spec (e.g. memory below its minimum, unknown user)."""


class RuntimeUnavailable(RuntimeFailure):
    """The runtime itself does not answer (Docker engine down...)."""


@dataclass(frozen=True)
class ContainerSpec:
    task: str
    epoch: int
    node: str
    config: TaskConfig
    revision: int = 0
    volumes_dir: Path | None = None
    """Where host-local named volumes live on this node (``<volumes_dir>/<volume>``)."""
    templates: Mapping[str, Path] = field(default_factory=dict)
    """The template volumes the task mounts: name -> the directory the agent wrote their files
    to. They are always mounted read-only, and the runtime never creates or changes them."""

    def volume_path(self, volume: str) -> Path:
        """The host directory of the named volume ``volume`` on this node (not created here)."""
        if volume in self.templates:
            return self.templates[volume]
        if self.volumes_dir is None:
            raise InvalidSpecError(f"volume {volume!r}: this node has no volumes directory")
        if volume in ("", ".", "..") or "/" in volume:
            raise InvalidSpecError(f"{volume!r} is not a volume name")
        return self.volumes_dir / volume

    def is_template(self, mount: Mount) -> bool:
        return mount.type == "volume" and mount.source in self.templates

    def read_only(self, mount: Mount) -> bool:
        """Whether ``mount`` is mounted read-only: asked for, or a template volume."""
        return mount.read_only or self.is_template(mount)

    def prepare_volume(self, mount: Mount) -> Path:
        """The host directory of a volume mount, made if it is a host-local volume's.

        A template volume's directory must already hold its files (the agent writes them before
        the start); a missing one is an ``InvalidSpecError``, never an empty directory.
        """
        source = self.volume_path(mount.source)
        if self.is_template(mount):
            if not source.is_dir():
                raise InvalidSpecError(f"template volume {mount.source!r}: {source} is missing")
        else:
            source.mkdir(parents=True, exist_ok=True)
        return source

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_TASK: self.task,
            LABEL_EPOCH: str(self.epoch),
            LABEL_NODE: self.node,
            LABEL_REVISION: str(self.revision),
        }


@dataclass(frozen=True)
class Observed:
    id: str
    task: str
    epoch: int
    node: str
    state: ContainerState
    image: str = ""
    pid: int | None = None
    ip: str | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    health: HealthState | None = None
    """The runtime's own health check (Docker HEALTHCHECK), if the image has one."""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    cpus: float = 0.0
    memory: int = 0


@dataclass(frozen=True, slots=True)
class RawLine:
    """One line of a container's output, as the runtime read it."""

    t: datetime
    """When the runtime saw the line start (aware; the runtime documents its exact meaning)."""
    stream: LogStream
    data: bytes
    """The bytes of the line, without its trailing newline; never decoded."""
    partial: bool = False
    """The line goes on in the next ``RawLine`` of the same stream (cut at ``MAX_RAW_LINE``)."""


Progress = Callable[[str], None]


class Runtime(Protocol):
    name: str

    async def available(self) -> bool:
        """Whether the runtime answers at all (used to pick runtimes at agent start)."""
        ...

    async def ensure_image(self, image: str, progress: Progress | None = None) -> bool:
        """Make ``image`` present; True if it had to be pulled. Raises ``ImagePullError``."""
        ...

    async def start(self, spec: ContainerSpec) -> Observed:
        """Create and start a container for ``spec``; raises ``RuntimeFailure`` subclasses."""
        ...

    async def stop(self, container_id: str, timeout_s: float) -> None:
        """Stop gracefully (SIGTERM), then kill after ``timeout_s``. Idempotent."""
        ...

    async def remove(self, container_id: str) -> None:
        """Remove a stopped (or running: kill first) container. Idempotent."""
        ...

    async def list(self, node: str) -> list[Observed]:
        """Every container of this node, by the voiyd labels, including exited ones."""
        ...

    async def inspect(self, container_id: str) -> Observed | None:
        """The current state of one container, or None if it is gone."""
        ...

    async def exec_probe(self, container_id: str, cmd: builtins.list[str], timeout_s: float) -> int:
        """Run ``cmd`` inside the container (health probes); its exit code, 124 on timeout."""
        ...

    async def usage(self, container_id: str) -> Usage:
        """Current CPU (cores) and memory (bytes) use of a running container."""
        ...

    def logs(self, container_id: str, since: datetime | None = None) -> AsyncIterator[RawLine]:
        """The container's stdout and stderr lines from the start (or from ``since`` on: lines
        whose time is at or after it), in the order the runtime recorded them, following new
        output until the container has stopped and its output is drained; then the iteration
        ends. A second call replays the same lines with the same times. ``RuntimeFailure`` if
        the container is unknown."""
        ...

    async def close(self) -> None: ...
