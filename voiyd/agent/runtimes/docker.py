"""The Docker runtime: containers through the engine's API (aiodocker), labelled for voiyd.

Docker's answers are plain dicts; the typed helpers below read them, and every aiodocker error is
translated at this edge (``raise ... from exc``) into the protocol's ``RuntimeFailure`` tree:
a refused spec is ``InvalidSpecError``, a silent or absent engine ``RuntimeUnavailable``, a
missing image that cannot be pulled ``ImagePullError``. Every call to the engine has a deadline.
Named volumes are host directories under the spec's ``volumes_dir``, bound into the container;
nothing here ever deletes their data. Template volumes are the directories the agent wrote their
files to (``ContainerSpec.templates``), always bound read-only.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from voiyd.agent.runtimes import docker_logs
from voiyd.agent.runtimes.protocol import (
    LABEL_EPOCH,
    LABEL_NODE,
    LABEL_TASK,
    ContainerSpec,
    ContainerState,
    HealthState,
    ImagePullError,
    InvalidSpecError,
    Observed,
    Progress,
    RawLine,
    RuntimeFailure,
    RuntimeUnavailable,
    Usage,
)
from voiyd.api.specs import Mount

DEFAULT_URL = "unix:///var/run/docker.sock"
LOG_DRIVER = "local"
"""Keeps output as bytes (``json-file`` would replace bytes that are not UTF-8) and rotates it."""
_NO_ENGINE = 900  # aiodocker's status for "cannot connect to the engine"
_BAD_REQUEST, _NOT_FOUND, _CONFLICT = 400, 404, 409
_STATES: dict[str, ContainerState] = {
    "created": "created",
    "running": "running",
    "paused": "running",
    "restarting": "running",
    "removing": "exited",
    "exited": "exited",
    "dead": "exited",
}
_HEALTH: dict[str, HealthState] = {
    "starting": "starting",
    "healthy": "healthy",
    "unhealthy": "unhealthy",
}
_ZERO_TIME = "0001-01-01"
_NANO = 1_000_000_000
_EXIT_TIMEOUT = 124
_EXIT_CANNOT_RUN = 126
_EXIT_NOT_FOUND = 127
_OCI_EXEC_FAILED = "OCI runtime exec failed"
_NOT_THERE = "executable file not found"
_SPEC_PROBLEMS = ("unable to find user", "no matching entries in passwd", _NOT_THERE)
_PROBE_POLL_S = 0.05
_AVAILABLE_TIMEOUT_S = 5.0


def container_name(spec: ContainerSpec) -> str:
    """``voiyd-<task>-<epoch>-r<revision>``: one name per placement of one incarnation.

    The revision (the task's, when the assignment was written) tells a task deleted and created
    again apart: its epochs start over at 1 while the old incarnation's container may still be
    stopping, on this node or on another agent sharing the engine."""
    return f"voiyd-{spec.task}-{spec.epoch}-r{spec.revision}"


def _d(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (Docker sends null for empty maps)."""
    return value if isinstance(value, dict) else {}


def _s(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _i(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(text: str) -> datetime | None:
    if not text or text.startswith(_ZERO_TIME):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _ip(network: Mapping[str, Any]) -> str | None:
    if ip := _s(network, "IPAddress"):
        return ip
    for net in _d(network.get("Networks")).values():
        if ip := _s(_d(net), "IPAddress"):
            return ip
    return None


def observed_from_inspect(data: Mapping[str, Any]) -> Observed:
    """An ``Observed`` from the engine's ``GET /containers/<id>/json`` answer."""
    config, state = _d(data.get("Config")), _d(data.get("State"))
    labels = {str(k): str(v) for k, v in _d(config.get("Labels")).items()}
    status = _STATES.get(_s(state, "Status"), "exited")
    try:
        epoch = int(labels.get(LABEL_EPOCH, "0"))
    except ValueError:
        epoch = 0
    return Observed(
        id=_s(data, "Id"),
        task=labels.get(LABEL_TASK, ""),
        epoch=epoch,
        node=labels.get(LABEL_NODE, ""),
        state=status,
        image=_s(config, "Image"),
        pid=_i(state, "Pid") or None,
        ip=_ip(_d(data.get("NetworkSettings"))) if status == "running" else None,
        exit_code=_i(state, "ExitCode") if status == "exited" else None,
        started_at=_time(_s(state, "StartedAt")),
        finished_at=_time(_s(state, "FinishedAt")) if status == "exited" else None,
        health=_HEALTH.get(_s(_d(state.get("Health")), "Status")),
        labels=labels,
    )


def create_body(spec: ContainerSpec) -> dict[str, Any]:
    """The ``POST /containers/create`` body for ``spec`` (volume directories must exist)."""
    cfg = spec.config
    ports: dict[str, list[dict[str, str]]] = {}
    for p in cfg.ports:
        ports.setdefault(f"{p.container}/{p.protocol}", []).append(
            {"HostIp": p.host_ip, "HostPort": str(p.host)}
        )
    host: dict[str, Any] = {
        "Binds": [_bind(spec, m) for m in cfg.mounts],
        "PortBindings": ports,
        "Privileged": cfg.privileged,
        "CapAdd": list(cfg.capabilities.add),
        "CapDrop": list(cfg.capabilities.drop),
        "NanoCpus": round(cfg.resources.cpus * _NANO) if cfg.resources.cpus else 0,
        "Memory": cfg.resources.memory or 0,
        "RestartPolicy": {"Name": "no"},  # restarts are the agent's decision, recorded as events
        "LogConfig": {"Type": LOG_DRIVER, "Config": {}},
    }
    body: dict[str, Any] = {
        "Image": cfg.image,
        "Env": [f"{k}={v}" for k, v in cfg.env.items()],
        "Labels": spec.labels,
        "ExposedPorts": {key: {} for key in ports},
        "StopTimeout": math.ceil(cfg.stop_timeout_s),
        "HostConfig": host,
    }
    if cfg.args:
        body["Cmd"] = list(cfg.args)
    if cfg.workdir:
        body["WorkingDir"] = cfg.workdir
    if cfg.user:
        body["User"] = cfg.user
    return body


def _bind(spec: ContainerSpec, mount: Mount) -> str:
    host = str(spec.volume_path(mount.source)) if mount.type == "volume" else mount.source
    bind = f"{host}:{mount.destination}"
    return f"{bind}:ro" if spec.read_only(mount) else bind


def _usage_from_stats(stats: Mapping[str, Any]) -> Usage:
    cpu, pre = _d(stats.get("cpu_stats")), _d(stats.get("precpu_stats"))
    total = _i(_d(cpu.get("cpu_usage")), "total_usage") - _i(
        _d(pre.get("cpu_usage")), "total_usage"
    )
    system = _i(cpu, "system_cpu_usage") - _i(pre, "system_cpu_usage")
    online = _i(cpu, "online_cpus") or len(_d(cpu.get("cpu_usage")).get("percpu_usage") or []) or 1
    mem = _d(stats.get("memory_stats"))
    detail = _d(mem.get("stats"))
    inactive = _i(detail, "total_inactive_file") or _i(detail, "inactive_file")
    return Usage(
        cpus=total / system * online if system > 0 and total > 0 else 0.0,
        memory=max(0, _i(mem, "usage") - inactive),
    )


def _translate(exc: DockerError, what: str) -> RuntimeFailure:
    message = f"docker {what}: {exc.message}"
    if exc.status == _NO_ENGINE:
        return RuntimeUnavailable(message)
    if exc.status == _BAD_REQUEST or any(p in exc.message for p in _SPEC_PROBLEMS):
        return InvalidSpecError(message)
    return RuntimeFailure(message)


def _progress_line(item: Mapping[str, Any]) -> str:
    parts = [_s(item, "id"), _s(item, "status"), _s(item, "progress")]
    head, rest = parts[0], " ".join(p for p in parts[1:] if p)
    return f"{head}: {rest}" if head and rest else head or rest


class DockerRuntime:
    """Containers on the local Docker engine; one aiodocker session, opened on first use."""

    name = "docker"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        request_timeout_s: float = 60.0,
        pull_timeout_s: float = 300.0,
    ) -> None:
        self._url = url
        self._request_timeout_s = request_timeout_s
        self._pull_timeout_s = pull_timeout_s
        self._docker: aiodocker.Docker | None = None

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._url)
        return self._docker

    @contextlib.asynccontextmanager
    async def _calling(self, what: str, timeout_s: float | None = None) -> AsyncIterator[None]:
        """Bound one conversation with the engine and translate what goes wrong in it."""
        limit = self._request_timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit):
                yield
        except TimeoutError as exc:
            raise RuntimeUnavailable(f"docker {what}: no answer within {limit:g} s") from exc
        except DockerError as exc:
            raise _translate(exc, what) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise RuntimeUnavailable(f"docker {what}: {exc}") from exc

    async def available(self) -> bool:
        try:
            async with asyncio.timeout(_AVAILABLE_TIMEOUT_S):
                await self._client().version()
        except (TimeoutError, DockerError, aiohttp.ClientError, OSError):
            return False
        return True

    async def ensure_image(self, image: str, progress: Progress | None = None) -> bool:
        docker = self._client()
        async with self._calling(f"inspect image {image}"):
            try:
                await docker.images.inspect(image)
                return False
            except DockerError as exc:
                if exc.status != _NOT_FOUND:
                    raise
        await self._pull(docker, image, progress)
        async with self._calling(f"inspect image {image}"):
            try:
                await docker.images.inspect(image)
            except DockerError as exc:
                if exc.status != _NOT_FOUND:
                    raise
                raise ImagePullError(f"pulled {image} but the engine does not have it") from exc
        return True

    async def _pull(self, docker: aiodocker.Docker, image: str, progress: Progress | None) -> None:
        try:
            async with asyncio.timeout(self._pull_timeout_s):
                async for item in docker.images.pull(image, stream=True):
                    if progress is not None and (line := _progress_line(_d(item))):
                        progress(line)
        except TimeoutError as exc:
            raise ImagePullError(
                f"pulling {image} did not finish within {self._pull_timeout_s:g} s"
            ) from exc
        except DockerError as exc:
            if exc.status == _NO_ENGINE:
                raise RuntimeUnavailable(f"docker pull {image}: {exc.message}") from exc
            raise ImagePullError(f"cannot pull {image}: {exc.message}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise RuntimeUnavailable(f"docker pull {image}: {exc}") from exc

    async def start(self, spec: ContainerSpec) -> Observed:
        if not spec.config.image:
            raise InvalidSpecError("the docker runtime needs an image")
        for mount in spec.config.mounts:
            if mount.type == "volume":
                spec.prepare_volume(mount)
        body, name = create_body(spec), container_name(spec)
        docker = self._client()
        async with self._calling(f"start {name}"):
            container = await self._create(docker, body, name)
            try:
                await container.start()
            except DockerError:
                with contextlib.suppress(DockerError):
                    await container.delete(force=True)
                raise
            return observed_from_inspect(await container.show())

    async def _create(
        self, docker: aiodocker.Docker, body: dict[str, Any], name: str
    ) -> aiodocker.containers.DockerContainer:
        try:
            return await docker.containers.create(body, name=name)
        except DockerError as exc:
            if exc.status == _NOT_FOUND:
                raise ImagePullError(f"image {body['Image']} is not on this node") from exc
            if exc.status != _CONFLICT:
                raise
        # A container of that name is left from an earlier start of this task and epoch.
        old = await docker.containers.container(name).show()
        if _d(old.get("State")).get("Running"):
            raise RuntimeFailure(f"container {name} is already running ({_s(old, 'Id')[:12]})")
        await docker.containers.container(name).delete(force=True)
        return await docker.containers.create(body, name=name)

    async def stop(self, container_id: str, timeout_s: float) -> None:
        grace = max(0, math.ceil(timeout_s))
        async with self._calling(f"stop {container_id}", grace + self._request_timeout_s):
            try:
                await self._client().containers.container(container_id).stop(t=grace)
            except DockerError as exc:
                if exc.status != _NOT_FOUND:
                    raise

    async def remove(self, container_id: str) -> None:
        async with self._calling(f"remove {container_id}"):
            try:
                # v: the image's anonymous volumes go too, as with `docker run --rm`; voiyd's
                # volumes are bind mounts of host directories, which Docker never deletes.
                container = self._client().containers.container(container_id)
                await container.delete(force=True, v=True)
            except DockerError as exc:
                # 409: another call is removing it already; either way it is going.
                if exc.status not in (_NOT_FOUND, _CONFLICT):
                    raise

    async def list(self, node: str) -> list[Observed]:
        docker = self._client()
        filters = json.dumps({"label": [f"{LABEL_NODE}={node}"]})
        async with self._calling(f"list containers of {node}"):
            found = await docker.containers.list(all=True, filters=filters)
            # Every inspect finishes (no stray task); then the first failure, if any, is raised.
            seen = await asyncio.gather(
                *(self._show(docker, c.id) for c in found), return_exceptions=True
            )
            for item in seen:
                if isinstance(item, BaseException):
                    raise item
        return [observed_from_inspect(data) for data in seen if isinstance(data, dict)]

    async def _show(self, docker: aiodocker.Docker, container_id: str) -> dict[str, Any] | None:
        try:
            return await docker.containers.container(container_id).show()
        except DockerError as exc:
            if exc.status == _NOT_FOUND:
                return None
            raise

    async def inspect(self, container_id: str) -> Observed | None:
        async with self._calling(f"inspect {container_id}"):
            data = await self._show(self._client(), container_id)
        return observed_from_inspect(data) if data is not None else None

    async def exec_probe(self, container_id: str, cmd: builtins.list[str], timeout_s: float) -> int:
        container = self._client().containers.container(container_id)
        async with self._calling(f"exec in {container_id}"):
            try:
                probe = await container.exec(cmd, stdout=False, stderr=False)
                await probe.start(detach=True)
            except DockerError as exc:
                if exc.status in (_NOT_FOUND, _CONFLICT):
                    raise RuntimeFailure(f"container {container_id} is not running") from exc
                if _OCI_EXEC_FAILED not in exc.message:
                    raise
                # As `docker exec` answers: 127 when the command is not there, else 126.
                return _EXIT_NOT_FOUND if _NOT_THERE in exc.message else _EXIT_CANNOT_RUN
        deadline = time.monotonic() + timeout_s
        while True:
            async with self._calling(f"inspect exec in {container_id}"):
                state = await probe.inspect()
            if not state.get("Running") and state.get("ExitCode") is not None:
                return _i(state, "ExitCode")
            if time.monotonic() >= deadline:
                return _EXIT_TIMEOUT  # Docker cannot kill an exec; it ends with its container
            await asyncio.sleep(_PROBE_POLL_S)

    async def usage(self, container_id: str) -> Usage:
        # stream=False: the engine samples twice, about a second apart, so CPU has a delta.
        async with self._calling(f"stats of {container_id}"):
            try:
                stats = await self._client().containers.container(container_id).stats(stream=False)
            except DockerError as exc:
                if exc.status == _NOT_FOUND:
                    raise RuntimeFailure(f"container {container_id} is gone") from exc
                raise
        return _usage_from_stats(_d(stats[0])) if stats else Usage()

    def logs(self, container_id: str, since: datetime | None = None) -> AsyncIterator[RawLine]:
        """The engine's log of the container, followed while it runs (see ``docker_logs``)."""
        return docker_logs.container_logs(
            self._client(), self._calling, self.inspect, container_id, since
        )

    async def close(self) -> None:
        if self._docker is not None:
            docker, self._docker = self._docker, None
            await docker.close()
