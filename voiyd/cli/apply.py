"""``apply -f FILE|-``: create or update every task a manifest describes.

All documents are validated before anything is sent: one bad document means nothing is
applied. Then each is sent to ``task.apply`` in file order and reported as ``task/NAME
created``, ``configured`` or ``unchanged`` (an unchanged task appends no event).
"""

from __future__ import annotations

from typing import TextIO

import rich_click as click

from voiyd.api.requests import WriteReply
from voiyd.api.specs import TaskDoc
from voiyd.cli.app import App, pass_app
from voiyd.cli.client import Session
from voiyd.cli.manifests import load_documents, validate_documents
from voiyd.cli.output import Output


def outcome(reply: WriteReply) -> str:
    """``created``, ``configured`` or ``unchanged``: a fresh task's two timestamps are equal."""
    if not reply.changed:
        return "unchanged"
    task = reply.task
    return "created" if task is not None and task.created_at == task.updated_at else "configured"


async def _apply_all(session: Session, out: Output, docs: list[TaskDoc], dry_run: bool) -> None:
    suffix = " (dry run)" if dry_run else ""
    for doc in docs:
        body = {"task": doc.model_dump(mode="json"), "dry_run": dry_run}
        reply = await session.write("task", "apply", body)
        out.line(f"task/{doc.name} {outcome(reply)}{suffix}")


@click.command("apply")
@click.option(
    "-f",
    "--filename",
    "file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="Manifest file (YAML documents or JSON), or - for stdin.",
)
@click.option("--dry-run", is_flag=True, help="Validate on the server; change nothing.")
@pass_app
def apply_cmd(app: App, file: TextIO, dry_run: bool) -> None:
    """Create or update the tasks a manifest describes (version: task/v1)."""
    source = getattr(file, "name", "-")
    source = "<stdin>" if source in ("-", "<stdin>") else source
    docs = validate_documents(load_documents(file.read(), source), source)
    app.run(lambda session: _apply_all(session, app.out, docs, dry_run))
