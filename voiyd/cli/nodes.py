"""Node commands: ``cordon``, ``uncordon``, ``drain`` and ``label``.

``drain`` asks the server to drain the node, then (unless ``--no-wait``) polls the tasks until
none holds resources on the node and every task evicted from it has been placed elsewhere or
refused; it prints what could not move and exits 1 if anything could not. The tasks evicted
from the node are read from the event log (``task.evicted`` naming it) after the drain's own
event, so tasks that merely came and went are not counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import rich_click as click
from click.exceptions import Exit

from voiyd.api.requests import EventListReply, TaskListReply, WriteReply
from voiyd.api.units import parse_duration
from voiyd.api.views import EventView, TaskView
from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.client import Session, parse_reply
from voiyd.cli.kinds import EVENT_PAGE
from voiyd.cli.parse import parse_label_changes, parse_target
from voiyd.cli.progress import DrainState, drain_line, drain_state, evicted_from, stuck_lines
from voiyd.cli.tasks import report

POLL_S = 0.5
"""How often ``drain`` reads the tasks again."""


def _node_write(app: App, verb: str, past: str, body: dict[str, Any]) -> WriteReply:
    reply = app.run(lambda session: session.write("node", verb, body))
    assert reply is not None
    report(app.out, f"node/{body['name']}", past, reply, dry_run=bool(body.get("dry_run")))
    return reply


_DRY_RUN = click.option("--dry-run", is_flag=True, help="Validate on the server; change nothing.")


@click.command("cordon")
@click.argument("node")
@_DRY_RUN
@pass_app
def cordon_cmd(app: App, node: str, dry_run: bool) -> None:
    """Place no new task on NODE; its running tasks stay."""
    _node_write(app, "cordon", "cordoned", {"name": node, "dry_run": dry_run})


@click.command("uncordon")
@click.argument("node")
@_DRY_RUN
@pass_app
def uncordon_cmd(app: App, node: str, dry_run: bool) -> None:
    """Make NODE schedulable again (this also ends a drain)."""
    _node_write(app, "uncordon", "uncordoned", {"name": node, "dry_run": dry_run})


async def _tasks(session: Session) -> list[TaskView]:
    return parse_reply(TaskListReply, await session.query("task", "list", {})).tasks


async def _events_since(session: Session, after: int) -> list[EventView]:
    out: list[EventView] = []
    while True:
        body = {"kind": "task", "since_seq": after, "limit": EVENT_PAGE}
        reply = parse_reply(EventListReply, await session.call("event", "list", body))
        out += reply.events
        if len(reply.events) < EVENT_PAGE:
            return out
        after = reply.events[-1].seq


async def _drain_state(session: Session, node: str, revision: int) -> DrainState:
    evicted = evicted_from(await _events_since(session, revision), node)
    return drain_state(await _tasks(session), evicted, node)


async def wait_drained(
    session: Session, node: str, revision: int, timeout: float | None
) -> DrainState:
    """Poll until the node holds no task and what was evicted from it has landed somewhere."""
    session.quiet = True
    state = await _drain_state(session, node, revision)
    try:
        async with session.out.progress(drain_line(node, state)) as update:
            async with asyncio.timeout(timeout):
                while not state.done:
                    update(drain_line(node, state))
                    await asyncio.sleep(POLL_S)
                    state = await _drain_state(session, node, revision)
    except TimeoutError:
        return state
    return state


@click.command("drain")
@click.argument("node")
@click.option(
    "--deadline",
    metavar="DURATION",
    help="After this (e.g. 5m) move every task left, regardless of its Set's max_parallel.",
)
@click.option("--no-wait", is_flag=True, help="Start the drain and return at once.")
@click.option("--timeout", metavar="DURATION", help="Stop waiting after this (exit 1).")
@_DRY_RUN
@pass_app
def drain_cmd(
    app: App,
    node: str,
    deadline: str | None,
    no_wait: bool,
    timeout: str | None,
    dry_run: bool,
) -> None:
    """Move every task off NODE (a Set's tasks a few at a time) and keep new ones away.

    Waits until the node is empty, then lists what could not be placed elsewhere: exit 0 when
    everything moved, 1 otherwise. `uncordon` ends a drain.
    """
    body: dict[str, Any] = {"name": node, "dry_run": dry_run}
    if deadline is not None:
        body["deadline_s"] = usage(lambda: parse_duration(deadline).total_seconds(), "--deadline")
    wait_s = usage(
        lambda: parse_duration(timeout).total_seconds() if timeout else None, "--timeout"
    )

    async def drain(session: Session) -> tuple[WriteReply, DrainState | None]:
        reply = await session.write("node", "drain", body)
        if no_wait or dry_run:
            return reply, None
        return reply, await wait_drained(session, node, reply.revision, wait_s)

    result = app.run(drain)
    assert result is not None
    reply, state = result
    report(app.out, f"node/{node}", "draining", reply, dry_run=dry_run)
    if state is None:
        return
    if not state.done:
        app.out.note(f"error: gave up waiting after {timeout}; {drain_line(node, state)}")
        raise Exit(1)
    if state.stuck:
        app.out.line(f"node/{node} drained, but {len(state.stuck)} could not move:")
        for line in stuck_lines(state):
            app.out.line(f"  {line}")
        raise Exit(1)
    app.out.line(f"node/{node} drained")


@click.command("label")
@click.argument("kind", metavar="node")
@click.argument("rest", nargs=-1, required=True, metavar="[NAME] KEY=VALUE|KEY- ...")
@_DRY_RUN
@pass_app
def label_cmd(app: App, kind: str, rest: tuple[str, ...], dry_run: bool) -> None:
    """Set (KEY=VALUE) or remove (KEY-) labels of a node or task: `label node n1 disk=ssd gpu-`.

    Tasks on a node whose node selector no longer matches are moved elsewhere.
    """
    args = list(rest)
    kind_name, name = usage(lambda: parse_target(kind, None if "/" in kind else args.pop(0)))
    if kind_name not in ("node", "task"):
        raise click.UsageError(f"only nodes and tasks can be labelled this way, not {kind_name}s")
    changes = usage(lambda: parse_label_changes(args))
    body = {"name": name, "labels": changes, "dry_run": dry_run}
    verb = "label" if kind_name == "node" else "patch"
    reply = app.run(lambda session: session.write(kind_name, verb, body))
    assert reply is not None
    report(app.out, f"{kind_name}/{name}", "labeled", reply, dry_run=dry_run)
