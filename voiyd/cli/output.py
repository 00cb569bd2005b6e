"""Where voiydctl writes: results to stdout, errors and progress to stderr, and its exit codes.

``EXIT_CODES`` is the one place that maps an error class to an exit code (click's usage errors
keep 2). An error prints one line, ``error: <message>``; its per-field details follow only with
``--debug`` or when there are several. The spinner appears only when stderr is a terminal.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import click
import yaml
from rich.console import Console

from voiyd.errors import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    TaskFailedError,
    UnavailableError,
    VoiydError,
)

EXIT_CODES: Mapping[type[VoiydError], int] = {
    InternalError: 1,
    InvalidRequestError: 3,
    NotFoundError: 4,
    AlreadyExistsError: 5,
    ConflictError: 6,
    UnavailableError: 7,
    ForbiddenError: 8,
    TaskFailedError: 9,
}
"""Exit code per error class; any other ``VoiydError`` (and any bug) exits 1."""

FORMATS = ("table", "wide", "json", "yaml", "name")
SPINNER_DELAY_S = 0.25
"""Waits shorter than this show no spinner (it would only flicker)."""


def exit_code(err: BaseException) -> int:
    for cls in type(err).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def to_json(data: Any, *, compact: bool = False) -> str:
    if compact:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(data, indent=2, ensure_ascii=False)


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")


class Output:
    """The CLI's console: one per invocation, so tests can run the CLI in-process."""

    def __init__(self, *, debug: bool = False) -> None:
        self.debug = debug
        self._stderr: Console | None = None

    def line(self, text: str = "") -> None:
        click.echo(text)

    def note(self, text: str) -> None:
        click.echo(text, err=True)

    def raw(self, data: bytes) -> None:
        """Bytes to stdout as they are (a task's output), flushed at once."""
        click.echo(data, nl=False)

    def data(self, value: Any, fmt: str) -> None:
        """Print ``value`` as ``json`` or ``yaml``."""
        self.line(to_yaml(value) if fmt == "yaml" else to_json(value))

    @asynccontextmanager
    async def spinner(self, text: str) -> AsyncIterator[None]:
        """A spinner on stderr if the wait outlasts an instant (and stderr is a terminal)."""
        if not sys.stderr.isatty():
            yield
            return
        if self._stderr is None:
            self._stderr = Console(stderr=True)
        status = self._stderr.status(text)
        show = asyncio.get_running_loop().call_later(SPINNER_DELAY_S, status.start)
        try:
            yield
        finally:
            show.cancel()
            status.stop()

    @asynccontextmanager
    async def progress(self, text: str) -> AsyncIterator[Callable[[str], None]]:
        """A long wait whose state changes (``rollout status``, ``drain``): yields ``update``.

        On a terminal the spinner's text follows ``update``; otherwise (CI logs) each new text
        is one line on stderr, so the log shows the wait's progress without a redraw.
        """
        if not sys.stderr.isatty():
            shown = [""]

            def note(new: str) -> None:
                if new != shown[0]:
                    shown[0] = new
                    self.note(new)

            note(text)
            yield note
            return
        if self._stderr is None:
            self._stderr = Console(stderr=True)
        status = self._stderr.status(text)
        status.start()
        try:
            yield lambda new: status.update(new)
        finally:
            status.stop()

    def error(self, err: BaseException) -> None:
        if self.debug:
            traceback.print_exception(err, file=sys.stderr)
        if not isinstance(err, VoiydError):
            self.note(f"error: internal error: {type(err).__name__}: {err}")
            if not self.debug:
                self.note("(run with --debug to see the traceback)")
            return
        self.note(f"error: {err.message}")
        if self.debug or len(err.fields) > 1:
            for f in err.fields:
                self.note(f"  {f.loc}: {f.message}")
