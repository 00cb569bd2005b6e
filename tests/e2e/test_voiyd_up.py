"""`voiyd up` end to end: a whole local cluster, used with voiydctl, stopped and resumed."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.cluster import kill_exec_tasks

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Up:
    def __init__(self, data: Path, config: Path, port: int) -> None:
        self.config = config
        self.log = data.parent / "up.log"
        self.argv = [
            str(BIN / "voiyd"),
            "up",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--no-metrics",
            "--config",
            str(config),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Up:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            if "voiyd is up" in self.log.read_text()[offset:]:
                return self
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"voiyd up not ready:\n{self.log.read_text()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "voiydctl"), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def test_up_run_get_then_resume_after_ctrl_c(tmp_path: Path) -> None:
    data, config, port = tmp_path / "data", tmp_path / "config.yaml", _free_port()
    up = Up(data, config, port).start()
    try:
        assert "local" in config.read_text()
        run = up.ctl("run", "web", "--image", "nginx:alpine", "--port", "8080:80")
        assert run.returncode == 0, run.stderr
        got = up.ctl("get", "tasks")
        assert got.returncode == 0, got.stderr
        assert "web" in got.stdout
        nodes = up.ctl("get", "nodes")
        assert nodes.returncode == 0, nodes.stderr
        assert "local" in nodes.stdout and "ready" in nodes.stdout
        hello = up.ctl("run", "hello", "--runtime", "exec", "--wait", "--", "sleep", "1000")
        assert hello.returncode == 0, hello.stderr
        assert "running" in up.ctl("get", "task", "hello").stdout
        assert up.ctl("delete", "task", "hello").returncode == 0
        greet = up.ctl(
            "run", "greet", "--runtime", "exec", "--restart", "never", "--", "echo", "hi"
        )
        assert greet.returncode == 0, greet.stderr
        logs = up.ctl("logs", "-f", "greet")  # the log relay runs too; -f ends with the task
        assert (logs.returncode, logs.stdout) == (0, "hi\n"), logs.stderr
        bad = up.ctl("run", "bad", "--runtime", "exec", "--wait", "--", "/no/such/program")
        assert bad.returncode == 9, bad.stderr
        assert "task/bad failed on local" in bad.stderr
    finally:
        assert up.stop() == 0
    assert "Traceback" not in up.log.read_text()
    gone = up.ctl("get", "tasks")
    assert gone.returncode == 7  # unavailable: nothing is serving any more

    again = Up(data, config, port).start()
    try:
        got = again.ctl("get", "tasks", "-o", "name")
        assert got.returncode == 0, got.stderr
        assert got.stdout.split() == ["task/bad", "task/greet", "task/web"]
    finally:
        assert again.stop() == 0
        kill_exec_tasks(tmp_path)


def test_a_second_up_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data, config = tmp_path / "data", tmp_path / "config.yaml"
    first = Up(data, config, _free_port()).start()
    try:
        second = subprocess.run(
            [
                str(BIN / "voiyd"),
                "up",
                "--data-dir",
                str(data),
                "--port",
                str(_free_port()),
                "--no-metrics",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert "already running" in second.stderr
    finally:
        assert first.stop() == 0
