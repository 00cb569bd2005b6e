"""``events``: the event log itself, read straight from JetStream (no server needed).

Without ``-f`` it stops once caught up (an empty log prints nothing); with ``-f`` it follows until
Ctrl-C. ``--since 42`` shows events after sequence 42, ``--since 10m`` those of the last ten
minutes. ``-o json`` prints one ``{"seq", "subject", "event"}`` object per line, for scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rich_click as click

from voiyd import clock
from voiyd.bus import codec, subjects
from voiyd.cli import render
from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.client import Session
from voiyd.cli.output import Output, to_json
from voiyd.cli.parse import parse_since
from voiyd.errors import InvalidRequestError


@dataclass
class EventPrinter:
    out: Output
    fmt: str
    header_done: bool = False

    def show(self, seq: int, subject: str, envelope: Mapping[str, Any]) -> None:
        if self.fmt == "json":
            self.out.line(
                to_json({"seq": seq, "subject": subject, "event": envelope}, compact=True)
            )
        elif self.fmt == "yaml":
            self.out.line("---")
            self.out.data({"seq": seq, "subject": subject, "event": dict(envelope)}, "yaml")
        else:
            self._row(render.event_row(seq, subject, envelope))

    def _row(self, row: list[str]) -> None:
        if not self.header_done:
            self.out.line(render.format_row(render.EVENT_HEADERS, render.EVENT_WIDTHS))
            self.header_done = True
        self.out.line(render.format_row(row, render.EVENT_WIDTHS))


def _decode(data: bytes) -> dict[str, Any]:
    try:
        return codec.decode_map(data)
    except InvalidRequestError as exc:
        return {"type": "<undecodable>", "data": {"error": exc.message}}


@dataclass(frozen=True)
class Range:
    filter_subject: str
    start_seq: int | None
    start_time: datetime | None
    follow: bool


async def _stream(session: Session, printer: EventPrinter, rng: Range) -> None:
    events = session.read_log(
        rng.filter_subject, start_seq=rng.start_seq, start_time=rng.start_time, follow=rng.follow
    )
    async for raw in events:
        printer.show(raw.seq, raw.subject, _decode(raw.data))


@click.command("events")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--since", metavar="SEQ|DURATION", help="After sequence SEQ, or e.g. 10m ago.")
@click.option("--kind", type=click.Choice(subjects.KINDS), help="Only this kind's events.")
@click.option("--name", help="Only this object's events (needs --kind).")
@click.option(
    "-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table"
)
@pass_app
def events_cmd(
    app: App, follow: bool, since: str | None, kind: str | None, name: str | None, fmt: str
) -> None:
    """Print the event log: what happened, in order, with who did it."""
    if name and not kind:
        raise click.UsageError("--name needs --kind (e.g. --kind task --name web)")
    start_seq, start_time = usage(lambda: parse_since(since, clock.now()), "--since")
    rng = Range(subjects.events_filter(kind, name), start_seq, start_time, follow)
    printer = EventPrinter(app.out, fmt)
    app.run(lambda session: _stream(session, printer, rng), follow=follow)
