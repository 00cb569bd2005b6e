"""The voiyd-server shell: connect, ensure streams, catch the projection up, serve the API.

One ``asyncio.TaskGroup`` owns every task (the log follower, the liveness loop and each
in-flight request).
Startup order matters: the projection catches up with the log before the API is served, so a
restarted server never answers from a stale view. SIGTERM sets ``stop``; shutdown stops the
service, lets in-flight requests finish and drains the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from prometheus_client import start_http_server

from voiyd import __version__, ids
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.rpc import ApiService
from voiyd.bus.streams import LogLimitOptions, ensure_streams
from voiyd.errors import VoiydError
from voiyd.projection import queries, schema
from voiyd.projection.consumer import ProjectionFollower
from voiyd.projection.store import BatchResult, ProjectionStore
from voiyd.server import metrics
from voiyd.server.agents import HEARTBEAT_SUBJECT, REPORT_SUBJECT, AgentDesk
from voiyd.server.decide_agent import LivenessRules
from voiyd.server.handlers import Handlers

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT_S = 600.0
LIVENESS_PERIOD_S = 1.0


@dataclass(frozen=True)
class ServerSettings:
    nats: NatsOptions = field(default_factory=NatsOptions)
    data_dir: Path = Path("voiyd-server-data")
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    rebuild: bool = False
    replicas: int = 1
    read_wait_s: float = 5.0
    not_ready_after_s: float = 6.0
    lost_after_s: float = 30.0
    max_inflight: int = 256
    log_limits: LogLimitOptions = field(default_factory=LogLimitOptions)
    """``VOIYD_LOGS`` limits to set (each None: leave the stream's)."""
    server_id: str = field(default_factory=lambda: ids.new_id()[:12])

    @property
    def db_path(self) -> Path:
        return self.data_dir / "projection.sqlite"


def _count_batch(result: BatchResult) -> None:
    for type_, count in result.types.items():
        metrics.EVENTS_APPLIED.labels(type=type_).inc(count)
    if result.skipped:
        metrics.EVENTS_SKIPPED.inc(result.skipped)
    metrics.PROJECTION_SEQ.set(result.last_seq)


class Server:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.ready = asyncio.Event()
        self.follower: ProjectionFollower | None = None
        self._nc: Client | None = None
        self._desk: AgentDesk | None = None
        self._resync = False

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        if s.metrics_port is not None:
            start_http_server(s.metrics_port, addr=s.metrics_host)
            log.info("metrics on http://%s:%d/metrics", s.metrics_host, s.metrics_port)
        nc = await connect(s.nats, f"voiyd-server-{s.server_id}")
        self._nc = nc
        try:
            js = nc.jetstream()
            await ensure_streams(js, replicas=s.replicas, log_limits=s.log_limits)
            db = schema.open_db(s.db_path)
            if s.rebuild:
                log.info("rebuilding the projection from the whole log")
                schema.reset(db)
            follower = ProjectionFollower(js, ProjectionStore(db), on_batch=self._on_batch)
            self.follower = follower
            async with asyncio.TaskGroup() as tg:
                tg.create_task(follower.run(stop))
                await self._catch_up(js, follower, stop)
                if not stop.is_set():
                    await self._serve(nc, follower, tg, stop)
            db.close()
        finally:
            await self._close(nc)

    async def _serve(
        self, nc: Client, follower: ProjectionFollower, tg: asyncio.TaskGroup, stop: asyncio.Event
    ) -> None:
        s = self.settings
        handlers = Handlers(nc.jetstream(), follower, s.server_id, s.read_wait_s)
        rules = LivenessRules(
            not_ready_after=timedelta(seconds=s.not_ready_after_s),
            lost_after=timedelta(seconds=s.lost_after_s),
        )
        desk = AgentDesk(nc, follower, handlers.tasks, handlers.nodes, rules)
        self._desk = desk
        await desk.full_sync()
        endpoints = {**handlers.endpoints(), REPORT_SUBJECT: desk.report}

        def spawn(coro: Coroutine[Any, Any, None]) -> object:
            return tg.create_task(coro)

        service = ApiService(
            nc,
            name=subjects.API_SERVICE,
            version=__version__,
            description="voiyd control plane API",
            handlers=endpoints,
            spawn=spawn,
            max_inflight=s.max_inflight,
            observe=metrics.observe_request,
        )
        await service.start()
        heartbeats = await nc.subscribe(HEARTBEAT_SUBJECT, cb=desk.on_heartbeat)
        tg.create_task(self._liveness_loop(desk, stop))
        log.info(
            "voiyd-server %s ready: projection at seq %d, serving %s.>",
            s.server_id,
            follower.applied_seq,
            subjects.API_PREFIX,
        )
        self.ready.set()
        await stop.wait()
        await heartbeats.unsubscribe()
        await service.stop()

    async def _on_batch(self, result: BatchResult) -> None:
        _count_batch(result)
        if self._desk is None or self.follower is None:
            return
        changed = result.changed_tasks
        if result.changed_volumes:  # a template's files travel in its tasks' assignments
            db = self.follower.store.db
            changed = {**queries.tasks_mounting(db, result.changed_volumes), **changed}
        if changed:
            try:
                await self._desk.sync_assignments(changed)
            except Exception as exc:  # repaired by the next full sync; never stop projecting
                log.warning("assignment sync failed (%s); will repair", exc)
                self._resync = True

    async def _liveness_loop(self, desk: AgentDesk, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LIVENESS_PERIOD_S)
            if stop.is_set():
                return
            try:
                await desk.check_liveness()
                if self._resync:
                    self._resync = False
                    await desk.full_sync()
            except VoiydError as exc:
                log.warning("liveness round failed: %s", exc)

    async def _catch_up(self, js: Any, follower: ProjectionFollower, stop: asyncio.Event) -> None:
        info = await js.stream_info(subjects.EVENTS_STREAM)
        target = info.state.last_seq or 0
        log.info("catching up with the event log: seq %d -> %d", follower.applied_seq, target)
        waiter = asyncio.ensure_future(follower.wait_for(target, CATCH_UP_TIMEOUT_S))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopping}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopping.cancel()

    @staticmethod
    async def _close(nc: Client) -> None:
        try:
            async with asyncio.timeout(5):
                await nc.drain()
        except Exception as exc:
            log.debug("drain: %s", exc)
            await nc.close()
