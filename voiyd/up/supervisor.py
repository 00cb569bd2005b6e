"""Child processes of ``voiyd up``: start, wait until ready, restart on crash, stop in order.

Children run in their own sessions so that a Ctrl-C in the terminal reaches only ``voiyd up``,
which then stops the daemons first (SIGTERM, then SIGKILL after a grace) and nats-server last,
so every daemon can drain its connection.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
MAX_RESTARTS_PER_MINUTE = 5


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    log_path: Path | None = None
    restart: bool = True
    proc: asyncio.subprocess.Process | None = None
    restarts: list[float] = field(default_factory=list)

    async def start(self) -> None:
        stderr = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            stderr = self.log_path.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL if stderr else None,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            if stderr is not None:
                stderr.close()
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            log.warning("%s did not stop within %gs; killing it", self.name, grace)
            proc.kill()
            await proc.wait()
        log.info("stopped %s (exit %s)", self.name, proc.returncode)

    def may_restart(self, now: float) -> bool:
        self.restarts = [t for t in self.restarts if now - t < 60.0]
        if not self.restart or len(self.restarts) >= MAX_RESTARTS_PER_MINUTE:
            return False
        self.restarts.append(now)
        return True
