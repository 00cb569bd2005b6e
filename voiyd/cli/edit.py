"""``edit KIND NAME``: change a task, Set or volume in ``$VISUAL``/``$EDITOR`` (default ``vi``).

The object's spec (``version``, ``meta``, ``config``) is written as YAML to a temporary file;
after the editor exits, an unchanged file cancels the edit. Otherwise the document is validated
here and sent (``task.update``, ``set.update``, ``volume.apply``) with ``expected_revision`` =
the revision it was read at, so a change made meanwhile is a conflict (exit 6), never
overwritten. When the change is refused, the edited file is kept and its path printed.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import rich_click as click
from click.exceptions import Exit

from voiyd.api.requests import WriteReply
from voiyd.api.specs import AnyDoc
from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.client import Session
from voiyd.cli.kinds import KINDS, get_view
from voiyd.cli.manifests import (
    kind_of,
    live_spec,
    load_documents,
    spec_of,
    spec_yaml,
    validate_documents,
)
from voiyd.cli.output import exit_code
from voiyd.cli.parse import parse_target
from voiyd.cli.tasks import report
from voiyd.errors import InvalidRequestError, VoiydError

EDITABLE = {"task": "update", "set": "update", "volume": "apply"}
"""The kinds ``edit`` works on, and the endpoint that takes their edited document."""


def header(ref: str, revision: int) -> str:
    return (
        f"# Edit {ref} (read at revision {revision}). Lines starting with '#' are ignored.\n"
        "# Save and quit to apply the change; quit without saving to cancel.\n"
    )


def edited_document(text: str, source: str, kind: str, name: str) -> AnyDoc:
    """The one document in ``text``, which must still be ``kind/name``."""
    found = load_documents(text, source)
    if len(found) != 1:
        raise InvalidRequestError(f"{source}: expected one document, found {len(found)}")
    (doc,) = validate_documents(found, source)
    if kind_of(doc) != kind:
        raise InvalidRequestError(f"version: {kind}/{name} cannot become a {kind_of(doc)}")
    if doc.name != name:
        raise InvalidRequestError(
            f"meta.name: {kind}/{name} cannot be renamed to {doc.name!r} (edit creates nothing)"
        )
    return doc


def run_editor(editor: str, path: Path) -> None:
    try:
        done = subprocess.run([*shlex.split(editor), str(path)], check=False)
    except OSError as exc:
        raise EditorFailed(f"cannot run the editor {editor!r}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise EditorFailed(f"the editor {editor!r} exited with code {done.returncode}")


class EditorFailed(Exception):
    """The editor could not run or failed: nothing was changed (exit 1)."""


@click.command("edit")
@click.argument("kind", metavar="KIND[/NAME]")
@click.argument("name", required=False)
@click.option(
    "--editor",
    envvar=["VISUAL", "EDITOR"],
    default="vi",
    show_default=True,
    help="Editor command [env: VISUAL, EDITOR].",
)
@pass_app
def edit_cmd(app: App, kind: str, name: str | None, editor: str) -> None:
    """Edit a task, set or volume in your editor; sent with the revision it was read at."""
    kind_name, target = usage(lambda: parse_target(kind, name))
    if kind_name not in EDITABLE:
        raise click.UsageError(f"edit works on tasks, sets and volumes, not {kind_name}s")
    if not target:
        raise click.UsageError(f"which {kind_name}? give {kind_name} NAME or {kind_name}/NAME")
    ref = f"{kind_name}/{target}"
    view = app.run(lambda session: get_view(session, KINDS[kind_name], target))
    assert view is not None
    revision = int(view["revision"])
    original = header(ref, revision) + spec_yaml(live_spec(kind_name, view))
    path = _temp_file(f"voiyd-{kind_name}-{target}-", original)
    try:
        run_editor(editor, path)
        text = path.read_text(encoding="utf-8")
        if _unchanged(text, original):
            path.unlink(missing_ok=True)
            app.out.note("edit cancelled, no changes made")
            return
        doc = edited_document(text, str(path), kind_name, target)
        reply = app.run(lambda session: _send(session, doc, revision))
    except EditorFailed as failed:
        path.unlink(missing_ok=True)
        app.out.note(f"error: {failed}; nothing was changed")
        raise Exit(1) from None
    except VoiydError as err:
        # Refused or conflicting: say why, and keep the operator's work.
        app.out.error(err)
        app.out.note(f"note: your changes are saved in {path}")
        raise Exit(exit_code(err)) from None
    path.unlink(missing_ok=True)
    assert reply is not None
    report(app.out, ref, "edited", reply)


def _temp_file(prefix: str, text: str) -> Path:
    """A file only this user can read (a spec may hold secrets in its env), holding ``text``."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=prefix, delete=False) as tmp:
        tmp.write(text)
        return Path(tmp.name)


def _unchanged(text: str, original: str) -> bool:
    """The same text, or the same data once comments and layout are ignored."""
    if text == original or text.strip() == "":
        return True
    try:
        return load_documents(text, "-") == load_documents(original, "-")
    except InvalidRequestError:
        return False


async def _send(session: Session, doc: AnyDoc, revision: int) -> WriteReply:
    kind = kind_of(doc)
    body: dict[str, Any] = {kind: spec_of(doc), "expected_revision": revision}
    return await session.write(kind, EDITABLE[kind], body)
