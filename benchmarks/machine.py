"""What the figures were measured on: CPUs, memory, versions, date, commit and load."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks.processes import nats_server_binary

_TOOL_TIMEOUT_S = 10.0


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _output(*cmd: str) -> str:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def _memory_gib() -> float:
    total = _first("/proc/meminfo", "MemTotal")
    try:
        return int(total.split()[0]) / 1024**2
    except (ValueError, IndexError):
        return 0.0


def _commit() -> str:
    head = _output("git", "rev-parse", "--short", "HEAD")
    dirty = _output("git", "status", "--porcelain", "--untracked-files=no")
    return f"{head}{' (with uncommitted changes)' if dirty and dirty != 'unknown' else ''}"


@dataclass(frozen=True)
class Machine:
    cpus: int
    cpu_model: str
    memory_gib: float
    python: str
    nats_server: str
    nats_py: str
    commit: str
    date: str
    load_before: str

    @classmethod
    def describe(cls) -> Machine:
        binary = nats_server_binary()
        return cls(
            cpus=len(os.sched_getaffinity(0)),
            cpu_model=_first("/proc/cpuinfo", "model name"),
            memory_gib=_memory_gib(),
            python=f"{platform.python_implementation()} {platform.python_version()}",
            nats_server=_output(binary, "--version").removeprefix("nats-server: ")
            if binary
            else "unknown",
            nats_py=metadata.version("nats-py"),
            commit=_commit(),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            load_before=load_average(),
        )

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("CPUs (nproc)", str(self.cpus)),
            ("CPU model", self.cpu_model),
            ("RAM", f"{self.memory_gib:.1f} GiB"),
            ("Python", self.python),
            ("nats-server", self.nats_server),
            ("nats-py", self.nats_py),
            ("voiyd commit", self.commit),
            ("date", self.date),
            ("load average before the run", self.load_before),
        ]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"
