"""``logs``: a task's output (or a set's), from the log relay (``voiyd.api.v1.logs.read``).

The relay keeps no state: each reply carries a cursor that the next request sends back, so
when the relay that served a follow dies, another replica carries on from the same place (no
gap, no duplicate). If none answers within ``FAILOVER_S`` the command says the stream broke
and exits 7. With ``-f`` each request is a long poll; the relay says when the stream has ended
(the task stopped, exited, failed or was deleted, and its output was delivered) and the command
exits 0. Ctrl-C ends it quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats.errors
import rich_click as click

from voiyd.bus import subjects
from voiyd.bus.rpc import call
from voiyd.cli.app import App, pass_app
from voiyd.cli.client import Session
from voiyd.cli.logformat import LogFormat
from voiyd.errors import UnavailableError

READ_SUBJECT = subjects.api("logs", "read")
FOLLOW_WAIT_S = 2.0
"""How long one follow request may wait for new lines at the relay."""
FAILOVER_S = 5.0
"""How long a broken stream may look for another relay before the command gives up."""
FIRST_TRY_S = 1.0
"""How long the first request is tried again (a relay that is just starting, or interest that
NATS has not yet seen on this new connection) before the command says no relay answers."""
RETRY_PAUSE_S = 0.2

Write = Callable[[bytes], None]


def _target(text: str) -> dict[str, str]:
    kind, sep, name = text.partition("/")
    if not sep:
        return {"task": text}
    if kind in ("set", "sets"):
        return {"set": name}
    if kind in ("task", "tasks"):
        return {"task": name}
    raise click.BadParameter(f"{text!r}: use TASK, task/NAME or set/NAME", param_hint="TARGET")


class LogStream:
    """Requests pages of lines until the relay says the stream has ended."""

    def __init__(self, session: Session, request: dict[str, Any]) -> None:
        self.session = session
        self.request = request
        self.after: dict[str, Any] = {}
        self.started = False

    async def run(self, fmt: LogFormat, write: Write) -> str:
        """Print every line; return why the stream ended.

        The next page is asked for as soon as a reply's cursor is known, before the reply is
        printed, so the relay reads while this process writes.
        """
        ahead = asyncio.ensure_future(self._next())
        try:
            while True:
                reply = await ahead
                self.started = True
                self.after = reply["cursor"]
                if not reply["eos"]:
                    ahead = asyncio.ensure_future(self._next())
                self._print(reply["chunks"], fmt, write)
                if reply["eos"]:
                    return str(reply.get("reason", ""))
        finally:
            ahead.cancel()

    def _print(self, chunks: list[dict[str, Any]], fmt: LogFormat, write: Write) -> None:
        for note in fmt.drop_notes(chunks):
            self.session.out.note(note)
        data = fmt.render(chunks)
        if data:
            write(data)

    async def _next(self) -> dict[str, Any]:
        body = {**self.request, "after": self.after}
        timeout = self.session.settings.timeout + float(self.request.get("wait_s", 0.0))
        loop = asyncio.get_running_loop()
        patience = FAILOVER_S if self.started else FIRST_TRY_S
        give_up: float | None = None
        while True:
            try:
                return await call(
                    self.session.nc, READ_SUBJECT, body, timeout=timeout, trusted=True
                )
            except UnavailableError as exc:
                problem = exc.message
            except nats.errors.ConnectionClosedError:
                raise self._broken("the connection to NATS was lost") from None
            give_up = give_up if give_up is not None else loop.time() + patience
            if loop.time() >= give_up:
                raise self._broken(problem)
            await asyncio.sleep(RETRY_PAUSE_S)

    def _broken(self, problem: str) -> UnavailableError:
        if not self.started:
            return UnavailableError(
                f"no log relay answered on {READ_SUBJECT}: is voiyd-logrelay running?"
            )
        return UnavailableError(
            f"log stream broke: its relay stopped answering and no other did within "
            f"{FAILOVER_S:g}s ({problem})"
        )


@click.command("logs")
@click.argument("target", metavar="TASK|set/NAME")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the task ends.")
@click.option("--tail", type=int, metavar="N", help="Start with the last N lines (per task).")
@click.option("--since", metavar="DURATION|TIME", help="Lines from 10m ago, or from a time.")
@click.option("--until", metavar="DURATION|TIME", help="Lines up to 5m ago, or up to a time.")
@click.option("--timestamps", is_flag=True, help="Put the time of each line in front of it.")
@click.option("--stream", type=click.Choice(["stdout", "stderr"]), help="Only this stream.")
@pass_app
def logs_cmd(
    app: App,
    target: str,
    follow: bool,
    tail: int | None,
    since: str | None,
    until: str | None,
    timestamps: bool,
    stream: str | None,
) -> None:
    """Print a task's output, or a set's (each line after [task]), as it is written."""
    request: dict[str, Any] = {**_target(target), "follow": follow}
    for key, value in (("tail", tail), ("since", since), ("until", until), ("stream", stream)):
        if value is not None:
            request[key] = value
    if follow:
        request["wait_s"] = FOLLOW_WAIT_S
    fmt = LogFormat(timestamps=timestamps, prefix="set" in request)
    app.run(lambda session: LogStream(session, request).run(fmt, app.out.raw), follow=True)
