"""How the CLI tests run voiydctl: in-process in a worker thread, or as a real subprocess.

The CLI calls ``asyncio.run`` itself while the in-process voiyd-server (the ``api_server``
fixture) runs on the test's event loop, so ``Cli`` invokes click's ``CliRunner`` in a worker
thread (``asyncio.to_thread``) and the loop keeps serving. ``spawn`` starts ``python -m
voiyd.cli.main`` for what needs a real process (``-w``/``-f`` and their signals).
This module holds no tests; it is named ``test_cli_*`` only because the CLI's tests own it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result

from voiyd.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    """voiydctl against one NATS server (``--server``; None: the context's), own config file."""

    server: str | None
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.tmp / "voiydctl.yaml"

    @property
    def globals(self) -> list[str]:
        return ["--server", self.server] if self.server else []

    def invoke(self, *args: str, stdin: str | None = None) -> Result:
        runner = CliRunner(env={"VOIYD_CONFIG": str(self.config), **self.env})
        result = runner.invoke(cli, [*self.globals, *args], input=stdin)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    async def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return await asyncio.to_thread(self.invoke, *args, stdin=stdin)

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run; fail the test with voiydctl's stderr unless it exits 0; return stdout."""
        result = await self(*args, stdin=stdin)
        assert result.exit_code == 0, f"voiydctl {' '.join(args)}: {result.stderr}"
        return result.stdout

    async def spawn(self, *args: str) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "VOIYD_CONFIG": str(self.config),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "voiyd.cli.main",
            *self.globals,
            *args,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


async def read_until(stream: asyncio.StreamReader, needle: str, deadline_s: float = 30) -> str:
    """Lines from ``stream`` up to (and including) the first one containing ``needle``."""
    seen: list[str] = []

    async def scan() -> str:
        while True:
            raw = await stream.readline()
            if not raw:
                raise AssertionError(f"stream ended before {needle!r}; got {seen}")
            seen.append(raw.decode())
            if needle in seen[-1]:
                return "".join(seen)

    try:
        return await asyncio.wait_for(scan(), deadline_s)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} within {deadline_s}s; got {seen}") from None


def rows(table: str) -> list[list[str]]:
    """A plain-text table as cells (header first), split on runs of spaces."""
    return [line.split() for line in table.strip().splitlines()]
