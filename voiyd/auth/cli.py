"""``voiyd auth`` and ``voiyd certs``: issue NATS credentials and TLS certificates for voiyd.

``auth`` keeps an auth directory (``voiyd.auth.store``): one nkey user per daemon role, node
and CLI user, and the nats-server ``authorization`` config for them, rewritten on each change.
``certs`` keeps a small CA (``voiyd.auth.pki``). Both print what they wrote and what to do next.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import rich_click as click

from voiyd.auth.pki import CertsDir
from voiyd.auth.render import User
from voiyd.auth.roles import CLI_ROLES
from voiyd.auth.store import AuthDir
from voiyd.errors import VoiydError

DEFAULT_AUTH_DIR = Path("voiyd-auth")
DEFAULT_CERTS_DIR = Path("voiyd-certs")

_AUTH_DIR = click.option(
    "--dir",
    "path",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="VOIYD_AUTH_DIR",
    default=DEFAULT_AUTH_DIR,
    show_default=True,
    help="The auth directory (env VOIYD_AUTH_DIR).",
)
_CERTS_DIR = click.option(
    "--dir",
    "path",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="VOIYD_CERTS_DIR",
    default=DEFAULT_CERTS_DIR,
    show_default=True,
    help="The certificates directory (env VOIYD_CERTS_DIR).",
)
_RELOAD = click.option(
    "--reload",
    "reload_pid",
    type=int,
    metavar="PID",
    help="Send SIGHUP to this nats-server so that it reloads its config now.",
)


def _fail(err: VoiydError) -> click.ClickException:
    return click.ClickException(err.message)


def _after_change(auth: AuthDir, reload_pid: int | None) -> None:
    if reload_pid is None:
        click.echo(
            f"updated {auth.config_path}; apply it: nats-server --signal reload=<pid> "
            "(or kill -HUP <pid>)"
        )
        return
    try:
        os.kill(reload_pid, signal.SIGHUP)
    except OSError as exc:
        raise click.ClickException(f"cannot signal nats-server {reload_pid}: {exc}") from exc
    click.echo(f"updated {auth.config_path}; nats-server {reload_pid} reloads it")


def _issued(auth: AuthDir, user: User) -> None:
    click.echo(f"{user.name} (role {user.role}): {auth.creds_path(user.name)}")


@click.group("auth")
def auth_group() -> None:
    """NATS credentials for voiyd: per-role nkey users and the server config for them."""


@auth_group.command("init")
@_AUTH_DIR
@click.option("--force", is_flag=True, help="Start over: every existing credential stops working.")
def auth_init(path: Path, force: bool) -> None:
    """Create the auth directory: users server, scheduler, logrelay and admin."""
    auth = AuthDir(path)
    try:
        users = auth.init(force=force)
    except VoiydError as err:
        raise _fail(err) from None
    for user in users:
        _issued(auth, user)
    click.echo(
        f"wrote {auth.config_path}: include it in the nats-server config "
        f'(include "{auth.config_path.absolute()}"; see deploy/nats/secure/)'
    )


@auth_group.command("add-node")
@click.argument("name")
@_AUTH_DIR
@_RELOAD
def auth_add_node(name: str, path: Path, reload_pid: int | None) -> None:
    """Issue credentials for node NAME (user node-NAME) and update the server config."""
    auth = AuthDir(path)
    try:
        user = auth.add_node(name)
    except VoiydError as err:
        raise _fail(err) from None
    _issued(auth, user)
    click.echo(f"run the agent with: voiyd-node --name {name} --creds <that file>")
    _after_change(auth, reload_pid)


@auth_group.command("remove-node")
@click.argument("name")
@_AUTH_DIR
@_RELOAD
def auth_remove_node(name: str, path: Path, reload_pid: int | None) -> None:
    """Revoke node NAME's credentials (its connections end when the server reloads)."""
    auth = AuthDir(path)
    try:
        user = auth.remove_node(name)
    except VoiydError as err:
        raise _fail(err) from None
    click.echo(f"removed {user.name}")
    _after_change(auth, reload_pid)


@auth_group.command("add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(CLI_ROLES), required=True)
@_AUTH_DIR
@_RELOAD
def auth_add_user(name: str, role: str, path: Path, reload_pid: int | None) -> None:
    """Issue credentials for a voiydctl user: admin (everything) or viewer (read only)."""
    auth = AuthDir(path)
    try:
        user = auth.add_user(name, "admin" if role == "admin" else "viewer")
    except VoiydError as err:
        raise _fail(err) from None
    _issued(auth, user)
    click.echo("use it: voiydctl config create-server NAME --server URL --creds <that file>")
    _after_change(auth, reload_pid)


@auth_group.command("remove-user")
@click.argument("name")
@_AUTH_DIR
@_RELOAD
def auth_remove_user(name: str, path: Path, reload_pid: int | None) -> None:
    """Revoke user NAME's credentials (a node's user is node-NAME)."""
    auth = AuthDir(path)
    try:
        user = auth.remove(name)
    except VoiydError as err:
        raise _fail(err) from None
    click.echo(f"removed {user.name}")
    _after_change(auth, reload_pid)


@auth_group.command("list")
@_AUTH_DIR
def auth_list(path: Path) -> None:
    """The users and their roles."""
    try:
        users = AuthDir(path).users()
    except VoiydError as err:
        raise _fail(err) from None
    for user in sorted(users, key=lambda u: u.name):
        click.echo(f"{user.name:<24} {user.role:<10} {user.nkey}")


@click.group("certs")
def certs_group() -> None:
    """TLS for NATS: a CA, the server's certificate and client certificates (mTLS)."""


@certs_group.command("init")
@_CERTS_DIR
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="An address or DNS name clients dial the server by (repeatable); "
    "127.0.0.1, ::1 and localhost are always in.",
)
@click.option("--client", "clients", multiple=True, help="Also a client certificate for NAME.")
@click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing CA.")
def certs_init(
    path: Path, hosts: tuple[str, ...], clients: tuple[str, ...], days: int, force: bool
) -> None:
    """Create a CA and a server certificate (and client certificates)."""
    certs = CertsDir(path)
    try:
        certs.init(list(hosts), days=days, force=force)
        for name in clients:
            certs.issue_client(name, days=days)
    except VoiydError as err:
        raise _fail(err) from None
    click.echo(f"CA: {certs.ca.cert} (give it to every client: --tls-ca, a context's tls_ca)")
    click.echo(f"server: {certs.server.cert}, {certs.server.key}")
    for name in clients:
        click.echo(f"client {name}: {certs.client(name).cert}, {certs.client(name).key}")


@certs_group.command("add-client")
@click.argument("name")
@_CERTS_DIR
@click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True)
def certs_add_client(name: str, path: Path, days: int) -> None:
    """Issue a client certificate for NAME (for servers with `verify: true`)."""
    certs = CertsDir(path)
    try:
        files = certs.issue_client(name, days=days)
    except VoiydError as err:
        raise _fail(err) from None
    click.echo(f"client {name}: {files.cert}, {files.key} (--tls-cert, --tls-key)")
