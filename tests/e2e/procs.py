"""voiyd daemons as real OS processes for end-to-end tests: start, wait for ready, kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class DaemonProcess:
    """One voiyd daemon (``python -m <module>``) with its stderr in a log file."""

    def __init__(
        self,
        module: str,
        args: list[str],
        log_path: Path,
        ready_text: str,
        *,
        python: str = sys.executable,
        cwd: Path | None = None,
    ) -> None:
        self.python = python
        """The interpreter (an upgrade test runs an agent from a venv of its own)."""
        self.cwd = cwd
        self.module = module
        self.args = args
        self.log_path = log_path
        self.ready_text = ready_text
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, timeout: float = 60.0) -> DaemonProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", self.module, *self.args],
                cwd=self.cwd,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited early:\n{self.log_tail()}")
            if self.ready_text in self.log_text():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.module} not ready in {timeout}s:\n{self.log_tail()}")

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[self._offset :].decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def voiyd_server(nats_url: str, data_dir: Path, *extra: str) -> DaemonProcess:
    return DaemonProcess(
        "voiyd.server.main",
        ["--nats-url", nats_url, "--data-dir", str(data_dir), *extra],
        data_dir.parent / f"{data_dir.name}.log",
        " ready: projection at seq ",
    )


def voiyd_scheduler(nats_url: str, log_dir: Path, name: str = "scheduler") -> DaemonProcess:
    return DaemonProcess(
        "voiyd.scheduler.main",
        ["--nats-url", nats_url],
        log_dir / f"{name}.log",
        " ready: view at seq ",
    )


def voiyd_node(nats_url: str, name: str, data_dir: Path, *extra: str) -> DaemonProcess:
    return DaemonProcess(
        "voiyd.agent.main",
        ["--nats-url", nats_url, "--name", name, "--data-dir", str(data_dir), *extra],
        data_dir.parent / f"node-{name}.log",
        f"node {name} joined",
    )


def voiyd_logrelay(
    nats_url: str, log_dir: Path, name: str = "logrelay", *extra: str
) -> DaemonProcess:
    return DaemonProcess(
        "voiyd.logrelay.main",
        ["--nats-url", nats_url, *extra],
        log_dir / f"{name}.log",
        " ready: serving ",
    )
