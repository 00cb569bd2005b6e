"""Benchmark: Docker tasks from submit to running, beside direct container starts; agent memory.

Starts everything itself on loopback: a nats-server (JetStream in a temp dir), ``voiyd-server``,
``voiyd-scheduler`` and one ``voiyd-node --runtime docker`` as separate processes, and runs the
local image ``voiyd-test/busybox:1`` (never pulled) with ``sleep 3600``. In one run, one engine:

- **one by one**: tasks created one after another; a task's latency runs from sending
  ``task.create`` to the arrival of its ``task.started`` event at a client following the log
  (then, apart, to ``task.get`` showing ``running``). Beside each, interleaved: an aiodocker
  create+start, and a ``DockerRuntime`` start (image check, create, start, inspect: what the
  agent asks of the engine), so drift on a shared machine hits all three alike.
- **concurrent**: every create sent at once, beside as many direct starts in parallel.
- **memory**: the agent's VmRSS / VmHWM idle after join, and with the tasks running.
- **where the time goes**: the arrivals of task.created, task.scheduled and the assignment key,
  the container's ``Created`` / ``StartedAt`` from the engine, and the report's ``at``.

``sleep`` as PID 1 ignores SIGTERM and the agent stops a deleted task with its default grace, so
after deleting through the API the benchmark waits a little, then removes what is left itself.
Nothing here asserts on time; ``python -m benchmarks.bench_docker`` prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiodocker
import nats
from aiodocker.exceptions import DockerError
from nats.aio.client import Client
from nats.js import JetStreamContext

from benchmarks.timing import percentile
from tests.dockerimage import ensure_test_image
from tests.e2e.procs import DaemonProcess, voiyd_node, voiyd_scheduler, voiyd_server
from tests.natsserver import NatsServer
from voiyd.agent.runtimes.docker import DockerRuntime
from voiyd.agent.runtimes.protocol import LABEL_NODE, LABEL_TASK, ContainerSpec
from voiyd.api.specs import TaskConfig
from voiyd.bus import codec, subjects
from voiyd.bus.reader import read_events
from voiyd.bus.rpc import call
from voiyd.errors import NotFoundError, UnavailableError

TARGET_RATIO = 1.5
"""Submit-to-running p50 at most this many times a direct container start's (the issue)."""
MIB = 1024**2
TARGET_RSS = 80 * MIB
ARGS = ("sleep", "3600")
BENCH_LABEL = "io.voiyd.bench"
STOP_TIMEOUT_S = 1.0
API_TIMEOUT_S = 10.0
TASK_TIMEOUT_S = 30.0
BATCH_TIMEOUT_S = 90.0
NODE_READY_S = 30.0
TEARDOWN_WAIT_S = 12.0
"""How long the agent gets to remove the deleted tasks' containers before the bench does."""
DOCKER_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 300.0
SETTLE_S = 1.0
"""One agent round (``ROUND_PERIOD_S``): it has listed every container before RSS is read."""
_POLL_S = 0.1
ENDS = 10
_REMOVE_CONCURRENCY = 16

SENT, CREATED, SCHEDULED, STARTED = "sent", "task.created", "task.scheduled", "task.started"
ASSIGNED, REPORTED, VISIBLE = "assigned", "reported", "visible"
DOCKER_CREATED, DOCKER_STARTED = "docker.created", "docker.started"
STAGES = (
    ("API: create sent -> task.created", SENT, CREATED),
    ("scheduler: task.created -> task.scheduled", CREATED, SCHEDULED),
    ("server: task.scheduled -> assignment key", SCHEDULED, ASSIGNED),
    ("agent: assignment key -> container created", ASSIGNED, DOCKER_CREATED),
    ("docker: container created -> process started", DOCKER_CREATED, DOCKER_STARTED),
    ("agent: process started -> report stamped", DOCKER_STARTED, REPORTED),
    ("report stamped -> task.started arrives", REPORTED, STARTED),
    ("projection: task.started -> API shows running", STARTED, VISIBLE),
)

Say = Callable[[str], None]


@dataclass(frozen=True)
class DockerBenchSettings:
    tasks: int = 50
    concurrent: bool = True
    """Also submit the same number at once, beside direct starts in parallel."""


@dataclass(frozen=True)
class Batch:
    """Per-operation latencies in submission order (from a common start when concurrent)."""

    latencies_s: tuple[float, ...]

    def ms(self, q: float) -> float:
        return percentile(sorted(self.latencies_s), q) * 1000

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_s) * 1000

    @property
    def makespan_s(self) -> float:
        return max(self.latencies_s)


@dataclass(frozen=True)
class Memory:
    rss: int
    hwm: int


@dataclass(frozen=True)
class Teardown:
    deleted: int
    by_agent: int
    """Containers the agent had removed itself within ``TEARDOWN_WAIT_S``."""
    seconds: float


@dataclass(frozen=True)
class OneByOne:
    """The sequential round: each voiyd task beside a direct and a ``DockerRuntime`` start."""

    voiyd: Batch
    """Create sent -> task.started arrives."""
    visible: Batch
    """Create sent -> ``task.get`` shows running."""
    direct: Batch
    runtime: Batch

    @property
    def ratio(self) -> float:
        """voiyd's p50 over the direct p50 (the issue's figure)."""
        return self.voiyd.ms(50) / self.direct.ms(50)

    @property
    def paired_ratio(self) -> float:
        """Median of voiyd / direct for the starts made side by side."""
        pairs = zip(self.voiyd.latencies_s, self.direct.latencies_s, strict=True)
        return statistics.median(v / d for v, d in pairs)


@dataclass(frozen=True)
class DockerBenchResult:
    tasks: int
    one_by_one: OneByOne
    concurrent: Batch | None
    direct_parallel: Batch | None
    stages: tuple[tuple[str, float | None, float | None], ...]
    """(stage, one-by-one p50 ms, all-at-once p50 ms)."""
    agent_head_tail: tuple[float | None, float | None]
    """p50 ms of the agent's stage (assignment -> container created), first and last 10 tasks:
    each round lists and inspects every container of the node, so it grows with them."""
    idle: Memory
    loaded: Memory
    teardowns: tuple[Teardown, ...]
    total_s: float = 0.0

    @property
    def met(self) -> bool:
        return self.one_by_one.ratio <= TARGET_RATIO and self.loaded.rss < TARGET_RSS


def _say(text: str) -> None:
    print(f"[bench docker] {text}", file=sys.stderr, flush=True)


# ---- what the client sees, when --------------------------------------------------------------


class Tracker:
    """When each (task, stage) was first seen, on the ``perf_counter`` clock; waits on them."""

    def __init__(self) -> None:
        self.wall0, self.pc0 = time.time(), time.perf_counter()
        self.moments: dict[tuple[str, str], float] = {}
        self.started_seq: dict[str, int] = {}
        self._waiters: dict[tuple[str, str], asyncio.Future[float]] = {}

    def from_wall(self, text: str) -> float:
        """An ISO-8601 time (an event's ``at``, the engine's timestamps) on our clock."""
        return self.pc0 + datetime.fromisoformat(text).timestamp() - self.wall0

    def note(self, task: str, stage: str, moment: float) -> None:
        key = (task, stage)
        if key in self.moments:
            return
        self.moments[key] = moment
        waiter = self._waiters.get(key)
        if waiter is not None and not waiter.done():
            waiter.set_result(moment)

    async def wait(self, task: str, stage: str) -> float:
        key = (task, stage)
        if key in self.moments:
            return self.moments[key]
        return await self._waiters.setdefault(key, asyncio.get_running_loop().create_future())

    def p50_ms(self, tasks: Sequence[str], begin: str, end: str) -> float | None:
        m = self.moments
        deltas = [m[t, end] - m[t, begin] for t in tasks if (t, begin) in m and (t, end) in m]
        return percentile(sorted(deltas), 50) * 1000 if deltas else None


async def follow_events(js: JetStreamContext, tracker: Tracker) -> None:
    """Note the arrival of every task event (and a task.started's own ``at``) until cancelled."""
    reader = read_events(js, subjects.events_filter("task"), follow=True)
    async with aclosing(reader) as events:
        async for raw in events:
            arrival = time.perf_counter()
            _, task = subjects.parse_event_subject(raw.subject)
            event = codec.decode_map(raw.data)
            kind = str(event.get("type", ""))
            if kind == STARTED:
                tracker.started_seq.setdefault(task, raw.seq)
                tracker.note(task, REPORTED, tracker.from_wall(str(event["at"])))
            tracker.note(task, kind, arrival)


async def follow_assignments(js: JetStreamContext, node: str, tracker: Tracker) -> None:
    """Note when each of ``node``'s assignment keys is first put, as the agent's watch sees it."""
    kv = await js.key_value(subjects.ASSIGNMENTS_BUCKET)
    watcher = await kv.watch(f"{node}.*")
    try:
        async for entry in watcher:
            if entry is not None and entry.value and entry.operation not in ("DEL", "PURGE"):
                tracker.note(entry.key.split(".", 1)[1], ASSIGNED, time.perf_counter())
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]


# ---- the engine, directly ---------------------------------------------------------------------


def _filters(label: str) -> str:
    return json.dumps({"label": [label]})


async def _inspect_labelled(docker: aiodocker.Docker, label: str) -> list[dict[str, Any]]:
    found = await docker.containers.list(all=True, filters=_filters(label))
    return list(await asyncio.gather(*(c.show() for c in found)))


async def note_containers(docker: aiodocker.Docker, node: str, tracker: Tracker) -> None:
    """Note each container's ``Created`` and ``StartedAt`` (the engine's clock, this host's)."""
    for data in await _inspect_labelled(docker, f"{LABEL_NODE}={node}"):
        task = data["Config"]["Labels"][LABEL_TASK]
        tracker.note(task, DOCKER_CREATED, tracker.from_wall(data["Created"]))
        tracker.note(task, DOCKER_STARTED, tracker.from_wall(data["State"]["StartedAt"]))


async def remove_labelled(docker: aiodocker.Docker, label: str) -> int:
    found = await docker.containers.list(all=True, filters=_filters(label))
    slots = asyncio.Semaphore(_REMOVE_CONCURRENCY)

    async def one(container: Any) -> None:
        async with slots:
            with contextlib.suppress(DockerError):
                await container.delete(force=True, v=True)

    await asyncio.gather(*(one(c) for c in found))
    return len(found)


async def _start_direct(docker: aiodocker.Docker, image: str, name: str, bench: str) -> None:
    body: dict[str, Any] = {"Image": image, "Cmd": list(ARGS), "Labels": {BENCH_LABEL: bench}}
    container = await docker.containers.create(body, name=name)
    await container.start()


async def direct_parallel(docker: aiodocker.Docker, image: str, bench: str, n: int) -> Batch:
    started = time.perf_counter()

    async def one(i: int) -> float:
        await _start_direct(docker, image, f"{bench}-parallel-{i:02d}", bench)
        return time.perf_counter() - started

    return Batch(tuple(await asyncio.gather(*(one(i) for i in range(n)))))


async def _runtime_start(runtime: DockerRuntime, spec: ContainerSpec) -> None:
    """What the agent asks of the engine for one start: the image check, then ``start``."""
    assert spec.config.image is not None
    await runtime.ensure_image(spec.config.image)
    await runtime.start(spec)


# ---- through voiyd ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """What the measuring coroutines share: connections, the tracker, names."""

    nc: Client
    docker: aiodocker.Docker
    tracker: Tracker
    node: str
    node_pid: int
    image: str

    async def api(self, kind: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        return await call(self.nc, subjects.api(kind, verb), body, timeout=API_TIMEOUT_S)

    async def create(self, name: str) -> None:
        config = {"image": self.image, "args": list(ARGS), "stop_timeout_s": STOP_TIMEOUT_S}
        meta = {"name": name, "labels": {"bench": self.node}}
        await self.api("task", "create", {"task": {"meta": meta, "config": config}})

    async def visible(self, name: str) -> None:
        """Ask for the task as of its task.started; note when the API shows it running."""
        body = {"name": name, "min_revision": self.tracker.started_seq[name]}
        phase = (await self.api("task", "get", body))["task"]["status"]["phase"]
        if phase != "running":
            raise RuntimeError(f"task {name} is {phase} right after task.started")
        self.tracker.note(name, VISIBLE, time.perf_counter())


async def voiyd_one(b: Bench, name: str) -> None:
    """Create ``name``; return once the API shows it running (the moments are in the tracker)."""
    b.tracker.note(name, SENT, time.perf_counter())
    async with asyncio.timeout(TASK_TIMEOUT_S):
        await b.create(name)
        await b.tracker.wait(name, STARTED)
        await b.visible(name)


async def _timed(step: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await step()
    return time.perf_counter() - started


async def one_by_one(b: Bench, names: Sequence[str]) -> OneByOne:
    """For each task in turn: a direct start, a ``DockerRuntime`` start and a voiyd task.

    Interleaved, in an order that rotates, so each trio meets the engine in the same state
    (as many containers running, the same background work) however the shared machine drifts.
    """
    runtime = DockerRuntime(request_timeout_s=DOCKER_TIMEOUT_S)
    config = TaskConfig.model_validate({"image": b.image, "args": list(ARGS)})
    seconds: dict[str, list[float]] = {"direct": [], "runtime": [], "voiyd": []}
    try:
        for i, name in enumerate(names):
            spec = ContainerSpec(
                task=f"{b.node}-{i:02d}", epoch=1, node=f"{b.node}-rt", config=config
            )
            steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                (
                    "direct",
                    partial(_start_direct, b.docker, b.image, f"{b.node}-direct-{i:02d}", b.node),
                ),
                ("runtime", partial(_runtime_start, runtime, spec)),
                ("voiyd", partial(voiyd_one, b, name)),
            ]
            k = i % len(steps)
            for key, step in steps[k:] + steps[:k]:
                seconds[key].append(await _timed(step))
    finally:
        await runtime.close()
    m = b.tracker.moments
    return OneByOne(
        voiyd=Batch(tuple(m[n, STARTED] - m[n, SENT] for n in names)),
        visible=Batch(tuple(m[n, VISIBLE] - m[n, SENT] for n in names)),
        direct=Batch(tuple(seconds["direct"])),
        runtime=Batch(tuple(seconds["runtime"])),
    )


async def voiyd_concurrent(b: Bench, names: Sequence[str]) -> Batch:
    started = time.perf_counter()
    for name in names:
        b.tracker.note(name, SENT, started)
    async with asyncio.timeout(BATCH_TIMEOUT_S):
        await asyncio.gather(*(b.create(name) for name in names))
        moments = await asyncio.gather(*(b.tracker.wait(n, STARTED) for n in names))
    return Batch(tuple(m - started for m in moments))


async def _delete(b: Bench, name: str) -> None:
    with contextlib.suppress(NotFoundError):
        await b.api("task", "delete", {"name": name})


async def _count_left(b: Bench, label: str, within_s: float) -> int:
    """Containers still labelled ``label`` once none are, or ``within_s`` has passed."""
    deadline = time.monotonic() + within_s
    while True:
        left = len(await b.docker.containers.list(all=True, filters=_filters(label)))
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(_POLL_S)


async def teardown(b: Bench, names: Sequence[str]) -> Teardown:
    """Delete through the API; give the agent a while, then remove what is left directly."""
    started = time.perf_counter()
    await asyncio.gather(*(_delete(b, name) for name in names))
    label = f"{LABEL_NODE}={b.node}"
    left = await _count_left(b, label, TEARDOWN_WAIT_S)
    if left:
        await remove_labelled(b.docker, label)
        if await _count_left(b, label, DOCKER_TIMEOUT_S):
            raise RuntimeError(f"containers labelled {label} are still there")
    listed = await b.api("task", "list", {"selector": f"bench={b.node}"})
    if listed["tasks"]:
        raise RuntimeError(f"{len(listed['tasks'])} tasks still listed after the deletes")
    seconds = time.perf_counter() - started
    await asyncio.sleep(SETTLE_S)  # the agent's stops in flight return once their containers go
    return Teardown(deleted=len(names), by_agent=len(names) - left, seconds=seconds)


def read_memory(pid: int) -> Memory:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return Memory(
        rss=int(fields["VmRSS"].split()[0]) * 1024, hwm=int(fields["VmHWM"].split()[0]) * 1024
    )


# ---- the run ----------------------------------------------------------------------------------


async def _wait_node_ready(b: Bench) -> None:
    deadline = time.monotonic() + NODE_READY_S
    while time.monotonic() < deadline:
        with contextlib.suppress(NotFoundError, UnavailableError):
            if (await b.api("node", "get", {"name": b.node}))["node"]["phase"] == "ready":
                return
        await asyncio.sleep(_POLL_S)
    raise RuntimeError(f"node {b.node} not ready in the API within {NODE_READY_S:g}s")


async def _concurrent(b: Bench, n: int, say: Say) -> tuple[Batch, Batch, list[str], Teardown]:
    say(f"direct baseline: {n} aiodocker create+start in parallel")
    parallel = await direct_parallel(b.docker, b.image, b.node, n)
    await remove_labelled(b.docker, f"{BENCH_LABEL}={b.node}")
    say(f"voiyd: {n} tasks submitted at once")
    names = [f"par-{i:02d}" for i in range(n)]
    batch = await voiyd_concurrent(b, names)
    await note_containers(b.docker, b.node, b.tracker)
    return batch, parallel, names, await teardown(b, names)


async def _measure(b: Bench, settings: DockerBenchSettings, say: Say) -> DockerBenchResult:
    n = settings.tasks
    await _wait_node_ready(b)
    idle = read_memory(b.node_pid)
    say(f"{n} voiyd tasks one by one, each beside a direct and a DockerRuntime start")
    names = [f"seq-{i:02d}" for i in range(n)]
    sequential = await one_by_one(b, names)
    await asyncio.sleep(SETTLE_S)
    loaded = read_memory(b.node_pid)
    await note_containers(b.docker, b.node, b.tracker)
    await remove_labelled(b.docker, f"{BENCH_LABEL}={b.node}")
    await remove_labelled(b.docker, f"{LABEL_NODE}={b.node}-rt")
    teardowns = [await teardown(b, names)]
    concurrent = parallel = None
    par_names: list[str] = []
    if settings.concurrent:
        concurrent, parallel, par_names, down = await _concurrent(b, n, say)
        teardowns.append(down)
    stages = tuple(
        (label, b.tracker.p50_ms(names, begin, end), b.tracker.p50_ms(par_names, begin, end))
        for label, begin, end in STAGES
    )
    head_tail = tuple(b.tracker.p50_ms(part, ASSIGNED, DOCKER_CREATED) for part in _ends(names))
    return DockerBenchResult(
        n, sequential, concurrent, parallel, stages, (head_tail[0], head_tail[1]), idle, loaded,
        tuple(teardowns),
    )  # fmt: skip


async def _run_async(
    url: str, node: str, node_pid: int, image: str, settings: DockerBenchSettings, say: Say
) -> DockerBenchResult:
    nc = await nats.connect(url, name="voiyd-bench-docker")
    docker = aiodocker.Docker()
    b = Bench(nc, docker, Tracker(), node, node_pid, image)
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S), asyncio.TaskGroup() as tg:
            js = nc.jetstream()
            followers = [
                tg.create_task(follow_events(js, b.tracker)),
                tg.create_task(follow_assignments(js, node, b.tracker)),
            ]
            try:
                return await _measure(b, settings, say)
            finally:
                for follower in followers:
                    follower.cancel()
    finally:
        await docker.close()
        await nc.close()


def _start_cluster(url: str, workdir: Path, node: str, procs: list[DaemonProcess]) -> int:
    """Start server, scheduler and node (each tracked before it starts); the node's pid."""
    for proc in (
        voiyd_server(url, workdir / "server"),
        voiyd_scheduler(url, workdir),
        voiyd_node(url, node, workdir / f"node-{node}", "--runtime", "docker"),
    ):
        procs.append(proc)
        proc.start()
    assert procs[-1].proc is not None
    return procs[-1].proc.pid


def _docker_rm_all(node: str) -> None:
    """Last resort, whatever happened: no container of this run outlives it."""
    for label in (f"{LABEL_NODE}={node}", f"{LABEL_NODE}={node}-rt", f"{BENCH_LABEL}={node}"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run(
                ["docker", "ps", "-aq", "--filter", f"label={label}"],
                capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S, check=False,
            )  # fmt: skip
            if ids := found.stdout.split():
                subprocess.run(
                    ["docker", "rm", "-f", *ids], capture_output=True, timeout=120, check=False
                )


def run(settings: DockerBenchSettings | None = None, say: Say = _say) -> DockerBenchResult:
    """Start nats-server and the three voiyd processes, measure, stop and remove everything."""
    settings = settings or DockerBenchSettings()
    image = ensure_test_image()
    node = f"bench-{secrets.token_hex(3)}"
    started = time.perf_counter()
    procs: list[DaemonProcess] = []
    with tempfile.TemporaryDirectory(prefix="voiyd-bench-docker-") as tmp:
        server = NatsServer(Path(tmp) / "nats")
        try:
            server.start()
            say(f"starting voiyd-server, voiyd-scheduler and node {node}")
            pid = _start_cluster(server.url, Path(tmp), node, procs)
            result = asyncio.run(_run_async(server.url, node, pid, image, settings, say))
        finally:
            for proc in reversed(procs):
                proc.stop()
            server.stop()
            _docker_rm_all(node)
    return replace(result, total_s=time.perf_counter() - started)


# ---- the table --------------------------------------------------------------------------------


def _lat(batch: Batch) -> str:
    return f"p50 {batch.ms(50):.0f} ms, p99 {batch.ms(99):.0f} ms, mean {batch.mean_ms:.0f} ms"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _ends(items: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any]]:
    """The first and the last ``ENDS`` items (the running count is lowest, then highest)."""
    return items[:ENDS], items[-ENDS:]


def _head_tail(batch: Batch) -> str:
    head, tail = (Batch(tuple(part)) for part in _ends(batch.latencies_s))
    return f"{head.ms(50):.0f} / {tail.ms(50):.0f} ms"


def _latency_rows(r: DockerBenchResult) -> list[tuple[str, str, str]]:
    s = r.one_by_one
    return [
        (f"Docker task submit -> running, {r.tasks} one by one", _lat(s.voiyd), ""),
        ("  direct aiodocker create+start, side by side", _lat(s.direct), ""),
        (
            "  ratio of p50s, voiyd / direct (paired median)",
            f"{s.ratio:.2f}x ({s.paired_ratio:.2f}x)",
            f"<= {TARGET_RATIO:g}x: {_verdict(s.ratio <= TARGET_RATIO)}",
        ),
        ("  ... until task.get shows running", _lat(s.visible), ""),
        ("  DockerRuntime ensure_image+start, side by side", _lat(s.runtime), ""),
        (
            f"  p50 of first / last {ENDS}: voiyd; direct",
            f"{_head_tail(s.voiyd)}; {_head_tail(s.direct)}",
            "",
        ),
    ]


def _concurrent_rows(r: DockerBenchResult) -> list[tuple[str, str, str]]:
    if r.concurrent is None or r.direct_parallel is None:
        return []
    c, d = r.concurrent, r.direct_parallel
    return [
        (f"Docker tasks submitted at once, {r.tasks}", _lat(c), ""),
        ("  direct aiodocker create+start in parallel", _lat(d), ""),
        ("  ratio of p50s / of last starts", f"{c.ms(50) / d.ms(50):.2f}x / "
         f"{c.makespan_s / d.makespan_s:.2f}x ({c.makespan_s:.1f} s vs {d.makespan_s:.1f} s)",
         ""),
    ]  # fmt: skip


def _breakdown_rows(r: DockerBenchResult) -> list[tuple[str, str, str]]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    out = [("where the time goes (p50: one by one / at once)", "", "")]
    for label, seq, conc in r.stages:
        out.append((f"  {label}", f"{ms(seq)} / {ms(conc)}", ""))
    head, tail = r.agent_head_tail
    out.append((f"  agent stage, first / last {ENDS} one by one", f"{ms(head)} / {ms(tail)}", ""))
    return out


def rows(r: DockerBenchResult) -> list[tuple[str, str, str]]:
    """``(measurement, figure, target)`` rows for a report table."""
    mem = [
        (
            f"voiyd-node RSS, {r.tasks} tasks running",
            f"VmRSS {r.loaded.rss / MIB:.1f} MiB, VmHWM {r.loaded.hwm / MIB:.1f} MiB",
            f"< {TARGET_RSS / MIB:.0f} MiB: {_verdict(r.loaded.rss < TARGET_RSS)}",
        ),
        (
            "  idle, right after join",
            f"VmRSS {r.idle.rss / MIB:.1f} MiB, VmHWM {r.idle.hwm / MIB:.1f} MiB",
            "",
        ),
    ]
    downs = [
        (
            f"teardown {i + 1}: API deletes -> containers gone",
            f"{t.seconds:.1f} s; agent removed {t.by_agent}/{t.deleted} in {TEARDOWN_WAIT_S:g} s",
            "",
        )
        for i, t in enumerate(r.teardowns)
    ]
    total = [("whole run", f"{r.total_s:.0f} s", "")]
    return _latency_rows(r) + _concurrent_rows(r) + _breakdown_rows(r) + mem + downs + total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_docker", description=__doc__.split("\n")[0]
    )
    p.add_argument("--tasks", type=int, default=50)
    p.add_argument("--no-concurrent", action="store_true", help="skip the all-at-once round")
    args = p.parse_args(argv)
    if args.tasks < 1:
        p.error("--tasks must be at least 1")
    result = run(DockerBenchSettings(tasks=args.tasks, concurrent=not args.no_concurrent))
    table = rows(result)
    width = max(len(name) for name, _, _ in table)
    for name, figure, target in table:
        print(f"{name:<{width}}  {figure:<56} {target}".rstrip())
    return 0 if result.met else 1


if __name__ == "__main__":
    sys.exit(main())
