"""One way to connect to NATS: reconnect forever, log every connection change, TLS and creds.

Every process (and the CLI) connects through ``connect``; the settings come from its own
settings model. Connection trouble is logged with the connection name so several processes'
logs can be read side by side.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client

from voiyd.errors import UnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NatsOptions:
    """Where and how to connect: server URLs, credentials and TLS files."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    creds_file: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    inbox_prefix: str | None = None


def _tls_context(opts: NatsOptions) -> ssl.SSLContext | None:
    if not (opts.tls_ca or any(s.startswith("tls://") for s in opts.servers)):
        return None
    ctx = ssl.create_default_context(cafile=str(opts.tls_ca) if opts.tls_ca else None)
    if opts.tls_cert and opts.tls_key:
        ctx.load_cert_chain(str(opts.tls_cert), str(opts.tls_key))
    return ctx


async def connect(
    opts: NatsOptions,
    name: str,
    *,
    reconnect: bool = True,
    connect_timeout: float = 2.0,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
) -> Client:
    """Connect; with ``reconnect`` the client retries forever (daemons), else fails fast (CLI)."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats %s: %s", name, exc)

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

    kwargs: dict[str, object] = {}
    if opts.creds_file:
        kwargs["user_credentials"] = str(opts.creds_file)
    if opts.inbox_prefix:
        kwargs["inbox_prefix"] = opts.inbox_prefix
    tls = _tls_context(opts)
    if tls is not None:
        kwargs["tls"] = tls
    try:
        nc = await nats.connect(
            servers=list(opts.servers),
            name=name,
            error_cb=on_error,
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
        raise UnavailableError(
            f"cannot connect to NATS at {', '.join(opts.servers)}: {exc or type(exc).__name__}"
        ) from exc
    return nc
