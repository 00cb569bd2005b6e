"""The voiyd-logrelay shell: connect, ensure the streams, serve ``voiyd.api.v1.logs.<verb>``.

The relay is the micro service ``voiyd-logs``; every replica serves the same endpoints in the
service's queue group, and none keeps state between requests (``reader.Reader``), so replicas
can come and go at any time. One ``asyncio.TaskGroup`` owns each in-flight request. SIGTERM
sets ``stop``; shutdown stops the service, lets in-flight requests finish and drains NATS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from prometheus_client import start_http_server

from voiyd import __version__, ids
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.rpc import ApiService
from voiyd.bus.streams import LogLimitOptions, ensure_streams
from voiyd.logrelay.reader import Reader, ReaderSettings

log = logging.getLogger(__name__)

READ_SUBJECT = subjects.api("logs", "read")
REPLY_SHARE = 2
"""A reply may fill 1/REPLY_SHARE of the server's max_payload (the rest is headroom: sizes are
estimated from the stored batches before the reply is encoded)."""


@dataclass(frozen=True)
class RelaySettings:
    nats: NatsOptions = field(default_factory=NatsOptions)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    replicas: int = 1
    log_limits: LogLimitOptions = field(default_factory=LogLimitOptions)
    max_inflight: int = 1024
    """Requests served at once; a waiting follow holds one for up to its ``wait_s``."""
    eof_wait_s: float = 60.0
    tick_s: float = 1.0
    relay_id: str = field(default_factory=lambda: ids.new_id()[:12])


class Relay:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.ready = asyncio.Event()
        self.reader: Reader | None = None

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        if s.metrics_port is not None:
            start_http_server(s.metrics_port, addr=s.metrics_host)
            log.info("metrics on http://%s:%d/metrics", s.metrics_host, s.metrics_port)
        nc = await connect(s.nats, f"voiyd-logrelay-{s.relay_id}")
        try:
            await ensure_streams(nc.jetstream(), replicas=s.replicas, log_limits=s.log_limits)
            async with asyncio.TaskGroup() as tg:
                await self._serve(nc, tg, stop)
        finally:
            await _close(nc)

    async def _serve(self, nc: Client, tg: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        s = self.settings
        reader = Reader(
            nc,
            ReaderSettings(
                max_reply_bytes=nc.max_payload // REPLY_SHARE,
                eof_wait_s=s.eof_wait_s,
                tick_s=s.tick_s,
            ),
        )
        self.reader = reader

        def spawn(coro: Coroutine[Any, Any, None]) -> object:
            return tg.create_task(coro)

        service = ApiService(
            nc,
            name=subjects.LOGS_SERVICE,
            version=__version__,
            description="voiyd task logs: history, tail and follow",
            handlers={READ_SUBJECT: reader.read},
            spawn=spawn,
            max_inflight=s.max_inflight,
        )
        await service.start()
        await nc.flush()  # the server has the endpoints' subscriptions before "ready" is said
        log.info("voiyd-logrelay %s ready: serving %s", s.relay_id, READ_SUBJECT)
        self.ready.set()
        await stop.wait()
        reader.stopping.set()
        await service.stop()


async def _close(nc: Client) -> None:
    try:
        async with asyncio.timeout(5):
            await nc.drain()
    except Exception as exc:
        log.debug("drain: %s", exc)
        await nc.close()
