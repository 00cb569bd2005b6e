"""The auth directory: voiyd's users, their credentials files and the nats-server config for them.

Layout (the directory and every secret in it are owner-only)::

    <dir>/voiyd-auth.json        users: name, role, node, public nkey (no secrets)
    <dir>/auth.conf              nats-server ``authorization`` block, rewritten on every change
    <dir>/creds/<user>.creds     each user's nkey seed: the credentials file it connects with

Every change writes the new ``auth.conf`` whole (a temporary file, then a rename), so a server
that reloads at any moment reads either the old or the new users. The server applies it on
``nats-server --signal reload`` (SIGHUP): removed users' connections are closed then and their
next connection is refused.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict
from pathlib import Path

import nkeys

from voiyd import __version__
from voiyd.auth.render import User, render_authorization, render_creds, user_name
from voiyd.auth.roles import CLI_ROLES, DAEMON_ROLES, NODE_PREFIX, ROLES, Role
from voiyd.bus import subjects
from voiyd.errors import AlreadyExistsError, InvalidRequestError, NotFoundError

STATE_FILE = "voiyd-auth.json"
CONFIG_FILE = "auth.conf"
CREDS_DIR = "creds"
STATE_VERSION = "auth/v1"
ADMIN_USER = "admin"


def new_user_key() -> tuple[str, str]:
    """A new user nkey: ``(seed, public key)``."""
    seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key
    return seed.decode(), public.decode()


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class AuthDir:
    """One auth directory; every method reads the state afresh and writes what changed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    def creds_path(self, user: str) -> Path:
        return self.path / CREDS_DIR / f"{user}.creds"

    def exists(self) -> bool:
        return (self.path / STATE_FILE).exists()

    def users(self) -> list[User]:
        try:
            data = json.loads((self.path / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(
                f"no voiyd auth directory at {self.path} (create one with `voiyd auth init`)"
            ) from None
        if data.get("version") != STATE_VERSION:
            raise InvalidRequestError(f"{self.path / STATE_FILE}: unknown version")
        return [User(**u) for u in data["users"]]

    def find(self, name: str) -> User | None:
        return next((u for u in self.users() if u.name == name), None)

    def init(self, *, force: bool = False) -> list[User]:
        """Users for the daemons and an ``admin`` for the CLI; refuses to overwrite."""
        if self.exists() and not force:
            raise AlreadyExistsError(
                f"{self.path} already holds voiyd credentials (use --force to start over: "
                "every existing credentials file stops working)"
            )
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.chmod(0o700)
        for old in (self.path / CREDS_DIR).glob("*.creds"):
            old.unlink()
        users = [self._issue(role, role) for role in DAEMON_ROLES]
        users.append(self._issue(ADMIN_USER, "admin"))
        self._save(users)
        return users

    def add_node(self, node: str) -> User:
        """Credentials for node ``node`` (user ``node-<node>``)."""
        return self._add(node, "node")

    def add_user(self, name: str, role: Role) -> User:
        """A CLI user (``admin`` or ``viewer``)."""
        if role not in CLI_ROLES:
            raise InvalidRequestError(
                f"role {role!r}: users are {' or '.join(CLI_ROLES)} (nodes: `voiyd auth add-node`)"
            )
        if name.startswith(NODE_PREFIX):
            raise InvalidRequestError(f"user {name!r}: names starting {NODE_PREFIX!r} are nodes'")
        return self._add(name, role)

    def remove_node(self, node: str) -> User:
        return self.remove(user_name("node", subjects.token(node, "node")))

    def remove(self, name: str) -> User:
        """Forget user ``name`` and delete its credentials file."""
        users = self.users()
        gone = next((u for u in users if u.name == name), None)
        if gone is None:
            raise NotFoundError(f"no user {name!r} in {self.path}")
        self._save([u for u in users if u.name != name])
        self.creds_path(name).unlink(missing_ok=True)
        return gone

    def _add(self, name: str, role: Role) -> User:
        if role not in ROLES:
            raise InvalidRequestError(f"unknown role {role!r}")
        users = self.users()
        full = user_name(role, subjects.token(name, "node" if role == "node" else "user"))
        if any(u.name == full for u in users):
            raise AlreadyExistsError(f"user {full!r} already exists in {self.path}")
        user = self._issue(name, role)
        self._save([*users, user])
        return user

    def _issue(self, name: str, role: Role) -> User:
        seed, public = new_user_key()
        node = name if role == "node" else None
        user = User(name=user_name(role, name), role=role, nkey=public, node=node)
        write_private(self.creds_path(user.name), render_creds(user, seed))
        return user

    def _save(self, users: list[User]) -> None:
        state = {"version": STATE_VERSION, "users": [asdict(u) for u in users]}
        write_private(self.path / STATE_FILE, json.dumps(state, indent=2) + "\n")
        text = render_authorization(users, generated_by=f"voiyd auth (voiyd {__version__})")
        write_private(self.config_path, text, mode=0o640)
