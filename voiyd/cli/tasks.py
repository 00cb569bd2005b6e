"""Task commands: ``run``, ``start``, ``stop`` (``delete`` is in ``delete``, for every kind).

``run`` builds a Task document from its flags and lets the server validate it (so the CLI and
``apply -f`` get the same answers); only the ``KEY=VALUE`` syntax is checked here. Every command
prints ``task/NAME <verb> (revision N)``, or ``unchanged`` when nothing had to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rich_click as click

from voiyd.api.requests import WriteReply
from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.client import Session
from voiyd.cli.output import Output
from voiyd.cli.parse import parse_pairs, parse_target
from voiyd.cli.wait import wait_running


def task_document(name: str, args: tuple[str, ...], opts: Mapping[str, Any]) -> dict[str, Any]:
    """The Task document ``run``'s flags describe; unset flags are left to the defaults."""
    resources = {k: opts[k] for k in ("cpus", "memory") if opts.get(k) is not None}
    caps = {"add": list(opts["cap_add"]), "drop": list(opts["cap_drop"])}
    config: dict[str, Any] = {
        "runtime": opts.get("runtime"),
        "image": opts.get("image"),
        "args": list(args),
        "env": usage(lambda: parse_pairs(opts["env"]), "--env"),
        "ports": list(opts["ports"]),
        "mounts": list(opts["mounts"]),
        "node_selector": ",".join(opts["node_selector"]),
        "resources": resources,
        "restart": opts.get("restart"),
        "workdir": opts.get("workdir"),
        "user": opts.get("user"),
        "privileged": opts["privileged"],
        "capabilities": {k: v for k, v in caps.items() if v},
    }
    labels = usage(lambda: parse_pairs(opts["labels"]), "--label")
    return {
        "version": "task/v1",
        "meta": {"name": name, "labels": labels},
        "config": {k: v for k, v in config.items() if v not in (None, [], {}, "")},
    }


def report(out: Output, ref: str, verb: str, reply: WriteReply, *, dry_run: bool = False) -> None:
    """``task/web created (revision 7)``; ``unchanged`` when the server changed nothing."""
    if dry_run:
        out.line(f"{ref} {verb if reply.changed else 'unchanged'} (dry run)")
    else:
        out.line(f"{ref} {verb if reply.changed else 'unchanged'} (revision {reply.revision})")


def show_result(out: Output, ref: str, verb: str, reply: WriteReply, fmt: str | None) -> None:
    if fmt in ("json", "yaml") and reply.task is not None:
        out.data(reply.task.model_dump(mode="json"), fmt)
    elif fmt == "name":
        out.line(ref)
    else:
        report(out, ref, verb, reply)


_WAIT = click.option(
    "--wait", is_flag=True, help="Wait until the task runs; exit 9 if it fails instead."
)
_WAIT_TIMEOUT = click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="Seconds to wait with --wait before giving up (exit 7).",
)


@click.command("run")
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--image", help="Container image (docker runtime).")
@click.option("--port", "ports", multiple=True, metavar="[IP:]HOST:CONTAINER[/PROTO]")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Environment variable.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Task label.")
@click.option("--node-selector", multiple=True, metavar="SELECTOR", help="e.g. disk=ssd")
@click.option("--mount", "mounts", multiple=True, metavar="VOLUME|/HOST/PATH:/DEST[:ro]")
@click.option("--cpus", type=float, help="CPUs to reserve and limit to (e.g. 0.5).")
@click.option("--memory", help="Memory limit (e.g. 256m, 1Gi).")
@click.option("--restart", help="always, never or on-failure[:MAX].")
@click.option("--runtime", type=click.Choice(["docker", "exec"]), help="Default: docker.")
@click.option("--workdir", help="Working directory inside the task.")
@click.option("--user", help="user[:group] to run as.")
@click.option("--privileged", is_flag=True, help="Run privileged (docker).")
@click.option("--cap-add", multiple=True, metavar="CAP", help="Add a Linux capability.")
@click.option("--cap-drop", multiple=True, metavar="CAP", help="Drop a Linux capability.")
@click.option("--dry-run", is_flag=True, help="Validate on the server; create nothing.")
@_WAIT
@_WAIT_TIMEOUT
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default=None)
@pass_app
def run_cmd(app: App, /, name: str, args: tuple[str, ...], **opts: Any) -> None:
    """Create task NAME and start it; the command line goes after `--`.

    Example: voiydctl run web --image nginx:alpine --port 8080:80 -- nginx -g 'daemon off;'
    """
    doc = task_document(name, args, opts)
    dry_run: bool = opts["dry_run"]
    body = {"task": doc, "dry_run": dry_run}

    async def create(session: Session) -> WriteReply:
        reply = await session.write("task", "create", body)
        if opts["wait"] and not dry_run:
            task = await wait_running(session, name, reply.revision, opts["wait_timeout"])
            return reply.model_copy(update={"task": task})
        return reply

    reply = app.run(create)
    assert reply is not None
    if dry_run and opts["output"] is None:
        report(app.out, f"task/{name}", "created", reply, dry_run=True)
    else:
        show_result(app.out, f"task/{name}", "created", reply, opts["output"])


def _task_name(kind: str, name: str | None) -> str:
    parsed_kind, parsed_name = usage(lambda: parse_target(kind, name))
    if parsed_kind != "task":
        raise click.UsageError(f"only tasks can be changed this way, not {parsed_kind}s")
    if not parsed_name:
        raise click.UsageError("which task? give its name: task NAME or task/NAME")
    return parsed_name


def _simple_write(
    app: App, verb: str, past: str, name: str, expected: int | None, wait: float | None = None
) -> None:
    body: dict[str, Any] = {"name": name}
    if expected is not None:
        body["expected_revision"] = expected

    async def write(session: Session) -> WriteReply:
        reply = await session.write("task", verb, body)
        if wait is not None:
            await wait_running(session, name, reply.revision, wait)
        return reply

    reply = app.run(write)
    assert reply is not None
    report(app.out, f"task/{name}", past, reply)


EXPECTED = click.option(
    "--expected-revision",
    type=click.IntRange(min=0),
    help="Fail with a conflict (exit 6) unless the object is at this revision.",
)


@click.command("start")
@click.argument("kind", metavar="task")
@click.argument("name", required=False)
@EXPECTED
@_WAIT
@_WAIT_TIMEOUT
@pass_app
def start_cmd(
    app: App,
    kind: str,
    name: str | None,
    expected_revision: int | None,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Start a stopped, exited or failed task again."""
    target = _task_name(kind, name)
    _simple_write(
        app, "start", "started", target, expected_revision, wait_timeout if wait else None
    )


@click.command("stop")
@click.argument("kind", metavar="task")
@click.argument("name", required=False)
@EXPECTED
@pass_app
def stop_cmd(app: App, kind: str, name: str | None, expected_revision: int | None) -> None:
    """Stop a task; it keeps its spec and history (start it again with `start`)."""
    _simple_write(app, "stop", "stopped", _task_name(kind, name), expected_revision)
