"""``apply -f FILE|-``: create or update every task, Set and volume a manifest describes.

All documents are validated before anything is sent: one bad document means nothing is
applied. Then each goes to its kind's ``apply`` endpoint in file order and is reported as
``set/NAME created``, ``configured`` or ``unchanged`` (an unchanged object appends no event).
A server error names the document it is about; documents before it stay applied.

``--dry-run`` sends every document with ``dry_run: true`` (the server validates and appends
nothing), goes on past a rejected document and reports every problem at the end. A task or Set
that mounts a volume only this file creates is refused by a dry run (the volume does not exist
yet); that one refusal is expected, so it is reported as "not checked", not as a problem.
"""

from __future__ import annotations

import re
from typing import TextIO

import rich_click as click

from voiyd.api.requests import WriteReply
from voiyd.api.specs import AnyDoc, SetDoc, TaskDoc
from voiyd.cli.app import App, pass_app
from voiyd.cli.client import Session
from voiyd.cli.manifests import kind_of, load_documents, ref, validate_documents
from voiyd.cli.output import Output
from voiyd.errors import ConflictError, FieldError, InvalidRequestError, VoiydError


def outcome(reply: WriteReply, kind: str = "task") -> str:
    """``created``, ``configured`` or ``unchanged``: a fresh object's two timestamps are equal."""
    if not reply.changed:
        return "unchanged"
    view = getattr(reply, kind, None)
    fresh = view is not None and view.created_at == view.updated_at
    return "created" if fresh else "configured"


def document(index: int, doc: AnyDoc) -> str:
    return f"document {index} ({ref(doc)})"


def labelled(index: int, doc: AnyDoc, err: VoiydError) -> VoiydError:
    """``err`` with its message and fields prefixed by ``document N (kind/NAME)``."""
    label = document(index, doc)
    prefix = f"{kind_of(doc)}."
    fields = [FieldError(f"{label}: {f.loc.removeprefix(prefix)}", f.message) for f in err.fields]
    message = f"{label}: {err.message.removeprefix(prefix)}"
    if isinstance(err, ConflictError):
        return ConflictError(message, fields, err.actual_revision)
    return type(err)(message, fields)


async def apply_document(session: Session, doc: AnyDoc, dry_run: bool) -> WriteReply:
    """``<kind>.apply`` with the document under its kind's key (``{"set": {...}}``)."""
    kind = kind_of(doc)
    body = {kind: doc.model_dump(mode="json"), "dry_run": dry_run}
    return await session.write(kind, "apply", body)


async def _apply_all(session: Session, out: Output, docs: list[AnyDoc]) -> None:
    for index, doc in enumerate(docs, start=1):
        try:
            reply = await apply_document(session, doc, dry_run=False)
        except VoiydError as err:
            raise labelled(index, doc, err) from err
        out.line(f"{ref(doc)} {outcome(reply, kind_of(doc))}")


_MOUNT_SOURCE = re.compile(r"^[a-z]+\.config(?:\.template)?\.mounts\.(\d+)\.source$")


def volumes_from_file(doc: AnyDoc, err: InvalidRequestError, new: set[str]) -> list[str]:
    """The volumes ``new`` to this file that ``err`` says are missing, when that is all it says."""
    if isinstance(doc, TaskDoc):
        mounts = doc.config.mounts
    elif isinstance(doc, SetDoc):
        mounts = doc.config.template.mounts
    else:
        return []
    names: list[str] = []
    for problem in err.fields:
        m = _MOUNT_SOURCE.match(problem.loc)
        index = int(m.group(1)) if m else len(mounts)
        if index >= len(mounts) or mounts[index].source not in new:
            return []
        names.append(mounts[index].source)
    return names


async def _dry_run_all(session: Session, out: Output, docs: list[AnyDoc], source: str) -> None:
    problems: list[FieldError] = []
    new_volumes: set[str] = set()
    for index, doc in enumerate(docs, start=1):
        try:
            reply = await apply_document(session, doc, dry_run=True)
        except InvalidRequestError as err:
            if names := volumes_from_file(doc, err, new_volumes):
                mounted = ", ".join(names)
                out.line(f"{ref(doc)} not checked (dry run: it mounts {mounted}, new in this file)")
                continue
            bad = labelled(index, doc, err)
            problems += bad.fields or [FieldError(document(index, doc), err.message)]
            continue
        except VoiydError as err:
            raise labelled(index, doc, err) from err
        result = outcome(reply, kind_of(doc))
        if kind_of(doc) == "volume" and result == "created":
            new_volumes.add(doc.name)
        out.line(f"{ref(doc)} {result} (dry run)")
    if len(problems) == 1:
        only = problems[0]
        raise InvalidRequestError(f"{only.loc}: {only.message}", problems)
    if problems:
        raise InvalidRequestError(
            f"{source}: {len(problems)} problems found by the server; nothing was applied",
            problems,
        )


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
    """Create or update the tasks, sets and volumes a manifest describes.

    Documents are `version: task/v1`, `set/v1` or `volume/v1`, applied in file order
    (put volumes first). Applying the same file again changes nothing.
    """
    source = getattr(file, "name", "-")
    source = "<stdin>" if source in ("-", "<stdin>") else source
    docs = validate_documents(load_documents(file.read(), source), source)
    if dry_run:
        app.run(lambda session: _dry_run_all(session, app.out, docs, source))
    else:
        app.run(lambda session: _apply_all(session, app.out, docs))
