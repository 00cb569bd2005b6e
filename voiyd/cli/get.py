"""``get`` and ``describe``: read views (tables for people, json/yaml for scripts), and watch.

``get -w`` prints the list, then follows the kind's events from the revision the list was read
at; for each event it re-reads that object with ``min_revision`` = the event's sequence (so the
row is never older than the event) and prints an updated row, or ``NAME deleted``.

Lists print as ``{"items": [...], "revision": N}`` in json/yaml (N = the log position the list
was read at, where a watcher would start); a single object prints as itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import rich_click as click

from voiyd import clock
from voiyd.api.members import member_index
from voiyd.api.selectors import Selector, SelectorError, parse_selector
from voiyd.bus import subjects
from voiyd.cli import render
from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.client import Session
from voiyd.cli.kinds import KINDS, Kind, View, get_view, list_views, recent_events
from voiyd.cli.output import FORMATS, Output
from voiyd.cli.parse import parse_target
from voiyd.errors import NotFoundError


@dataclass
class ViewPrinter:
    """Prints views in one format; rows printed later (a watch) keep the table's columns."""

    out: Output
    kind: Kind
    fmt: str
    widths: list[int] = field(default_factory=list)

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(self.kind.wide_headers if self.fmt == "wide" else self.kind.headers)

    def _row(self, view: View) -> list[str]:
        return self.kind.row(view, clock.now(), self.fmt == "wide")

    def listing(self, views: list[View], revision: int, *, watching: bool) -> None:
        if self.fmt in ("json", "yaml"):
            self.out.data({"items": views, "revision": revision}, self.fmt)
        elif self.fmt == "name":
            for view in views:
                self.out.line(self.kind.ref(self.kind.name_of(view)))
        elif not views and not watching:
            self.out.note(f"No {self.kind.plural} found.")
        else:
            self.table([self._row(v) for v in views])

    def single(self, view: View) -> None:
        if self.fmt in ("json", "yaml"):
            self.out.data(view, self.fmt)
        elif self.fmt == "name":
            self.out.line(self.kind.ref(self.kind.name_of(view)))
        else:
            self.table([self._row(view)])

    def table(self, rows: list[list[str]]) -> None:
        self.widths = render.widths(self.headers, rows)
        for line in render.format_table(self.headers, rows):
            self.out.line(line)

    def update(self, view: View) -> None:
        if self.fmt in ("table", "wide"):
            row = self._row(view)
            self.widths = render.widths(self.headers, [row], self.widths)
            self.out.line(render.format_row(row, self.widths))
        else:
            if self.fmt == "yaml":
                self.out.line("---")
            self.single(view)

    def deleted(self, name: str, seq: int) -> None:
        ref = self.kind.ref(name)
        if self.fmt in ("json", "yaml"):
            if self.fmt == "yaml":
                self.out.line("---")
            self.out.data({"deleted": ref, "revision": seq}, self.fmt)
        else:
            self.out.line(f"{ref if self.fmt == 'name' else name} deleted")


async def _watch(
    session: Session, printer: ViewPrinter, name: str | None, selector: Selector, after: int
) -> None:
    kind = printer.kind
    session.quiet = True
    # A Set's counts change with its members' events too (``<set>-<n>`` tasks).
    sets = kind.name == "set"
    events = session.read_log(
        subjects.events_filter(None if sets else kind.name, None if sets else name),
        start_seq=after + 1,
        follow=True,
    )
    async for raw in events:
        event_kind, changed = subjects.parse_event_subject(raw.subject)
        if sets:
            owner = _set_of(event_kind, changed)
            if owner is None or (name is not None and owner != name):
                continue
            if event_kind == "task":
                try:
                    view = await get_view(session, kind, owner, min_revision=raw.seq)
                except NotFoundError:
                    continue  # a task that only looks like a member
                if selector.matches(kind.labels_of(view)):
                    printer.update(view)
                continue
            changed = owner
        try:
            view = await get_view(session, kind, changed, min_revision=raw.seq)
        except NotFoundError:
            printer.deleted(changed, raw.seq)
            continue
        if selector.matches(kind.labels_of(view)):
            printer.update(view)


def _set_of(event_kind: str, name: str) -> str | None:
    """The Set an event may change: the Set itself, or a member task's ``<set>-<n>``."""
    if event_kind == "set":
        return name
    if event_kind == "task":
        owner = name.rpartition("-")[0]
        return owner if owner and member_index(owner, name) is not None else None
    return None


@dataclass(frozen=True)
class GetRequest:
    kind: Kind
    name: str | None
    fmt: str
    selector: str
    watch: bool


async def _get(session: Session, out: Output, req: GetRequest) -> None:
    printer = ViewPrinter(out, req.kind, req.fmt)
    if req.name:
        view = await get_view(session, req.kind, req.name)
        printer.single(view)
        revision = int(view["revision"])
    else:
        views, revision = await list_views(session, req.kind, req.selector)
        printer.listing(views, revision, watching=req.watch)
    if req.watch:
        selector = parse_selector(req.selector)
        await _watch(session, printer, req.name, selector, revision)


def _selector(text: str) -> str:
    try:
        return str(parse_selector(text))
    except SelectorError as exc:
        raise ValueError(str(exc)) from None


@click.command("get")
@click.argument("kind", metavar="KIND[/NAME]")
@click.argument("name", required=False)
@click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table")
@click.option("-l", "--selector", default="", help="Label selector, e.g. app=web,tier!=db")
@click.option("-w", "--watch", is_flag=True, help="After listing, print changes as they happen.")
@pass_app
def get_cmd(app: App, kind: str, name: str | None, fmt: str, selector: str, watch: bool) -> None:
    """List tasks, sets, volumes or nodes, or show one: `get sets`, `get set web -o yaml`.

    Kinds: tasks (t), sets, volumes (vol), nodes (no).
    """
    kind_name, name = usage(lambda: parse_target(kind, name))
    if name and selector:
        raise click.UsageError("give a name or a selector (-l), not both")
    req = GetRequest(KINDS[kind_name], name, fmt, usage(lambda: _selector(selector), "-l"), watch)
    app.run(lambda session: _get(session, app.out, req), follow=watch)


@click.command("describe")
@click.argument("kind", metavar="KIND[/NAME]")
@click.argument("name", required=False)
@pass_app
def describe_cmd(app: App, kind: str, name: str | None) -> None:
    """Show a task, set, volume or node in detail, with its recent events."""
    kind_name, name = usage(lambda: parse_target(kind, name))
    if not name:
        raise click.UsageError(f"which {kind_name}? give its name")
    k, obj = KINDS[kind_name], name

    async def describe(session: Session) -> str:
        view = await get_view(session, k, obj)
        events = await recent_events(session, k, obj)
        related: list[View] = []
        if k.related is not None:
            related, _ = await list_views(session, KINDS["task"], k.related(obj))
        return k.describe(view, events, related, clock.now())

    text = app.run(describe)
    if text is not None:
        app.out.line(text)
