"""The agent's log shipping: a ``PlacementLog`` per placement, the node's buffer, drop reports.

Each round the agent calls ``sync`` with what it observed: every running or exited container of
a current placement (adopted ones too) gets a reader, unless its output is shipped already; a
reader ends by itself when the runtime's iteration ends (the container stopped and its output is
drained). Before removing a container the agent awaits ``drained`` (bounded), so its last lines
are read first. Checkpoints live in ``<data dir>/logs/<task>.<epoch>.json``, written atomically
(no fsync: they must survive the agent's death, not the machine's). Drops are reported as a
``logs`` task report when the count grew, at most every ``REPORT_EVERY_S`` per placement, and
persisted first, so the count never goes back after a restart (it may count lines that a
restart then re-read and shipped after all). Shipping owns its task group, inside the agent's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from nats.aio.client import Client
from nats.js import JetStreamContext

from voiyd.agent import logbatch as lb
from voiyd.agent.logplace import Budget, PlacementLog
from voiyd.agent.runtimes.protocol import Observed, Runtime, RuntimeFailure
from voiyd.api.agent import Assignment, TaskReportKind

log = logging.getLogger(__name__)

DEFAULT_BUFFER = 16 * 1024 * 1024
REPORT_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 60.0
READ_RETRY_S = 5.0
_TICK_S = 1.0
_NEVER = datetime.min.replace(tzinfo=UTC)


class Reporter(Protocol):
    """The agent's way to send a task report (``Agent._report``)."""

    def __call__(self, task: str, epoch: int, state: TaskReportKind, **fields: object) -> None: ...


Key = tuple[str, int]


class LogShipping:
    def __init__(
        self,
        node: str,
        data_dir: Path,
        buffer_bytes: int = DEFAULT_BUFFER,
        report: Reporter | None = None,
    ) -> None:
        self._node, self._dir = node, data_dir / "logs"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._report = report
        self.budget = Budget(buffer_bytes, self._connected)
        self.placements: dict[Key, PlacementLog] = {}
        self._publishers: dict[Key, asyncio.Task[None]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._shipped: set[str] = set()
        self._retry_at: dict[str, float] = {}
        self._tg: asyncio.TaskGroup | None = None

    async def run(self, nc: Client, stop: asyncio.Event) -> None:
        """Ship until ``stop``; what is still buffered then is read again after a restart."""
        self._nc, self._js = nc, nc.jetstream()
        self._dir.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_TICK_S):
                            await stop.wait()
                    self.report_drops()
                self._tg = None
                for task in [*self._readers.values(), *self._publishers.values()]:
                    task.cancel()
        finally:
            self._tg = None

    def _connected(self) -> bool:
        return self._nc is not None and bool(self._nc.is_connected)

    # ---- one round ----------------------------------------------------------------------------

    def sync(
        self,
        observed: Iterable[Observed],
        desired: Mapping[str, Assignment],
        runtime_of: Callable[[Observed], Runtime],
    ) -> None:
        """Readers for the containers of current placements; retire placements that are over."""
        if self._tg is None:
            return
        found = sorted(observed, key=lambda c: c.started_at or _NEVER)
        now = time.monotonic()
        for c in found:
            a = desired.get(c.task)
            if a is None or a.epoch != c.epoch or c.state == "created":
                continue
            if c.id in self._readers or c.id in self._shipped or self._retry_at.get(c.id, 0) > now:
                continue
            p = self._placement(c.task, c.epoch)
            if c.id in p.state.done:
                self._shipped.add(c.id)
                continue
            self._spawn_reader(p, c, runtime_of(c))
        self._retire(found, desired)

    def _retire(self, found: list[Observed], desired: Mapping[str, Assignment]) -> None:
        live = {c.id for c in found}
        self._shipped &= live
        self._retry_at = {k: v for k, v in self._retry_at.items() if k in live}
        running = {(c.task, c.epoch) for c in found}
        wanted = {(a.task, a.epoch) for a in desired.values()}
        for key, p in list(self.placements.items()):
            if key in running or key in wanted or not p.idle:
                continue
            self._publishers.pop(key).cancel()
            del self.placements[key]
            if p.dropped > p.reported and self._report is not None:
                self._report(p.task, p.epoch, "logs", dropped=p.dropped)
            self._path(key).unlink(missing_ok=True)

    async def drained(self, container_id: str, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait (bounded) until the container's output has been read to its end."""
        reader = self._readers.get(container_id)
        if reader is not None:
            await asyncio.wait({reader}, timeout=timeout_s)

    def report_drops(self) -> None:
        now = time.monotonic()
        for p in self.placements.values():
            since = None if p.reported_at is None else now - p.reported_at
            if not lb.report_due(p.dropped, p.reported, since, REPORT_EVERY_S):
                continue
            p.persist_drops()  # first: a restarted agent must never report fewer
            p.reported, p.reported_at = p.dropped, now
            log.warning("task %s epoch %d: %d log lines dropped", p.task, p.epoch, p.dropped)
            if self._report is not None:
                self._report(p.task, p.epoch, "logs", dropped=p.dropped)

    # ---- placements and readers ---------------------------------------------------------------

    def _placement(self, task: str, epoch: int) -> PlacementLog:
        key = (task, epoch)
        p = self.placements.get(key)
        if p is None:
            assert self._js is not None
            p = PlacementLog(self._js, self._node, self._load(key), self.budget, self._saver(key))
            self.placements[key] = p
            self._publishers[key] = self._start(p.publish_forever())
        return p

    def _spawn_reader(self, p: PlacementLog, c: Observed, runtime: Runtime) -> None:
        async def read() -> None:
            try:
                await p.read(c, runtime)
                self._shipped.add(c.id)
            except RuntimeFailure as exc:
                log.warning("logs of %s (task %s): %s", c.id[:12], c.task, exc.reason)
                self._retry_at[c.id] = time.monotonic() + READ_RETRY_S
            except Exception:
                log.exception("reading the logs of %s (task %s) failed", c.id[:12], c.task)
                self._retry_at[c.id] = time.monotonic() + READ_RETRY_S
            finally:
                self._readers.pop(c.id, None)

        self._readers[c.id] = self._start(read())

    def _start(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._tg is not None
        return self._tg.create_task(coro)

    # ---- checkpoints --------------------------------------------------------------------------

    def _path(self, key: Key) -> Path:
        return self._dir / f"{key[0]}.{key[1]}.json"

    def _load(self, key: Key) -> lb.Checkpoint:
        path = self._path(key)
        try:
            return lb.parse_checkpoint(path.read_text())
        except FileNotFoundError:
            return lb.Checkpoint(task=key[0], epoch=key[1])
        except (OSError, ValueError) as exc:
            log.error("log checkpoint %s unreadable (%s): numbering starts again at 1", path, exc)
            return lb.Checkpoint(task=key[0], epoch=key[1])

    def _saver(self, key: Key) -> Callable[[lb.Checkpoint], None]:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.tmp")

        def save(cp: lb.Checkpoint) -> None:
            try:
                tmp.write_text(lb.checkpoint_text(cp))
                tmp.replace(path)
            except OSError as exc:
                log.error("cannot write log checkpoint %s: %s", path, exc)

        return save
