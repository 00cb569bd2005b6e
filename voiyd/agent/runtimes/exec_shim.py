"""The shim that runs one exec-runtime task, and the on-disk records it shares with ``exec.py``.

``python -m voiyd.agent.runtimes.exec_shim <container-dir> -- argv...`` forks once and returns
when the command has been started (exit 0) or could not be (exit 1, the reason on stderr). The
forked supervisor stays behind in the session the agent gave it: it records its own pid and
process start time, runs the command in a process group of its own (env, cwd and user from
``launch.json``), forwards SIGTERM to that group, waits, kills what the command left in its group
(as Docker does when PID 1 exits) and writes the exit code atomically. The agent may restart at
any time meanwhile; the records let the next agent adopt the task, safe against pid reuse.

This module is imported by the shim process itself, so it must use the standard library only
(and ``voiyd``, ``voiyd.agent`` and ``voiyd.agent.runtimes`` must stay cheap to import).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

SPEC_FILE = "spec.json"
LAUNCH_FILE = "launch.json"
SHIM_FILE = "shim.json"
CHILD_FILE = "child.json"
EXIT_FILE = "exit_code"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
SHIM_LOG_FILE = "shim.log"
LOG_INDEX_FILE = "logs.idx"
"""When the runtime read each chunk of the two logs (written by the agent, see exec_logs)."""
STATE_FILES = frozenset(
    {SPEC_FILE, LAUNCH_FILE, SHIM_FILE, CHILD_FILE, EXIT_FILE, STDOUT_FILE, STDERR_FILE}
    | {SHIM_LOG_FILE, LOG_INDEX_FILE}
)
_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys/kernel/random/boot_id"
_STAT_STARTTIME = 22  # field numbers of /proc/<pid>/stat, as proc(5) counts them
_STAT_STATE = 3
_STAT_PGRP = 5
_STAT_UTIME = 14
_EXIT_NOT_FOUND = 127  # what a shell answers for a command it cannot find
_EXIT_CANNOT_RUN = 126
_EXIT_SHIM_FAILED = 70  # EX_SOFTWARE
_SIGNAL_BASE = 128


@dataclass(frozen=True)
class ProcStat:
    """The few fields of ``/proc/<pid>/stat`` the exec runtime needs."""

    state: str
    pgrp: int
    cpu_ticks: int
    start_ticks: int


@dataclass(frozen=True)
class ProcRecord:
    """A process as recorded when it started: pid, start time and boot, so reuse is detected."""

    pid: int
    start_ticks: int
    boot_id: str
    started_at: str = ""


def read_stat(pid: int) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; None when the process is gone (or not ours to read)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()

    def field(n: int) -> str:
        return rest[n - _STAT_STATE]  # rest[0] is field 3

    try:
        return ProcStat(
            state=field(_STAT_STATE),
            pgrp=int(field(_STAT_PGRP)),
            cpu_ticks=int(field(_STAT_UTIME)) + int(field(_STAT_UTIME + 1)),
            start_ticks=int(field(_STAT_STARTTIME)),
        )
    except (IndexError, ValueError):
        return None


def group_totals(pgid: int) -> tuple[int, int]:
    """CPU ticks and resident pages of every process in group ``pgid``."""
    ticks = pages = 0
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is None or stat.pgrp != pgid:
            continue
        ticks += stat.cpu_ticks
        with contextlib.suppress(OSError, ValueError, IndexError):
            pages += int((entry / "statm").read_text().split()[1])
    return ticks, pages


def uptime_s() -> float:
    return float((_PROC / "uptime").read_text().split()[0])


def boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def record_of(pid: int, started_at: str = "") -> ProcRecord:
    stat = read_stat(pid)
    return ProcRecord(pid, stat.start_ticks if stat else -1, boot_id(), started_at)


def is_alive(record: ProcRecord | None) -> bool:
    """Whether the recorded process still runs: same pid, same start time, same boot."""
    if record is None or record.boot_id != boot_id():
        return False
    stat = read_stat(record.pid)
    return stat is not None and stat.start_ticks == record.start_ticks and stat.state not in "ZX"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def write_record(path: Path, record: ProcRecord) -> None:
    write_atomic(path, json.dumps(record.__dict__))


def read_record(path: Path) -> ProcRecord | None:
    data = read_json(path)
    if data is None:
        return None
    try:
        return ProcRecord(
            int(data["pid"]),
            int(data["start_ticks"]),
            str(data["boot_id"]),
            str(data.get("started_at", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_exit_code(directory: Path) -> int | None:
    try:
        return int((directory / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def exit_status(returncode: int) -> int:
    """A shell-style exit status: killed by signal N is 128+N."""
    return _SIGNAL_BASE - returncode if returncode < 0 else returncode


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _Supervisor:
    """The forked process that owns the command for its whole life."""

    def __init__(self, directory: Path, command: list[str], launch: dict[str, Any]) -> None:
        self.directory = directory
        self.command = command
        self.launch = launch
        self.child: subprocess.Popen[bytes] | None = None
        self.term_requested = False
        self.reaping = False  # once the child is reaped, its pid (our group id) may be reused

    def on_term(self, signum: int, frame: FrameType | None) -> None:
        self.term_requested = True
        if self.child is not None and not self.reaping:
            with contextlib.suppress(OSError):
                os.killpg(self.child.pid, signal.SIGTERM)

    def spawn(self) -> str:
        """Start the command; '' on success, else why it could not start."""
        uid, gid = self.launch.get("uid"), self.launch.get("gid")
        d = self.directory
        with (d / STDOUT_FILE).open("ab") as out, (d / STDERR_FILE).open("ab") as err:
            try:
                self.child = subprocess.Popen(
                    self.command,
                    env=self.launch.get("env", {}),
                    cwd=self.launch.get("cwd") or str(d),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    process_group=0,
                    user=uid,
                    group=gid,
                    extra_groups=[] if uid is not None else None,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                code = _EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else _EXIT_CANNOT_RUN
                write_atomic(d / EXIT_FILE, f"{code}\n")
                return f"cannot run {self.command[0]!r}: {exc}"
        write_record(d / CHILD_FILE, record_of(self.child.pid, _now()))
        return ""

    def wait(self) -> int:
        child = self.child
        assert child is not None
        if self.term_requested:
            self.on_term(signal.SIGTERM, None)
        # Wait without reaping, so the group id cannot be reused while we kill what is left in it.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        self.reaping = True
        code = exit_status(child.wait())
        write_atomic(self.directory / EXIT_FILE, f"{code}\n")
        return code


def _supervise(directory: Path, command: list[str], ready_fd: int) -> None:
    launch = read_json(directory / LAUNCH_FILE) or {}
    sup = _Supervisor(directory, command, launch)
    signal.signal(signal.SIGTERM, sup.on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    write_record(directory / SHIM_FILE, record_of(os.getpid(), _now()))
    problem = sup.spawn()
    os.write(ready_fd, (f"error: {problem}" if problem else "ok").encode())
    os.close(ready_fd)
    if not problem:
        sup.wait()


def _await_start(ready_fd: int) -> int:
    chunks = []
    while chunk := os.read(ready_fd, 4096):
        chunks.append(chunk)
    answer = b"".join(chunks).decode(errors="replace")
    if answer == "ok":
        return 0
    sys.stderr.write((answer or "error: the shim died before starting the command") + "\n")
    return 1


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m voiyd.agent.runtimes.exec_shim DIR -- ARGV...\n")
        return 2
    directory, command = Path(argv[0]), argv[2:]
    ready_r, ready_w = os.pipe()
    if os.fork():
        os.close(ready_w)
        return _await_start(ready_r)
    os.close(ready_r)
    try:
        _supervise(directory, command, ready_w)
    except BaseException as exc:  # the supervisor must never return into the parent's code
        with contextlib.suppress(BaseException):
            sys.stderr.write(f"exec shim failed: {exc!r}\n")
        os._exit(_EXIT_SHIM_FAILED)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
