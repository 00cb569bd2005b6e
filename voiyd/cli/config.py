"""voiydctl's config file: named contexts (a NATS server and how to authenticate to it).

The file is YAML ``{version: config/v1, current: NAME, contexts: [{name, server, creds?, tls_ca?,
tls_cert?, tls_key?}]}`` at ``platformdirs.user_config_dir("voiyd")/config.yaml`` unless a path
is given. ``save_context`` is the one function other programs call (``voiyd up`` writes the
``local`` context). This module knows nothing of click; writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Final, Literal

import platformdirs
import yaml
from pydantic import Field

from voiyd.api.specs import Frozen, Name
from voiyd.api.validation import parse_model
from voiyd.bus.connect import NatsOptions
from voiyd.errors import AlreadyExistsError, InvalidRequestError, NotFoundError

DEFAULT_SERVER = "nats://127.0.0.1:4222"
DEFAULT_CONTEXT = "default"
CONFIG_VERSION: Final = "config/v1"


class Context(Frozen):
    name: Name
    server: str = Field(min_length=1, max_length=4096)
    """One NATS URL, or several separated by commas (a cluster)."""
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    def nats_options(self) -> NatsOptions:
        return NatsOptions(
            servers=split_servers(self.server),
            creds_file=_path(self.creds),
            tls_ca=_path(self.tls_ca),
            tls_cert=_path(self.tls_cert),
            tls_key=_path(self.tls_key),
        )


class ConfigFile(Frozen):
    version: Literal["config/v1"] = CONFIG_VERSION
    current: str | None = None
    contexts: list[Context] = Field(default_factory=list)

    def find(self, name: str) -> Context | None:
        return next((c for c in self.contexts if c.name == name), None)

    def with_context(self, context: Context, *, make_current: bool) -> ConfigFile:
        """A copy with ``context`` added (or replacing the one of the same name)."""
        others = [c for c in self.contexts if c.name != context.name]
        contexts = sorted([*others, context], key=lambda c: c.name)
        current = context.name if make_current or self.current is None else self.current
        return self.model_copy(update={"contexts": contexts, "current": current})


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def split_servers(server: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in server.split(",") if s.strip())


def default_path() -> Path:
    return Path(platformdirs.user_config_dir("voiyd")) / "config.yaml"


def load(path: Path | None) -> ConfigFile:
    """The config at ``path`` (default location when None); an absent file is an empty config."""
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigFile()
    except OSError as exc:
        raise InvalidRequestError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidRequestError(f"config file {path} is not valid YAML: {exc}") from None
    try:
        return parse_model(ConfigFile, data)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"config file {path}: {exc.message}", exc.fields) from None


def dump(config: ConfigFile) -> str:
    data = config.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False)


def save(path: Path | None, config: ConfigFile) -> Path:
    """Write ``config`` atomically (owner-only permissions: it may name credentials)."""
    path = path or default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dump(config))
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_context(path: Path | None, name: str, server: str, *, make_current: bool) -> Path:
    """Add or update context ``name`` -> ``server`` (keeping its other settings); return the path.

    ``voiyd up`` calls this with ``name="local"`` and ``make_current=True``.
    """
    config = load(path)
    old = config.find(name)
    fields = old.model_dump() if old else {}
    context = parse_model(Context, {**fields, "name": name, "server": server})
    return save(path, config.with_context(context, make_current=make_current))


def init(path: Path | None, *, force: bool) -> Path:
    """Create a config with one context ``default`` -> the local NATS; refuse to overwrite."""
    target = path or default_path()
    if target.exists() and not force:
        raise AlreadyExistsError(f"config file {target} already exists (use --force to replace it)")
    context = Context(name=DEFAULT_CONTEXT, server=DEFAULT_SERVER)
    return save(target, ConfigFile(current=DEFAULT_CONTEXT, contexts=[context]))


def use(path: Path | None, name: str) -> Path:
    config = load(path)
    if config.find(name) is None:
        raise NotFoundError(_unknown(name, path))
    return save(path, config.model_copy(update={"current": name}))


def _unknown(name: str, path: Path | None) -> str:
    return (
        f"context {name!r} not found in {path or default_path()} "
        "(see `voiydctl config list`, or add it with `voiydctl config create-server`)"
    )


def resolve(
    path: Path | None,
    context: str | None,
    server: str | None,
    creds: Path | None,
) -> tuple[str, NatsOptions]:
    """Where the connection settings come from (for messages) and the settings themselves.

    Flags override the context's values; without a config file or flags the local default
    (``nats://127.0.0.1:4222``) applies.
    """
    config = load(path)
    name = context or config.current
    chosen = config.find(name) if name else None
    if name and chosen is None and (context or not server):
        raise NotFoundError(_unknown(name, path))
    if chosen is None:
        chosen = Context(name=DEFAULT_CONTEXT, server=DEFAULT_SERVER)
    opts = chosen.nats_options()
    if server:
        opts = replace(opts, servers=split_servers(server))
    if creds:
        opts = replace(opts, creds_file=creds)
    source = "set by --server/VOIYD_SERVER" if server else f"context {chosen.name}"
    return source, opts
