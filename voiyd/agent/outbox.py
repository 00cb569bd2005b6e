"""Reports on their way to the server: kept in order and re-sent until acknowledged.

The server acknowledges a report only after it appended the event, and a report's id is the
event's id, so sending one again after a lost reply is harmless. A refused report (the
placement moved away: fencing) is handed to ``on_refused`` so the agent stops that copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client

from voiyd.api.agent import NodeJoin, ReportReply, TaskReport
from voiyd.bus import subjects
from voiyd.bus.rpc import call
from voiyd.errors import InvalidRequestError, VoiydError

log = logging.getLogger(__name__)

_TIMEOUT_S = 3.0
_BACKOFF_MAX_S = 5.0
_POLL_S = 0.5


class Outbox:
    def __init__(
        self,
        nc: Client,
        node: str,
        on_refused: Callable[[TaskReport, str], Awaitable[None]],
    ) -> None:
        self._nc = nc
        self._subject = subjects.agent_report(node)
        self._queue: asyncio.Queue[NodeJoin | TaskReport] = asyncio.Queue()
        self._on_refused = on_refused
        self.sent = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def put(self, report: NodeJoin | TaskReport) -> None:
        self.idle.clear()
        self._queue.put_nowait(report)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def send_once(self, report: NodeJoin | TaskReport) -> ReportReply:
        reply = await call(self._nc, self._subject, report, timeout=_TIMEOUT_S)
        return ReportReply.model_validate(reply)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                report = await asyncio.wait_for(self._queue.get(), _POLL_S)
            except TimeoutError:
                continue
            await self._deliver(report, stop)
            if self._queue.empty():
                self.idle.set()

    async def _deliver(self, report: NodeJoin | TaskReport, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                reply = await self.send_once(report)
            except InvalidRequestError as exc:
                log.error("server rejected report %s: %s (dropped)", report, exc)
                return
            except VoiydError as exc:
                log.warning("report not acknowledged (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            self.sent += 1
            if not reply.accepted and isinstance(report, TaskReport):
                log.info("report refused: %s", reply.reason)
                await self._on_refused(report, reply.reason)
            return
