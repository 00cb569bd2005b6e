"""The processes a benchmark run needs: a nats-server, ``voiyd-server`` and a bare relay.

The nats-server is the tests' helper (random loopback port, JetStream in a temp dir).
``voiyd-server`` runs as its own OS process, as in production, so the client and the server never
share an event loop; so does the relay. Their peak RSS and CPU time are read from ``/proc``.
Whoever starts a process here stops it, by its own pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from tests.natsserver import NatsServer, nats_server_binary
from voiyd.bus.rpc import call
from voiyd.errors import UnavailableError

__all__ = [
    "Child",
    "NatsServer",
    "nats_server_binary",
    "read_cpu_s",
    "read_peak_rss",
    "relay_argv",
    "voiyd_server_argv",
]

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_PROBE_TIMEOUT_S = 1.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def read_peak_rss(pid: int) -> int:
    """Peak resident set size (``VmHWM``) of ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def read_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) " the state is field 3 (index 0): utime (14) and stime (15) are 11, 12.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def voiyd_server_argv(nats_url: str, data_dir: Path, samples_to: Path | None) -> list[str]:
    """``voiyd-server``'s command line; with ``samples_to``, under ``benchmarks.sampler``."""
    runner = ["-m", "benchmarks.sampler", str(samples_to)] if samples_to is not None else ["-m"]
    return [
        sys.executable,
        *runner,
        "voiyd.server.main",
        "--nats-url",
        nats_url,
        "--data-dir",
        str(data_dir),
    ]


def relay_argv(nats_url: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.relay", nats_url]


@dataclass
class Child:
    """A child process whose stdout and stderr go to ``log_path``."""

    name: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.proc.pid

    def start(self, argv: Sequence[str]) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    async def wait_answering(self, nc: Client, subject: str, body: dict[str, Any]) -> None:
        """Wait until a request on ``subject`` gets a reply (voiyd-server serves once caught up)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            try:
                await call(nc, subject, body, timeout=_PROBE_TIMEOUT_S)
                return
            except UnavailableError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {READY_TIMEOUT_S:g}s")

    def stop(self) -> None:
        """SIGTERM (a graceful stop drains NATS), then SIGKILL if it has not exited in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
