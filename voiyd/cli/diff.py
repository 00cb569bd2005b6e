"""``diff -f FILE``: what ``apply -f FILE`` would change, as a unified diff per document.

Each document is compared with the stored object's spec (``version``, ``meta``, ``config``;
the status, revision and history of a view are not part of it), both with every default filled
in, so that only real differences show. A document whose object does not exist is all ``+``.

Exit codes follow ``diff(1)`` and ``kubectl diff``: 0 nothing would change, 1 something would,
2 or more on an error (an error whose usual code is 1 exits 2, so that 1 always means "changes").
"""

from __future__ import annotations

from typing import TextIO

import rich_click as click
from click.exceptions import Exit

from voiyd.api.specs import AnyDoc
from voiyd.cli.app import App, pass_app
from voiyd.cli.client import Session
from voiyd.cli.kinds import KINDS, get_view
from voiyd.cli.manifests import (
    kind_of,
    live_spec,
    load_documents,
    ref,
    spec_diff,
    spec_of,
    validate_documents,
)
from voiyd.cli.output import Output, exit_code
from voiyd.errors import NotFoundError

DIFFERENCES = 1
ERROR_MIN = 2


async def diff_documents(session: Session, out: Output, docs: list[AnyDoc], source: str) -> int:
    """Print every document's diff; the number of documents that differ."""
    differ = 0
    for doc in docs:
        kind = kind_of(doc)
        try:
            view = await get_view(session, KINDS[kind], doc.name)
        except NotFoundError:
            live, before = None, "/dev/null"
        else:
            live, before = live_spec(kind, view), f"{ref(doc)} (live, revision {view['revision']})"
        text = spec_diff(live, spec_of(doc), (before, f"{ref(doc)} ({source})"))
        if text:
            differ += 1
            out.line(text.rstrip("\n"))
    return differ


@click.command("diff")
@click.option(
    "-f",
    "--filename",
    "file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="Manifest file (YAML documents or JSON), or - for stdin.",
)
@pass_app
@click.pass_context
def diff_cmd(ctx: click.Context, app: App, file: TextIO) -> None:
    """Show what `apply -f` would change: exit 0 if nothing, 1 if something, 2+ on errors."""
    source = getattr(file, "name", "-")
    source = "<stdin>" if source in ("-", "<stdin>") else source
    try:
        docs = validate_documents(load_documents(file.read(), source), source)
        differ = app.run(lambda session: diff_documents(session, app.out, docs, source))
    except (click.ClickException, Exit, click.Abort, BrokenPipeError):
        raise
    except Exception as err:
        app.out.error(err)
        ctx.exit(max(ERROR_MIN, exit_code(err)))
    if differ:
        ctx.exit(DIFFERENCES)
