"""The state one voiydctl invocation carries: its global options, console and resolved context.

Commands receive an ``App`` (``@pass_app``); resolving the context (reading the config file)
happens only when a command needs the cluster, so ``config`` commands work on a broken file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import rich_click as click

from voiyd.cli import client, config
from voiyd.cli.client import CliSettings, Session
from voiyd.cli.output import Output

T = TypeVar("T")


@dataclass
class App:
    config_path: Path | None = None
    context: str | None = None
    server: str | None = None
    creds: Path | None = None
    timeout: float = 5.0
    actor: str = client.CLIENT_NAME
    out: Output = field(default_factory=Output)

    def settings(self) -> CliSettings:
        source, opts = config.resolve(self.config_path, self.context, self.server, self.creds)
        return CliSettings(nats=opts, source=source, timeout=self.timeout, actor=self.actor)

    def run(self, fn: Callable[[Session], Awaitable[T]], *, follow: bool = False) -> T | None:
        return client.run(self.settings(), self.out, fn, follow=follow)


pass_app = click.make_pass_decorator(App)


def usage(fn: Callable[[], T], param: str | None = None) -> T:
    """Run a pure parser; its ``ValueError`` becomes click's usage error (exit code 2)."""
    try:
        return fn()
    except ValueError as exc:
        if param is None:
            raise click.UsageError(str(exc)) from None
        raise click.BadParameter(str(exc), param_hint=param) from None
