"""``delete KIND NAME``: a task, Set, volume or node.

Deleting a Set deletes its tasks; deleting a volume that a task or Set mounts is refused by the
server (conflict, naming them). A deleted host-local volume's data stays on its node (voiyd never
deletes what it cannot get back), so the command says where it is. A node that is ready and runs
tasks needs ``--force`` (its tasks are placed again elsewhere).
"""

from __future__ import annotations

from typing import Any

import rich_click as click

from voiyd.api.requests import VolumeReply, WriteReply
from voiyd.api.views import VolumeView
from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.client import Session, parse_reply
from voiyd.cli.parse import parse_target
from voiyd.cli.tasks import EXPECTED, report


def volume_note(view: VolumeView) -> str | None:
    """Where a deleted host-local volume's data stays, or None (template volumes keep none)."""
    if view.config.type != "host-local":
        return None
    return (
        f"note: the data of volume/{view.meta.name} stays on node {view.config.node} in "
        f"<agent data dir>/volumes/{view.meta.name}; remove it there once it is not needed"
    )


@click.command("delete")
@click.argument("kind", metavar="KIND[/NAME]")
@click.argument("name", required=False)
@EXPECTED
@click.option("--force", is_flag=True, help="node: delete it even if it is ready and runs tasks.")
@click.option("--dry-run", is_flag=True, help="Validate on the server; delete nothing.")
@pass_app
def delete_cmd(
    app: App,
    kind: str,
    name: str | None,
    expected_revision: int | None,
    force: bool,
    dry_run: bool,
) -> None:
    """Delete a task, set, volume or node: `delete task web`, `delete set/web`.

    A task is stopped first; a set's tasks are deleted with it.
    """
    kind_name, target = usage(lambda: parse_target(kind, name))
    if not target:
        raise click.UsageError(f"which {kind_name}? give {kind_name} NAME or {kind_name}/NAME")
    if force and kind_name != "node":
        raise click.UsageError("--force applies to nodes only")
    body: dict[str, Any] = {"name": target, "dry_run": dry_run}
    if expected_revision is not None:
        body["expected_revision"] = expected_revision
    if kind_name == "node":
        body["force"] = force

    async def delete(session: Session) -> tuple[WriteReply, VolumeView | None]:
        volume = None
        if kind_name == "volume":
            reply = await session.query("volume", "get", {"name": target})
            volume = parse_reply(VolumeReply, reply).volume
        return await session.write(kind_name, "delete", body), volume

    result = app.run(delete)
    assert result is not None
    reply, volume = result
    report(app.out, f"{kind_name}/{target}", "deleted", reply, dry_run=dry_run)
    note = volume_note(volume) if volume is not None and reply.changed and not dry_run else None
    if note:
        app.out.note(note)
