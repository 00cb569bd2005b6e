"""``config init|create-server|use|view|list``: manage the contexts in voiydctl's config file.

The file model and its reading and writing live in ``voiyd.cli.config``; these commands only
parse flags and print what changed.
"""

from __future__ import annotations

from pathlib import Path

import rich_click as click

from voiyd.api.validation import parse_model
from voiyd.cli import config, render
from voiyd.cli.app import App, pass_app

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.group("config")
def config_group() -> None:
    """Manage contexts: which NATS server voiydctl talks to, and with which credentials."""


@config_group.command("init")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@pass_app
def init_cmd(app: App, force: bool) -> None:
    """Create the config file with a context `default` for a local cluster."""
    path = config.init(app.config_path, force=force)
    app.out.line(f"wrote {path} (context default -> {config.DEFAULT_SERVER}, current)")


@config_group.command("create-server")
@click.argument("name")
@click.option("--server", "url", required=True, metavar="URL", help="NATS URL(s), comma separated.")
@click.option("--creds", type=_FILE, help="NATS credentials file.")
@click.option("--tls-ca", type=_FILE, help="CA certificate to verify the server.")
@click.option("--tls-cert", type=_FILE, help="Client certificate.")
@click.option("--tls-key", type=_FILE, help="Client certificate key.")
@click.option("--use", "make_current", is_flag=True, help="Make it the current context.")
@pass_app
def create_server_cmd(
    app: App,
    /,
    name: str,
    url: str,
    make_current: bool,
    **files: Path | None,
) -> None:
    """Add context NAME, or update it (options not given keep their old values)."""
    current = config.load(app.config_path)
    old = current.find(name)
    fields = old.model_dump() if old else {}
    given = {k: str(v.expanduser().absolute()) for k, v in files.items() if v is not None}
    context = parse_model(config.Context, {**fields, **given, "name": name, "server": url})
    updated = current.with_context(context, make_current=make_current)
    path = config.save(app.config_path, updated)
    marker = ", current" if updated.current == name else ""
    app.out.line(f"context {name} {'updated' if old else 'created'} in {path}{marker}")


@config_group.command("use")
@click.argument("name")
@pass_app
def use_cmd(app: App, name: str) -> None:
    """Make NAME the current context."""
    config.use(app.config_path, name)
    app.out.line(f"switched to context {name}")


@config_group.command("view")
@pass_app
def view_cmd(app: App) -> None:
    """Print the config file."""
    path = app.config_path or config.default_path()
    if not path.exists():
        app.out.note(f"no config file at {path} (`voiydctl config init` creates one)")
    app.out.line(config.dump(config.load(path)).rstrip("\n"))


@config_group.command("list")
@pass_app
def list_cmd(app: App) -> None:
    """List the contexts; the current one is marked with *."""
    cfg = config.load(app.config_path)
    if not cfg.contexts:
        app.out.note("No contexts (`voiydctl config init` creates one).")
        return
    rows = [
        ["*" if c.name == cfg.current else "", c.name, c.server, c.creds or render.NONE]
        for c in cfg.contexts
    ]
    for line in render.format_table(("CURRENT", "NAME", "SERVER", "CREDS"), rows):
        app.out.line(line)
