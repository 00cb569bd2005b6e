"""``voiydctl``: the entry point. Global options, the command list, and the one error handler.

Every ``VoiydError`` a command raises ends here: one ``error: <message>`` line on stderr and the
exit code ``output.EXIT_CODES`` gives its class (click's usage errors keep 2). Options can also
come from ``VOIYD_*`` environment variables (``VOIYD_SERVER``, ``VOIYD_CONTEXT``,
``VOIYD_CONFIG``, ``VOIYD_TIMEOUT``); this is the only module that reads the environment.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from pathlib import Path
from typing import Any

import rich_click as click
from click.exceptions import Exit

from voiyd import __version__
from voiyd.cli.app import App, pass_app
from voiyd.cli.apply import apply_cmd
from voiyd.cli.contexts import config_group
from voiyd.cli.delete import delete_cmd
from voiyd.cli.diff import diff_cmd
from voiyd.cli.edit import edit_cmd
from voiyd.cli.events import events_cmd
from voiyd.cli.get import describe_cmd, get_cmd
from voiyd.cli.logs import logs_cmd
from voiyd.cli.nodes import cordon_cmd, drain_cmd, label_cmd, uncordon_cmd
from voiyd.cli.output import Output, exit_code
from voiyd.cli.sets import rollout_group, scale_cmd
from voiyd.cli.tasks import run_cmd, start_cmd, stop_cmd
from voiyd.cli.upgrade import upgrade_group
from voiyd.cli.volumes import create_group
from voiyd.errors import VoiydError

_CLICK_FLOW = (click.ClickException, Exit, click.Abort)


class VoiydGroup(click.RichGroup):
    """Turns any error a command raises into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _CLICK_FLOW:
            raise
        except BrokenPipeError:
            _quiet_stdout()  # `voiydctl events | head`: the reader left; that is not an error
            ctx.exit(0)
        except Exception as err:
            out = ctx.obj.out if isinstance(ctx.obj, App) else Output()
            out.error(err)
            ctx.exit(exit_code(err))


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"voiydctl:{user}"


def _debug_logging(ctx: click.Context) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(old_level)

    ctx.call_on_close(restore)


@click.group(
    cls=VoiydGroup,
    context_settings={"auto_envvar_prefix": "VOIYD", "help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    envvar="VOIYD_CONFIG",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file [default: ~/.config/voiyd/config.yaml].",
)
@click.option("--context", help="Context to use instead of the current one.")
@click.option("--server", metavar="URL", help="NATS URL; overrides the context's server.")
@click.option(
    "--creds",
    type=click.Path(path_type=Path, dir_okay=False),
    help="NATS credentials file; overrides the context's.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the connection and for each reply.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks, error details and logs.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    context: str | None,
    server: str | None,
    creds: Path | None,
    timeout: float,
    debug: bool,
) -> None:
    """voiydctl: run and inspect workloads on a voiyd cluster."""
    if debug:
        _debug_logging(ctx)
    ctx.obj = App(
        config_path=config_path,
        context=context,
        server=server,
        creds=creds,
        timeout=timeout,
        actor=_actor(),
        out=Output(debug=debug),
    )


@cli.command("version")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]), default="text")
@pass_app
def version_cmd(app: App, fmt: str) -> None:
    """Print the client's version and, if it is reachable, the server's."""
    server: dict[str, Any] | None = None
    try:
        server = app.run(lambda session: session.call("system", "info", {}))
    except VoiydError as err:
        app.out.note(f"note: server not reachable: {err.message}")
    if fmt != "text":
        app.out.data({"client": {"version": __version__}, "server": server}, fmt)
        return
    app.out.line(f"Client version: {__version__}")
    if server is not None:
        app.out.line(
            f"Server version: {server.get('version')} (id {server.get('server_id')}, "
            f"event log at {server.get('stream_last_seq')}, "
            f"projection at {server.get('projection_seq')})"
        )


for _command in (
    config_group,
    run_cmd,
    create_group,
    apply_cmd,
    diff_cmd,
    edit_cmd,
    get_cmd,
    describe_cmd,
    delete_cmd,
    start_cmd,
    stop_cmd,
    scale_cmd,
    rollout_group,
    cordon_cmd,
    uncordon_cmd,
    drain_cmd,
    label_cmd,
    events_cmd,
    logs_cmd,
    upgrade_group,
):
    cli.add_command(_command)


def main() -> None:
    # Library warnings (a refused connection, say) are logged; without --debug the error line
    # says it all, so keep Python's last-resort handler from printing them too.
    logging.getLogger().addHandler(logging.NullHandler())
    cli(prog_name="voiydctl")


if __name__ == "__main__":
    main()
