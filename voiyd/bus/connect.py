"""One way to connect to NATS: reconnect forever, log every connection change, TLS and creds.

Every process (and the CLI) connects through ``connect``; the settings come from its own
settings model. Connection trouble is logged with the connection name so several processes'
logs can be read side by side. A credentials file is either a NATS user JWT file or an nkey
seed file (what ``voiyd auth`` writes). With TLS configured the client starts TLS before it
says anything (``tls_handshake_first``), so nothing about its credentials ever crosses the wire
unencrypted, even towards a server that does not ask for TLS. nats-server's refusals
("permissions violation", "authorization violation") are logged as one clear line, at most
every ``_REPEAT_S`` per subject, and a request whose publish was refused fails at once with
``ForbiddenError`` (``Refusals.guard``) instead of waiting for its timeout.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import nats
import nats.errors
from nats.aio.client import Client

from voiyd.errors import ForbiddenError, InvalidRequestError, UnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

_JWT_MARKER = "BEGIN NATS USER JWT"
_SEED_RE = re.compile(r"^\s*(SU[A-Z2-7]{50,})\s*$", re.MULTILINE)
_REFUSED_RE = re.compile(r'permissions violation for (publish|subscription) to "([^"]+)"')
_REPEAT_S = 30.0
"""The same refusal is logged again after this long at most (a retry loop must not flood)."""


@dataclass(frozen=True)
class NatsOptions:
    """Where and how to connect: server URLs, credentials and TLS files."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    creds_file: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    inbox_prefix: str | None = None

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or any(s.startswith("tls://") for s in self.servers)


def _tls_context(opts: NatsOptions) -> ssl.SSLContext | None:
    if not opts.tls:
        return None
    ctx = ssl.create_default_context(cafile=str(opts.tls_ca) if opts.tls_ca else None)
    if opts.tls_cert and opts.tls_key:
        ctx.load_cert_chain(str(opts.tls_cert), str(opts.tls_key))
    return ctx


def credentials(path: Path) -> dict[str, object]:
    """nats-py's options for a credentials file: a NATS user JWT file or an nkey seed file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UnavailableError(f"cannot read credentials file {path}: {exc.strerror}") from exc
    if _JWT_MARKER in text:
        return {"user_credentials": str(path)}
    m = _SEED_RE.search(text)
    if m is None:
        raise InvalidRequestError(f"{path} holds neither a NATS user JWT nor a user nkey seed")
    return {"nkeys_seed_str": m.group(1)}


class Refusals:
    """What nats-server refused on one connection, as its error callback heard it.

    nats-server answers a publish it does not allow with an error to the connection, not to
    the request, so a refused request would otherwise just time out. ``guard`` lets a request
    fail as soon as the refusal of its subject arrives.
    """

    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._logged: dict[str, float] = {}

    def note(self, message: str) -> tuple[str, str] | None:
        """``(operation, subject)`` if ``message`` is a refusal; wakes the requests it ends."""
        m = _REFUSED_RE.search(message.lower())
        if m is None:
            return None
        operation, subject = m.group(1), m.group(2)
        for waiter in self._waiters.pop(subject, []):
            if not waiter.done():
                waiter.set_result(None)
        return operation, subject

    def should_log(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._logged.get(key, -_REPEAT_S) < _REPEAT_S:
            return False
        self._logged[key] = now
        return True

    async def guard(self, subject: str, work: Awaitable[T]) -> T:
        """Await ``work``, a request on ``subject``; ``ForbiddenError`` if its publish is denied."""
        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(subject.lower(), [])
        waiters.append(refused)
        task = asyncio.ensure_future(work)
        try:
            either: set[asyncio.Future[Any]] = {task, refused}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if refused in waiters:
                waiters.remove(refused)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled() or not task.done():
            raise ForbiddenError(_denied("publish", subject))
        return task.result()


_REFUSALS: weakref.WeakKeyDictionary[Client, Refusals] = weakref.WeakKeyDictionary()


def refusals(nc: Client) -> Refusals | None:
    """The refusals seen on a connection made by ``connect`` (None for any other client)."""
    return _REFUSALS.get(nc)


_API_WORD = re.compile(
    r"^(\$js|\$kv|\$srv|api|fc|ack|stream|consumer|create|update|delete|purge|info|names|list"
    r"|direct|get|msg|next|durable)$"
)


def _readable(subject: str) -> str:
    """A subject from nats-py's error (which lowercases it) with the system tokens upper-cased."""
    if subject.startswith("_inbox."):
        return f"_INBOX{subject[6:]}"
    if not subject.startswith("$"):
        return subject
    tokens = subject.split(".")
    for i, token in enumerate(tokens):
        if _API_WORD.match(token):
            tokens[i] = token.upper()
        elif token.startswith(("kv_", "voiyd_")):
            tokens[i] = token.upper() if token.startswith("voiyd_") else f"KV_{token[3:]}"
    return ".".join(tokens)


def _denied(operation: str, subject: str) -> str:
    return (
        f"permission denied: these NATS credentials may not {operation} {subject!r} "
        "(see docs/security.md for what each role may do)"
    )


def _is_authorization(exc: Exception) -> bool:
    """nats-py reports a refused login as AuthorizationError, or as a plain error saying so."""
    return isinstance(exc, nats.errors.AuthorizationError) or (
        "authorization violation" in str(exc).lower()
    )


def _error_logger(name: str, refused: Refusals) -> Callable[[Exception], Awaitable[None]]:
    async def on_error(exc: Exception) -> None:
        text = str(exc)
        seen = refused.note(text)
        if seen is not None:
            operation, subject = seen
            if refused.should_log(f"{operation} {subject}"):
                verb = "publish to" if operation == "publish" else "subscribe to"
                log.error("nats %s: %s", name, _denied(verb, _readable(subject)))
        elif _is_authorization(exc):
            if refused.should_log("authorization"):
                log.error(
                    "nats %s: authorization failed: the server refused these credentials "
                    "(unknown or removed user, or not in its config yet?)",
                    name,
                )
        else:
            log.warning("nats %s: %s", name, exc or type(exc).__name__)

    return on_error


def _connect_error(opts: NatsOptions, exc: Exception) -> ForbiddenError | UnavailableError:
    where = ", ".join(opts.servers)
    if _is_authorization(exc):
        return ForbiddenError(
            f"NATS at {where} refused these credentials (authorization violation): "
            "unknown or removed user, or a server without them in its config"
        )
    return UnavailableError(f"cannot connect to NATS at {where}: {exc or type(exc).__name__}")


def client_options(opts: NatsOptions) -> dict[str, object]:
    """nats-py's options for the credentials, inbox prefix and TLS of ``opts``."""
    kwargs: dict[str, object] = credentials(opts.creds_file) if opts.creds_file else {}
    if opts.inbox_prefix:
        kwargs["inbox_prefix"] = opts.inbox_prefix
    tls = _tls_context(opts)
    if tls is not None:
        kwargs["tls"] = tls
        kwargs["tls_handshake_first"] = True
    return kwargs


async def connect(
    opts: NatsOptions,
    name: str,
    *,
    reconnect: bool = True,
    connect_timeout: float = 2.0,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
) -> Client:
    """Connect; with ``reconnect`` the client retries forever (daemons), else fails fast (CLI)."""

    refused = Refusals()

    async def on_disconnected() -> None:
        log.warning("nats %s: disconnected", name)

    async def on_reconnected() -> None:
        log.info(
            "nats %s: reconnected to %s", name, nc.connected_url.netloc if nc.connected_url else "?"
        )
        if on_reconnect is not None:
            await on_reconnect()

    async def on_closed() -> None:
        log.info("nats %s: connection closed", name)

    kwargs = client_options(opts)
    try:
        nc = await nats.connect(
            servers=list(opts.servers),
            name=name,
            error_cb=_error_logger(name, refused),
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            closed_cb=on_closed,
            allow_reconnect=reconnect,
            max_reconnect_attempts=-1 if reconnect else 1,  # nats-py treats 0 as "forever"
            reconnect_time_wait=1,
            connect_timeout=int(max(1, connect_timeout)),
            ping_interval=10,
            max_outstanding_pings=3,
            pending_size=8 * 1024 * 1024,
            **kwargs,
        )
    except Exception as exc:
        raise _connect_error(opts, exc) from exc
    _REFUSALS[nc] = refused
    return nc
