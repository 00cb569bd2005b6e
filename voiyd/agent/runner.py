"""The voiyd-node shell: join, heartbeat, watch assignments, reconcile, report.

The agent dials out to NATS and never listens for inbound connections. Each round
(``step()``) lists what its runtimes run, calls the pure ``reconcile`` and carries out the
actions; the loop runs a round whenever an assignment changes and at least every second.
Containers carry the voiyd labels (task, epoch, node), so after a restart the agent adopts what
is still running instead of starting a second copy. Health probes run beside the rounds; an
unhealthy container is stopped and its exit goes through the restart policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from voiyd import __version__, clock, ids
from voiyd.agent import metrics
from voiyd.agent.logship import DEFAULT_BUFFER, LogShipping
from voiyd.agent.monitor import HealthMonitor
from voiyd.agent.outbox import Outbox
from voiyd.agent.reconcile import Exited, Memory, Start, Stop, reconcile, stale_templates
from voiyd.agent.runtimes.protocol import (
    ContainerSpec,
    ImagePullError,
    Observed,
    Runtime,
    RuntimeFailure,
)
from voiyd.agent.sysinfo import node_capacity, node_labels
from voiyd.agent.templates import Templates
from voiyd.agent.upgrade import DEFAULT_TIMEOUT_S, Installer, UpgradeService
from voiyd.api.agent import Assignment, Heartbeat, NodeJoin, TaskReport, TaskReportKind
from voiyd.api.views import NodeCapacity
from voiyd.bus import codec, subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.kvwatch import KeyWatch
from voiyd.errors import InvalidRequestError

log = logging.getLogger(__name__)

ROUND_PERIOD_S = 1.0
USAGE_PERIOD_S = 10.0
MAX_PARALLEL_STARTS = 8
MAX_PARALLEL_STOPS = 16
DEFAULT_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AgentSettings:
    name: str
    nats: NatsOptions = field(default_factory=NatsOptions)
    labels: Mapping[str, str] = field(default_factory=dict)
    data_dir: Path = Path("voiyd-node-data")
    heartbeat_s: float = 2.0
    capacity: NodeCapacity | None = None
    log_buffer: int = DEFAULT_BUFFER
    """Bytes of log lines the node holds while NATS does not acknowledge them; then it drops."""
    python: str = field(default_factory=lambda: sys.executable)
    """The interpreter an upgrade installs the new wheel for (the agent's own)."""
    upgrade_timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def volumes_dir(self) -> Path:
        """Host-local volumes' data: never deleted by voiyd."""
        return self.data_dir / "volumes"

    @property
    def templates_dir(self) -> Path:
        """Template volumes' files, per task (``templates.Templates``)."""
        return self.data_dir / "templates"


class Agent:
    def __init__(self, settings: AgentSettings, runtimes: Mapping[str, Runtime]) -> None:
        self.settings = settings
        self.node = settings.name
        self.runtimes = dict(runtimes)
        self.desired: dict[str, Assignment] = {}
        self.memory: dict[str, Memory] = {}
        self.joined = asyncio.Event()
        self._wake = asyncio.Event()
        self._busy: Counter[str] = Counter()
        """Actions in flight per task: one round may stop an old copy and start the new one of
        the same task, and the task stays busy until both have ended."""
        self._settled: set[str] = set()
        """Tasks whose action ended since the current round began listing containers: that
        list may predate what the action did (a container it just started), so the round
        leaves them to the next one."""
        # Starts and stops queue separately: a mass delete must not hold up new starts.
        self._start_slots = asyncio.Semaphore(MAX_PARALLEL_STARTS)
        self._stop_slots = asyncio.Semaphore(MAX_PARALLEL_STOPS)
        self._stop_timeouts: dict[str, float] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._nc: Client | None = None
        self._outbox: Outbox | None = None
        self._capacity = settings.capacity or node_capacity()
        self._owner: dict[str, str] = {}
        self._monitor = HealthMonitor(self._runtime_of, self._health_flipped)
        self._used = NodeCapacity()
        self._logs = LogShipping(self.node, settings.data_dir, settings.log_buffer, self._report)
        self._templates = Templates(settings.templates_dir)
        installer = Installer(
            settings.data_dir / "upgrades", settings.python, settings.upgrade_timeout_s
        )
        self._upgrades = UpgradeService(self.node, installer, self._installed)
        self._stopping: asyncio.Event | None = None
        self.restart_requested = False
        """An upgrade was installed: the caller re-executes the agent once ``run`` returns."""

    # ---- lifecycle ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        nc = await connect(
            self.settings.nats, f"voiyd-node-{self.node}", on_reconnect=self._on_reconnect
        )
        self._nc = nc
        self._stopping = stop
        self._outbox = Outbox(nc, self.node, self._refused)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._outbox.run(stop))
                tg.create_task(self._logs.run(nc, stop))
                await self._join(stop)
                await self._upgrades.serve(nc, tg)
                kv = await self._bucket(stop)
                if kv is None:
                    return
                tg.create_task(self._watch(stop))
                tg.create_task(self._heartbeats(stop))
                tg.create_task(self._sample_usage(stop))
                await self._loop(stop)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _join(self, stop: asyncio.Event) -> None:
        assert self._outbox is not None
        self._outbox.put(self._join_report())
        await _first(self._outbox.idle.wait(), stop.wait())
        if not stop.is_set():
            self.joined.set()
            log.info(
                "node %s joined with runtimes %s (voiyd %s)",
                self.node,
                sorted(self.runtimes),
                __version__,
            )

    def _join_report(self) -> NodeJoin:
        labels = {**node_labels(sorted(self.runtimes)), **self.settings.labels}
        return NodeJoin(
            node=self.node,
            labels=labels,
            runtimes=sorted(self.runtimes),
            capacity=self._capacity,
            agent_version=__version__,
        )

    @property
    def upgrading(self) -> bool:
        """An upgrade is being installed (or was, and the agent is about to restart)."""
        return self._upgrades.busy

    def _installed(self, version: str) -> None:
        """A new version is installed: stop everything but the tasks, then restart."""
        log.info("node %s: stopping to restart as version %s", self.node, version)
        self.restart_requested = True
        if self._stopping is not None:
            self._stopping.set()

    async def _on_reconnect(self) -> None:
        """After a reconnect: join again and re-report every running container."""
        if self._outbox is None:
            return
        self._outbox.put(self._join_report())
        for c in await self.observe():
            a = self.desired.get(c.task)
            if a is not None and a.epoch == c.epoch and c.state == "running":
                self._report(c.task, c.epoch, "started", container_id=c.id, ip=c.ip, pid=c.pid)
        self._wake.set()

    async def _bucket(self, stop: asyncio.Event) -> KeyValue | None:
        assert self._nc is not None
        while not stop.is_set():
            try:
                return await self._nc.jetstream().key_value(subjects.ASSIGNMENTS_BUCKET)
            except BucketNotFoundError:
                log.warning(
                    "bucket %s not there yet; is voiyd-server running?", subjects.ASSIGNMENTS_BUCKET
                )
                await _first(asyncio.sleep(1), stop.wait())
        return None

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _first(self._wake.wait(), stop.wait(), timeout=ROUND_PERIOD_S)
            self._wake.clear()
            if stop.is_set():
                return
            try:
                await self.step()
            except RuntimeFailure as exc:
                log.warning("round failed: %s", exc.reason)

    # ---- assignments --------------------------------------------------------------------------

    async def _watch(self, stop: asyncio.Event) -> None:
        """Follow ``<node>.*`` in the assignments bucket (initial values, then every change).

        ``KeyWatch`` names its filter in the consumer-create subject, so this node's NATS
        credentials can allow reading its own keys and nothing else (docs/security.md).
        """
        assert self._nc is not None
        watch = KeyWatch(self._nc, subjects.ASSIGNMENTS_BUCKET, f"{self.node}.*")
        await watch.run(lambda c: self._apply_entry(c.key, c.value, c.operation), stop)

    def _apply_entry(self, key: str, value: bytes | None, operation: str | None) -> None:
        task = key.split(".", 1)[1]
        if operation in ("DEL", "PURGE") or not value:
            gone = self.desired.pop(task, None)
            if gone is not None:  # its containers still stop with the task's own grace
                self._stop_timeouts[task] = gone.config.stop_timeout_s
        else:
            try:
                a = Assignment.model_validate(codec.decode_map(value))
            except (InvalidRequestError, ValueError) as exc:
                log.error("bad assignment %s: %s", key, exc)
                return
            old = self.desired.get(task)
            if old is not None and old.epoch > a.epoch:
                return  # a lagging writer; the newer placement wins
            self.desired[task] = a
        metrics.ASSIGNED.set(len(self.desired))
        self._wake.set()

    # ---- one round ----------------------------------------------------------------------------

    async def observe(self) -> list[Observed]:
        out: list[Observed] = []
        for name, runtime in self.runtimes.items():
            found = await runtime.list(self.node)
            self._owner.update((c.id, name) for c in found)
            out.extend(found)
        return out

    async def step(self) -> None:
        """Reconcile once: list, decide (pure), act."""
        self._settled.clear()
        found = await self.observe()
        self._logs.sync(found, self.desired, self._runtime_of)
        hold = set(self._busy) | self._settled
        if self._settled:
            self._wake.set()  # what they did is listed next round
        observed = [c for c in found if c.task not in hold]
        desired = {t: a for t, a in self.desired.items() if t not in hold}
        memory = {t: m for t, m in self.memory.items() if t not in hold}
        plan = reconcile(desired, observed, memory, clock.now())
        self.memory = {**{t: m for t, m in self.memory.items() if t in hold}, **plan.memory}
        for action in plan.actions:
            match action:
                case Start():
                    self._spawn(action.assignment.task, self._start(action))
                case Stop():
                    self._spawn(action.container.task, self._stop(action), stopping=True)
                case Exited():
                    self._exited(action)
        assert self._tg is not None
        self._monitor.round(observed, self.desired, hold, self._tg)
        metrics.RUNNING.set(sum(1 for c in observed if c.state == "running"))
        await self._forget_templates(found)

    async def _forget_templates(self, found: list[Observed]) -> None:
        """Template files of tasks that left this node (and whose containers are gone)."""
        on_disk = await asyncio.to_thread(self._templates.tasks)
        for task in stale_templates(on_disk - set(self._busy) - self._settled, self.desired, found):
            log.info("removing the template volumes of task %s (no longer on this node)", task)
            try:
                await asyncio.to_thread(self._templates.remove, task)
            except OSError as exc:
                log.warning("cannot remove the template volumes of task %s: %s", task, exc)

    # ---- health -------------------------------------------------------------------------------

    def _health_flipped(self, c: Observed, a: Assignment, healthy: bool, message: str) -> None:
        log.info("task %s is %s %s", c.task, "healthy" if healthy else "unhealthy", message)
        self._report(c.task, c.epoch, "health", healthy=healthy, reason=message)
        if not healthy and c.task not in self._busy:
            # Stop it: the exit goes through the restart policy like any other.
            self._spawn(c.task, self._stop_unhealthy(c, a), stopping=True)

    async def _stop_unhealthy(self, c: Observed, a: Assignment) -> None:
        await self._runtime_of(c).stop(c.id, a.config.stop_timeout_s)

    def _spawn(self, task: str, coro: Coroutine[Any, Any, None], *, stopping: bool = False) -> None:
        assert self._tg is not None
        self._busy[task] += 1

        async def guarded() -> None:
            try:
                async with self._stop_slots if stopping else self._start_slots:
                    await coro
            finally:
                self._busy[task] -= 1
                if not self._busy[task]:
                    del self._busy[task]
                self._settled.add(task)
                self._wake.set()

        self._tg.create_task(guarded())

    async def _start(self, action: Start) -> None:
        a = action.assignment
        runtime = self.runtimes.get(a.config.runtime)
        if runtime is None:
            self._fail(a, f"runtime {a.config.runtime!r} is not available on node {self.node}")
            return
        try:
            if action.replaces:
                await self._logs.drained(action.replaces)  # its last lines are read first
                await runtime.remove(action.replaces)
            if a.config.image and a.config.runtime != "exec":
                await self._pull(runtime, a)
            spec = ContainerSpec(
                task=a.task,
                epoch=a.epoch,
                node=self.node,
                config=a.config,
                revision=a.revision,
                volumes_dir=self.settings.volumes_dir,
                templates=await self._write_templates(a),
            )
            c = await runtime.start(spec)
        except ImagePullError as exc:
            self._fail(a, f"image pull failed: {exc.reason}")
            return
        except RuntimeFailure as exc:
            self._fail(a, f"start failed: {exc.reason}")
            return
        metrics.STARTS.inc()
        self._report(a.task, a.epoch, "started", container_id=c.id, ip=c.ip, pid=c.pid)

    async def _write_templates(self, a: Assignment) -> dict[str, Path]:
        """The files of the template volumes ``a`` mounts, written; each one's directory."""
        out: dict[str, Path] = {}
        for mount in a.config.mounts:
            volume = a.volumes.get(mount.source) if mount.type == "volume" else None
            if volume is None or volume.type != "template" or mount.source in out:
                continue
            try:
                out[mount.source] = await asyncio.to_thread(
                    self._templates.write, a.task, mount.source, volume.files
                )
            except OSError as exc:
                raise RuntimeFailure(f"template volume {mount.source}: {exc}") from exc
        return out

    async def _pull(self, runtime: Runtime, a: Assignment) -> None:
        reported = False

        def progress(line: str) -> None:
            nonlocal reported
            if not reported:
                reported = True
                self._report(a.task, a.epoch, "pulling", image=a.config.image)
            log.debug("pull %s: %s", a.config.image, line)

        assert a.config.image is not None
        await runtime.ensure_image(a.config.image, progress)

    def _fail(self, a: Assignment, reason: str) -> None:
        log.warning("task %s epoch %d failed: %s", a.task, a.epoch, reason)
        m = self.memory.get(a.task, Memory(epoch=a.epoch, restarts=a.restarts))
        self.memory[a.task] = Memory(
            epoch=a.epoch, restarts=m.restarts, handled_exits=m.handled_exits, gave_up=True
        )
        self._report(a.task, a.epoch, "failed", reason=reason)

    async def _stop(self, action: Stop) -> None:
        c = action.container
        runtime = self._runtime_of(c)
        a = self.desired.get(c.task)
        if a is not None:
            timeout = a.config.stop_timeout_s
        else:
            timeout = self._stop_timeouts.pop(c.task, DEFAULT_STOP_TIMEOUT_S)
        log.info("stopping %s (task %s epoch %d): %s", c.id[:12], c.task, c.epoch, action.reason)
        await runtime.stop(c.id, timeout)
        await self._logs.drained(c.id)
        await runtime.remove(c.id)
        metrics.STOPS.inc()
        if action.report:
            self._report(c.task, c.epoch, "stopped")

    def _runtime_of(self, c: Observed) -> Runtime:
        return self.runtimes[self._owner[c.id]]

    def _exited(self, action: Exited) -> None:
        c = action.container
        self._report(c.task, c.epoch, "exited", exit_code=c.exit_code, reason=action.reason)
        if action.then == "restart":
            metrics.RESTARTS.inc()
            self._report(
                c.task, c.epoch, "restarted", restarts=action.restarts, delay_s=action.delay_s
            )
        elif action.then == "fail":
            self._report(c.task, c.epoch, "failed", exit_code=c.exit_code, reason=action.reason)

    async def _refused(self, report: TaskReport, reason: str) -> None:
        self._wake.set()

    def _report(self, task: str, epoch: int, state: TaskReportKind, **fields: object) -> None:
        assert self._outbox is not None
        report = TaskReport.model_validate(
            {
                "report_id": ids.new_id(),
                "node": self.node,
                "task": task,
                "epoch": epoch,
                "state": state,
                "at": clock.now(),
                **fields,
            }
        )
        self._outbox.put(report)

    # ---- heartbeats ---------------------------------------------------------------------------

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        assert self._nc is not None
        subject = subjects.agent_heartbeat(self.node)
        while not stop.is_set():
            beat = Heartbeat(
                node=self.node,
                at=clock.now(),
                agent_version=__version__,
                runtimes=sorted(self.runtimes),
                capacity=self._capacity,
                allocated=self._allocated(),
                used=self._used,
                running=sorted(self.desired),
                interval_s=self.settings.heartbeat_s,
            )
            with contextlib.suppress(Exception):
                await self._nc.publish(subject, codec.encode(beat))
                metrics.HEARTBEATS.inc()
            await _first(asyncio.sleep(self.settings.heartbeat_s), stop.wait())

    async def _sample_usage(self, stop: asyncio.Event) -> None:
        """What the running containers actually use, sampled every few heartbeats."""
        while not stop.is_set():
            await _first(asyncio.sleep(USAGE_PERIOD_S), stop.wait())
            cpus, memory = 0.0, 0
            for c in await self.observe():
                if c.state != "running":
                    continue
                with contextlib.suppress(RuntimeFailure):
                    u = await self._runtime_of(c).usage(c.id)
                    cpus, memory = cpus + u.cpus, memory + u.memory
            self._used = NodeCapacity(cpus=round(cpus, 3), memory=memory)

    def _allocated(self) -> NodeCapacity:
        cpus = sum(a.config.resources.cpus or 0.0 for a in self.desired.values())
        memory = sum(a.config.resources.memory or 0 for a in self.desired.values())
        return NodeCapacity(cpus=cpus, memory=memory)


async def _first(*aws: object, timeout: float | None = None) -> object:
    """Await whichever finishes first; cancel the rest. Returns the first result (or None)."""
    tasks = [asyncio.ensure_future(a) for a in aws]  # type: ignore[call-overload]
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for t in done:
        if not t.cancelled() and t.exception() is None:
            return t.result()
    return None
