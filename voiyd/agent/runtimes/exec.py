"""The exec runtime: tasks as plain host processes, each run by a shim that outlives the agent.

Every container is a directory ``<state_dir>/<task>-<epoch>-<random>`` holding ``spec.json``,
``launch.json``, the logs, the shim's and the command's pid records and, once it ended, the exit
code (the file names live in ``exec_shim``). State is derived from that directory and ``/proc``
only, so a restarted agent adopts what is still running; a pid counts as alive only with the
recorded start time and boot id.

What this runtime does not do, on purpose and in the open: no isolation (the process sees the
host's filesystem and network; ``ports`` are recorded, the process binds them itself), no
enforced ``cpus``/``memory`` limits (used for placement only; a warning is logged), no capability
changes (refused). A mount appears as a symlink at ``<container dir>/<destination>``, and the
container dir is the default working directory, so relative paths such as ``data/x`` reach it;
``read_only`` is not enforced (a template volume's files are read-only by their mode, which
binds every user but root). ``user`` needs the agent to run as root.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import grp
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from voiyd.agent.runtimes import exec_shim as on_disk
from voiyd.agent.runtimes.exec_logs import ExecLogReader
from voiyd.agent.runtimes.protocol import (
    LABEL_EPOCH,
    LABEL_NODE,
    LABEL_TASK,
    ContainerSpec,
    ContainerState,
    InvalidSpecError,
    Observed,
    Progress,
    RawLine,
    RuntimeFailure,
    Usage,
)
from voiyd.api.specs import TaskConfig

log = logging.getLogger(__name__)

_SHIM_MODULE = "voiyd.agent.runtimes.exec_shim"
_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BASE_LANG = "C.UTF-8"
_POLL_S = 0.02
_KILL_GRACE_S = 5.0
_SHIM_CANNOT_RUN = 1  # exec_shim's exit status when the command itself could not start
_EXIT_TIMEOUT = 124  # what `timeout(1)` answers
_EXIT_NOT_FOUND = 127
_EXIT_CANNOT_RUN = 126
_EXIT_KILLED = 128 + signal.SIGKILL
_ROOT = 0


class _Box:
    """One container directory; every property reads the disk again (the shim writes to it)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @property
    def shim(self) -> on_disk.ProcRecord | None:
        return on_disk.read_record(self.dir / on_disk.SHIM_FILE)

    @property
    def child(self) -> on_disk.ProcRecord | None:
        return on_disk.read_record(self.dir / on_disk.CHILD_FILE)

    @property
    def launch(self) -> dict[str, Any]:
        return on_disk.read_json(self.dir / on_disk.LAUNCH_FILE) or {}

    def running(self) -> bool:
        return on_disk.is_alive(self.shim) or on_disk.is_alive(self.child)

    def producing(self) -> bool:
        """Whether the output may still grow: the directory is there and the task not over."""
        if not (self.dir / on_disk.SPEC_FILE).exists():
            return False
        return self.running() or (self.shim is None and on_disk.read_exit_code(self.dir) is None)

    def signal(self, sig: int) -> None:
        """Signal the command's process group; the shim, if the command has not started yet."""
        child, shim = self.child, self.shim
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if child is not None and on_disk.is_alive(child):
                os.killpg(child.pid, sig)
            elif child is None and shim is not None and on_disk.is_alive(shim):
                os.kill(shim.pid, sig)

    def kill_shim(self) -> None:
        shim = self.shim
        if shim is not None and on_disk.is_alive(shim):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(shim.pid, signal.SIGKILL)

    def observe(self) -> Observed | None:
        spec = on_disk.read_json(self.dir / on_disk.SPEC_FILE)
        if spec is None:
            return None
        labels = {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}
        code = on_disk.read_exit_code(self.dir)
        child = self.child
        state = self._state(code)
        return Observed(
            id=self.dir.name,
            task=labels.get(LABEL_TASK, ""),
            epoch=int(labels.get(LABEL_EPOCH, "0") or 0),
            node=labels.get(LABEL_NODE, ""),
            state=state,
            image=str(spec.get("image") or ""),
            pid=child.pid if child is not None and state == "running" else None,
            exit_code=code,
            started_at=_parse_time(child.started_at) if child is not None else None,
            finished_at=_mtime(self.dir / on_disk.EXIT_FILE),
            labels=labels,
        )

    def _state(self, code: int | None) -> ContainerState:
        if code is not None:
            return "exited"
        if self.running():
            return "running"
        # No shim record: start() is still launching it. A dead shim without an exit code
        # (killed, or the machine rebooted) means the task is over, its code unknown.
        return "created" if self.shim is None else "exited"


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def _resolve_user(user: str | None) -> tuple[int | None, int | None, str]:
    """``user[:group]`` as uid, gid and home; (None, None, our home) to run as ourselves."""
    if user is None:
        try:
            return None, None, pwd.getpwuid(os.geteuid()).pw_dir
        except KeyError:
            return None, None, "/"
    if os.geteuid() != _ROOT:
        raise InvalidSpecError(f"user {user!r}: the exec runtime switches users only as root")
    name, _, group = user.partition(":")
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        if not name.isdigit():
            raise InvalidSpecError(f"unknown user {name!r} on this node") from None
        entry = None
    uid = entry.pw_uid if entry else int(name)
    gid = entry.pw_gid if entry else uid
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise InvalidSpecError(f"unknown group {group!r} on this node") from None
    return uid, gid, entry.pw_dir if entry else "/"


def _check_supported(config: TaskConfig) -> None:
    if not config.args:
        raise InvalidSpecError("the exec runtime needs args: the command line to run")
    if config.capabilities.add or config.capabilities.drop:
        raise InvalidSpecError(
            "the exec runtime runs plain processes and cannot add or drop capabilities"
        )


def _link_mounts(directory: Path, spec: ContainerSpec) -> None:
    """Each mount as a symlink ``<directory>/<destination>`` to its host source."""
    for mount in spec.config.mounts:
        parts = PurePosixPath(mount.destination).parts[1:]
        if not parts or ".." in parts or parts[0] in on_disk.STATE_FILES:
            raise InvalidSpecError(f"mount destination {mount.destination!r} is not usable here")
        source = spec.prepare_volume(mount) if mount.type == "volume" else Path(mount.source)
        link = directory.joinpath(*parts)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source, target_is_directory=True)


def _spec_record(container_id: str, spec: ContainerSpec) -> dict[str, Any]:
    return {
        "id": container_id,
        "labels": spec.labels,
        "image": spec.config.image or "",
        "config": spec.config.model_dump(mode="json"),
        "created_at": datetime.now(UTC).isoformat(),
        "limits_enforced": False,
    }


def _launch_record(directory: Path, config: TaskConfig) -> dict[str, Any]:
    uid, gid, home = _resolve_user(config.user)
    env = {"PATH": _BASE_PATH, "HOME": home, "LANG": _BASE_LANG, **config.env}
    return {"env": env, "cwd": config.workdir or str(directory), "uid": uid, "gid": gid}


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


class ExecRuntime:
    """Plain processes under ``state_dir`` (one directory per node agent)."""

    name = "exec"

    def __init__(
        self, state_dir: Path, *, python: str = sys.executable, spawn_timeout_s: float = 30.0
    ) -> None:
        self._state_dir = state_dir
        self._python = python
        self._spawn_timeout_s = spawn_timeout_s
        self._samples: dict[str, tuple[int, float]] = {}
        self._hz = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")

    async def available(self) -> bool:
        return on_disk.read_stat(os.getpid()) is not None

    async def ensure_image(self, image: str, progress: Progress | None = None) -> bool:
        return False

    async def start(self, spec: ContainerSpec) -> Observed:
        config = spec.config
        _check_supported(config)
        container_id = f"{spec.task}-{spec.epoch}-{secrets.token_hex(3)}"
        directory = self._state_dir / container_id
        launch = _launch_record(directory, config)  # checks the user before anything is made
        directory.mkdir(parents=True)
        try:
            _link_mounts(directory, spec)
            if launch["uid"] is not None:
                os.chown(directory, launch["uid"], launch["gid"])
            on_disk.write_atomic(directory / on_disk.LAUNCH_FILE, json.dumps(launch))
            on_disk.write_atomic(
                directory / on_disk.SPEC_FILE, json.dumps(_spec_record(container_id, spec))
            )
            await self._spawn(directory, config.args)
        except BaseException:
            await self._kill(_Box(directory))
            shutil.rmtree(directory, ignore_errors=True)
            raise
        if config.resources.cpus or config.resources.memory:
            log.warning("task %s: the exec runtime does not enforce cpus/memory limits", spec.task)
        observed = _Box(directory).observe()
        assert observed is not None
        return observed

    async def _spawn(self, directory: Path, argv: list[str]) -> None:
        cmd = [self._python, "-m", _SHIM_MODULE, str(directory), "--", *argv]
        with (directory / on_disk.SHIM_LOG_FILE).open("ab") as shim_log:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=shim_log,
                start_new_session=True,
            )
        try:
            async with asyncio.timeout(self._spawn_timeout_s):
                status = await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeFailure(
                f"the exec shim did not start within {self._spawn_timeout_s:g} s"
            ) from None
        if status == _SHIM_CANNOT_RUN:
            raise InvalidSpecError(_tail(directory / on_disk.SHIM_LOG_FILE).removeprefix("error: "))
        if status != 0:
            raise RuntimeFailure(
                f"the exec shim failed ({status}): {_tail(directory / on_disk.SHIM_LOG_FILE)}"
            )

    def _box(self, container_id: str) -> _Box | None:
        if not container_id or "/" in container_id or container_id.startswith("."):
            return None
        directory = self._state_dir / container_id
        return _Box(directory) if (directory / on_disk.SPEC_FILE).is_file() else None

    async def stop(self, container_id: str, timeout_s: float) -> None:
        box = self._box(container_id)
        if box is None or not box.running():
            return
        box.signal(signal.SIGTERM)
        if not await _stopped(box, timeout_s):
            await self._kill(box)

    async def _kill(self, box: _Box) -> None:
        if not box.running():
            return
        box.signal(signal.SIGKILL)
        if not await _stopped(box, _KILL_GRACE_S):
            box.kill_shim()  # a shim that does not notice its command died: stop waiting for it
            await _stopped(box, _KILL_GRACE_S)
        if on_disk.read_exit_code(box.dir) is None and box.shim is not None and not box.running():
            on_disk.write_atomic(box.dir / on_disk.EXIT_FILE, f"{_EXIT_KILLED}\n")

    async def remove(self, container_id: str) -> None:
        box = self._box(container_id)
        if box is None:
            return
        await self._kill(box)
        self._samples.pop(container_id, None)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(box.dir)  # symlinks (mounts) are unlinked, never followed

    async def list(self, node: str) -> list[Observed]:
        if not self._state_dir.is_dir():
            return []
        found = (_Box(d).observe() for d in sorted(self._state_dir.iterdir()) if d.is_dir())
        return [o for o in found if o is not None and o.node == node]

    async def inspect(self, container_id: str) -> Observed | None:
        box = self._box(container_id)
        return box.observe() if box is not None else None

    async def exec_probe(self, container_id: str, cmd: builtins.list[str], timeout_s: float) -> int:
        box = self._box(container_id)
        if box is None or not box.running():
            raise RuntimeFailure(f"container {container_id} is not running")
        launch = box.launch
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                env=launch.get("env"),
                cwd=launch.get("cwd"),
                user=launch.get("uid"),
                group=launch.get("gid"),
                extra_groups=[] if launch.get("uid") is not None else None,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError:
            return _EXIT_NOT_FOUND
        except PermissionError:
            return _EXIT_CANNOT_RUN
        try:
            async with asyncio.timeout(timeout_s):
                return on_disk.exit_status(await proc.wait())
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return _EXIT_TIMEOUT

    async def usage(self, container_id: str) -> Usage:
        box = self._box(container_id)
        if box is None:
            raise RuntimeFailure(f"container {container_id} is gone")
        child = box.child
        if child is None or not on_disk.is_alive(child):
            return Usage()
        ticks, pages = on_disk.group_totals(child.pid)
        now = time.monotonic()
        previous = self._samples.get(container_id)
        self._samples[container_id] = (ticks, now)
        if previous is not None and now > previous[1]:
            seconds, cpu_s = now - previous[1], (ticks - previous[0]) / self._hz
        else:  # the first sample: the average since the command started
            seconds, cpu_s = on_disk.uptime_s() - child.start_ticks / self._hz, ticks / self._hz
        return Usage(
            cpus=max(0.0, cpu_s / seconds) if seconds > 0 else 0.0, memory=pages * self._page
        )

    async def logs(
        self, container_id: str, since: datetime | None = None
    ) -> AsyncIterator[RawLine]:
        """Tails the files the command writes; see ``exec_logs`` for what the times mean."""
        box = self._box(container_id)
        if box is None:
            raise RuntimeFailure(f"container {container_id} is gone")
        async for line in ExecLogReader(box.dir, box.producing).follow(since):
            yield line

    async def close(self) -> None:
        """Nothing to close: the tasks belong to their shims, not to this object."""


async def _stopped(box: _Box, timeout_s: float) -> bool:
    """Poll until neither the shim nor the command runs; False if ``timeout_s`` passed first."""
    deadline = time.monotonic() + timeout_s
    while box.running():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True
