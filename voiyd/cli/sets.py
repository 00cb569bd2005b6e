"""Set commands: ``scale`` and ``rollout status|history|undo|restart``.

Every command takes ``set/NAME`` or ``set NAME``. ``rollout status`` polls the Set (its counts
are taken from the member tasks when read) until the rollout to the revision it saw first
completes (exit 0), fails or is replaced by a newer revision (exit 1, with the reason), or its
own ``--timeout`` passes (exit 1): what a CI pipeline needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import rich_click as click
from click.exceptions import Exit

from voiyd.api.requests import SetReply, WriteReply
from voiyd.api.units import parse_duration
from voiyd.api.views import SetView
from voiyd.cli import render
from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.client import Session, parse_reply
from voiyd.cli.output import Output, to_yaml
from voiyd.cli.parse import parse_ref
from voiyd.cli.progress import rollout_line, rollout_verdict
from voiyd.cli.tasks import report

POLL_S = 0.5
"""How often ``rollout status`` reads the Set again."""


def _parse_scale(kind: str, rest: tuple[str, ...], replicas: int | None) -> tuple[str, int]:
    """``set web 3``, ``set/web 3`` or ``set/web --replicas 3`` -> ``("web", 3)``."""
    args = list(rest)
    name = parse_ref(kind, None if "/" in kind or not args else args.pop(0), "set")
    if args and replicas is not None:
        raise ValueError("give the replica count once: N or --replicas N")
    if len(args) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(args[1:])}")
    if args:
        if not args[0].isdigit():
            raise ValueError(f"{args[0]!r} is not a replica count (0 or more)")
        return name, int(args[0])
    if replicas is None:
        raise ValueError("how many replicas? give N or --replicas N")
    return name, replicas


def _duration(text: str | None) -> float | None:
    return None if text is None else parse_duration(text).total_seconds()


async def get_set(session: Session, name: str) -> SetView:
    return parse_reply(SetReply, await session.query("set", "get", {"name": name})).set


@click.command("scale")
@click.argument("kind", metavar="set[/NAME]")
@click.argument("rest", nargs=-1, metavar="[NAME] [N]")
@click.option("--replicas", type=click.IntRange(min=0), help="The new replica count.")
@click.option("--dry-run", is_flag=True, help="Validate on the server; change nothing.")
@pass_app
def scale_cmd(
    app: App, kind: str, rest: tuple[str, ...], replicas: int | None, dry_run: bool
) -> None:
    """Change how many tasks a Set runs: `scale set web 6` or `scale set/web --replicas 6`."""
    name, count = usage(lambda: _parse_scale(kind, rest, replicas))
    body = {"name": name, "replicas": count, "dry_run": dry_run}
    reply = app.run(lambda session: session.write("set", "scale", body))
    assert reply is not None
    report(app.out, f"set/{name}", f"scaled to {count}", reply, dry_run=dry_run)


# ---- rollout -------------------------------------------------------------------------------------


@click.group("rollout")
def rollout_group() -> None:
    """Follow, list, undo or restart a Set's rollouts."""


F = TypeVar("F", bound=Callable[..., Any])


def _set_args(fn: F) -> F:
    """``set/NAME`` or ``set NAME``."""
    return click.argument("kind", metavar="set/NAME")(click.argument("name", required=False)(fn))


class RolloutFailed(Exception):
    """``rollout status`` saw the rollout fail or gave up (exit 1, not an error code)."""


async def watch_rollout(session: Session, out: Output, name: str, timeout: float | None) -> str:
    """Poll until the rollout ends; its final line, or ``RolloutFailed``."""
    session.quiet = True
    view = await get_set(session, name)
    revision = view.status.template_revision
    async with out.progress(rollout_line(view, revision)) as update:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    verdict, why = rollout_verdict(view, revision)
                    if verdict == "complete":
                        return f"set/{name} rolled out: revision {revision}, " + (
                            f"{view.status.available} of {view.config.replicas} available"
                        )
                    if verdict == "failed":
                        raise RolloutFailed(f"rollout of set/{name} failed: {why}")
                    update(rollout_line(view, revision))
                    await asyncio.sleep(POLL_S)
                    view = await get_set(session, name)
        except TimeoutError:
            assert timeout is not None
            last = rollout_line(view, revision)
            raise RolloutFailed(f"timed out after {timeout:g}s; {last}") from None


@rollout_group.command("status")
@_set_args
@click.option("--timeout", "timeout", metavar="DURATION", help="Give up after e.g. 5m (exit 1).")
@pass_app
def rollout_status_cmd(app: App, kind: str, name: str | None, timeout: str | None) -> None:
    """Wait until the Set's rollout completes (exit 0), or fails or times out (exit 1)."""
    set_name = usage(lambda: parse_ref(kind, name, "set"))
    seconds = usage(lambda: _duration(timeout), "--timeout")
    try:
        line = app.run(lambda session: watch_rollout(session, app.out, set_name, seconds))
    except RolloutFailed as failed:
        app.out.note(f"error: {failed}")
        raise Exit(1) from None
    if line is not None:
        app.out.line(line)


@rollout_group.command("history")
@_set_args
@click.option("--revision", type=click.IntRange(min=1), help="Show this revision's template.")
@pass_app
def rollout_history_cmd(app: App, kind: str, name: str | None, revision: int | None) -> None:
    """List the Set's template revisions (the current one marked *), oldest first."""
    set_name = usage(lambda: parse_ref(kind, name, "set"))
    view = app.run(lambda session: get_set(session, set_name))
    assert view is not None
    if revision is None:
        for line in render.format_table(render.HISTORY_HEADERS, render.history_rows(view)):
            app.out.line(line)
        return
    for entry in view.history:
        if entry.revision == revision:
            app.out.line(to_yaml(entry.template.model_dump(mode="json")))
            return
    kept = ", ".join(str(h.revision) for h in view.history)
    raise click.BadParameter(f"set/{set_name} has no revision {revision} (kept: {kept})")


def _write(app: App, verb: str, body: dict[str, Any], done: str) -> WriteReply:
    reply = app.run(lambda session: session.write("set", verb, body))
    assert reply is not None
    report(app.out, f"set/{body['name']}", done, reply, dry_run=bool(body.get("dry_run")))
    return reply


@rollout_group.command("undo")
@_set_args
@click.option("--to-revision", type=click.IntRange(min=1), help="Default: the previous one.")
@click.option("--dry-run", is_flag=True, help="Validate on the server; change nothing.")
@pass_app
def rollout_undo_cmd(
    app: App, kind: str, name: str | None, to_revision: int | None, dry_run: bool
) -> None:
    """Roll the Set back to an earlier template (as a new revision)."""
    set_name = usage(lambda: parse_ref(kind, name, "set"))
    body = {"name": set_name, "to_revision": to_revision, "dry_run": dry_run}
    _write(app, "undo", body, "rolled back")


@rollout_group.command("restart")
@_set_args
@click.option("--dry-run", is_flag=True, help="Validate on the server; change nothing.")
@pass_app
def rollout_restart_cmd(app: App, kind: str, name: str | None, dry_run: bool) -> None:
    """Replace every task of the Set, a few at a time (its update strategy)."""
    set_name = usage(lambda: parse_ref(kind, name, "set"))
    _write(app, "restart", {"name": set_name, "dry_run": dry_run}, "restarted")
