"""Benchmark: Sets. Creating a Set's members, one controller pass, a real rolling update.

Three measurements, each beside a baseline measured in the same run:

- **creation** (its own nats-server, simulated nodes): a log holding ``nodes`` ``node.joined``
  events and ``set.created`` events of ``replicas`` members in all (Sets of at most
  ``MAX_REPLICAS``, the limit of one Set); a ``SchedulerLoop`` (voiyd-scheduler's
  own loop, ``run()``) is started on it and timed until every member is created (controller
  decisions appended with their expected revision, read back) and scheduled. Baseline, on a fresh
  stream: the same log plus the same member tasks appended directly as ``task.created`` (their
  names, labels and template, so placement does the same work and the controller has nothing to
  do), timed the same way; the direct appends (64 in flight, ``append`` with OCC, as the
  scheduler does) are timed apart. Rounds alternate the two paths; a ratio is the median of the
  per-round ratios.
- **controller pass** (pure, no I/O): ``sets.control()`` over a view of ``sets`` x ``members``
  running members (built by the same loop, then ``task.started`` appended for each), with no
  rollout, with one Set rolling out and with every Set rolling out; per member, beside the pure
  ``plan()`` over the same view.
- **rolling update** (a Docker engine; skipped with a reason otherwise): ``voiyd-server``,
  ``voiyd-scheduler`` and one ``voiyd-node --runtime docker`` as processes; a Set of 8 replicas of
  the local image ``voiyd-test/busybox:1`` (``sleep 3600``, ``stop_timeout_s`` 1, no health
  check), ``max_parallel`` 2 stop-first, moved to a second tag of the same image (``docker tag``,
  never pulled) and back: ``set.apply`` to the rollout's completion in ``set.get``. Baseline:
  aiodocker replacing 8 containers two at a time (stop with t=1, remove, create, start).

Nothing here asserts on time; ``python -m benchmarks.bench_sets`` prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiodocker
import nats
from aiodocker.exceptions import DockerError
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError as StreamNotFoundError

from benchmarks.timing import median
from tests.dockerimage import ImageUnavailable, ensure_test_image
from tests.e2e.procs import DaemonProcess, voiyd_node, voiyd_scheduler, voiyd_server
from tests.natsserver import NatsServer
from voiyd import clock, ids
from voiyd.agent.runtimes.protocol import LABEL_NODE
from voiyd.api.specs import MAX_REPLICAS, SetConfig, TaskConfig
from voiyd.api.views import NodeCapacity, TaskView
from voiyd.bus import subjects
from voiyd.bus.publish import append
from voiyd.bus.rpc import call
from voiyd.bus.streams import ensure_streams
from voiyd.errors import NotFoundError, UnavailableError
from voiyd.events import models as ev
from voiyd.scheduler import sets
from voiyd.scheduler.plan import plan
from voiyd.scheduler.runner import SchedulerLoop, SchedulerSettings

GIB = 1024**3
SET_NAME = "bench"
APPENDS_IN_FLIGHT = 64
"""As ``SchedulerSettings.max_inflight``: the direct appends go as fast as the scheduler's."""
POLL_S = 0.01
TIMEOUT_S = 600.0
STOP_LOOP_S = 30.0
IMAGE_TAG2 = "voiyd-test/busybox:bench2"
ARGS = ("sleep", "3600")
BENCH_LABEL = "io.voiyd.bench-sets"
API_TIMEOUT_S = 10.0
NODE_READY_S = 30.0
ROLLOUT_TIMEOUT_S = 180.0
DOCKER_TIMEOUT_S = 30.0
SET_GONE_S = 30.0
DOCKER_POLL_S = 0.05

Say = Callable[[str], None]


@dataclass(frozen=True)
class SetBenchSettings:
    nodes: int = 200
    replicas: int = 2000
    """Members created in all: Sets of at most ``MAX_REPLICAS`` each."""
    rounds: int = 3
    controller_sizes: tuple[tuple[int, int], ...] = ((10, 20), (100, 20))
    """(sets, members per Set) views of the controller pass."""
    controller_rounds: int = 5
    docker: bool = True
    docker_replicas: int = 8
    max_parallel: int = 2
    docker_rounds: int = 2
    """Rollouts each way: to the second tag, back to the first, ..."""


@dataclass(frozen=True)
class CreationRound:
    set_s: float
    """set.created in the log -> every member created and scheduled."""
    direct_s: float
    """The member tasks in the log -> every one scheduled."""
    appends_s: float
    """Appending the member tasks directly (the direct path's own appends)."""

    @property
    def ratio(self) -> float:
        return self.set_s / self.direct_s

    @property
    def ratio_with_appends(self) -> float:
        return self.set_s / (self.direct_s + self.appends_s)


@dataclass(frozen=True)
class ControllerCase:
    sets: int
    members: int
    case: str
    decisions: int
    control_s: tuple[float, ...]
    plan_s: tuple[float, ...]

    @property
    def total(self) -> int:
        return self.sets * self.members

    @property
    def control_us_per_member(self) -> float:
        return median(self.control_s) / self.total * 1e6

    @property
    def ratio(self) -> float:
        return median(self.control_s) / median(self.plan_s)


@dataclass(frozen=True)
class RolloutRound:
    image: str
    voiyd_s: float
    direct_s: float
    min_available: int
    """The fewest available members ``set.get`` showed during the rollout."""
    max_containers: int
    """The most containers of the node running at once (sampled with each ``set.get``)."""

    @property
    def ratio(self) -> float:
        return self.voiyd_s / self.direct_s


@dataclass(frozen=True)
class DockerRollout:
    replicas: int
    max_parallel: int
    rounds: tuple[RolloutRound, ...] = ()
    skipped: str = ""


@dataclass(frozen=True)
class SetBenchResults:
    nodes: int
    replicas: int
    creation: tuple[CreationRound, ...]
    controller: tuple[ControllerCase, ...]
    docker: DockerRollout | None
    total_s: float = 0.0


def _say(text: str) -> None:
    print(f"[bench sets] {text}", file=sys.stderr, flush=True)


# ---- the log ----------------------------------------------------------------------------------


def _node(i: int, at: datetime) -> ev.NodeJoined:
    data = ev.NodeJoinedData(
        name=f"node-{i:04d}",
        labels={"zone": f"z{i % 4}"},
        runtimes=["docker", "exec"],
        capacity=NodeCapacity(cpus=16, memory=64 * GIB),
        agent_version="bench",
    )
    return ev.NodeJoined(id=ids.new_id(), at=at, actor="bench", data=data)


def _template(image: str) -> TaskConfig:
    return TaskConfig.model_validate(
        {"image": image, "resources": {"cpus": 0.1, "memory": "64Mi"}, "ports": []}
    )


def _set_spec(name: str, replicas: int, image: str) -> ev.SetSpecData:
    config = SetConfig(replicas=replicas, template=_template(image))
    return ev.SetSpecData(name=name, labels={"app": name}, config=config)


def _set_created(name: str, replicas: int, at: datetime) -> ev.SetCreated:
    data = _set_spec(name, replicas, "registry.local/app:1")
    return ev.SetCreated(id=ids.new_id(), at=at, actor="bench", data=data)


async def _append_all(
    js: JetStreamContext, events: Sequence[ev.AnyEvent], expected: int | None = None
) -> None:
    """``events`` appended, ``APPENDS_IN_FLIGHT`` at a time (``expected``: the revision each
    subject must be at, as an API create sends 0)."""
    todo = iter(events)

    async def worker() -> None:
        for event in todo:
            await append(js, event, expected_revision=expected)

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(APPENDS_IN_FLIGHT, len(events))):
            tg.create_task(worker())


async def _fresh(js: JetStreamContext) -> None:
    """An empty event log (a new stream: sequences restart at 1)."""
    with contextlib.suppress(StreamNotFoundError):
        await js.delete_stream(subjects.EVENTS_STREAM)
    await ensure_streams(js)


def _scheduled(loop: SchedulerLoop) -> list[TaskView]:
    return [t for t in loop.view.tasks.values() if t.status.phase == "scheduled"]


async def _run_until_scheduled(loop: SchedulerLoop, count: int) -> float:
    """Run the loop (``start()`` included) until ``count`` tasks are scheduled; the seconds."""
    stop = asyncio.Event()
    started = time.perf_counter()
    runner = asyncio.create_task(loop.run(stop))

    async def until() -> float:
        while True:
            if len(_scheduled(loop)) >= count:
                return time.perf_counter() - started
            await asyncio.sleep(POLL_S)

    waiter = asyncio.create_task(until())
    try:
        async with asyncio.timeout(TIMEOUT_S):
            done, _ = await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            runner.result()
            raise RuntimeError("the scheduler loop stopped before every task was scheduled")
        return waiter.result()
    finally:
        waiter.cancel()
        stop.set()
        async with asyncio.timeout(STOP_LOOP_S):
            await asyncio.gather(runner, return_exceptions=True)


# ---- 1. creation ------------------------------------------------------------------------------


def _members_as_events(members: Sequence[TaskView], at: datetime) -> list[ev.AnyEvent]:
    return [
        ev.TaskCreated(
            id=ids.new_id(),
            at=at,
            actor="bench",
            data=ev.TaskSpecData(name=t.meta.name, labels=t.meta.labels, config=t.config),
        )
        for t in members
    ]


def split(total: int) -> list[tuple[str, int]]:
    """``total`` members as Sets (name, replicas) of at most ``MAX_REPLICAS``, as even as can be."""
    count = -(-total // MAX_REPLICAS)
    return [(f"{SET_NAME}{j}", total // count + (j < total % count)) for j in range(count)]


async def _prefill(js: JetStreamContext, s: SetBenchSettings) -> datetime:
    """A fresh log with the nodes and the Sets; the events' time."""
    await _fresh(js)
    at = clock.now()
    await _append_all(js, [_node(i, at) for i in range(s.nodes)])
    await _append_all(js, [_set_created(n, r, at) for n, r in split(s.replicas)], expected=0)
    return at


async def _set_path(js: JetStreamContext, s: SetBenchSettings) -> tuple[float, list[TaskView]]:
    await _prefill(js, s)
    loop = SchedulerLoop(js, SchedulerSettings(max_inflight=APPENDS_IN_FLIGHT))
    seconds = await _run_until_scheduled(loop, s.replicas)
    members = sorted(loop.view.tasks.values(), key=lambda t: t.meta.name)
    expected = {f"{n}-{i}" for n, r in split(s.replicas) for i in range(1, r + 1)}
    if {t.meta.name for t in members} != expected:
        raise RuntimeError("the Sets' members are not <set>-1..<set>-<replicas>")
    return seconds, members


async def _direct_path(
    js: JetStreamContext, s: SetBenchSettings, members: Sequence[TaskView]
) -> tuple[float, float]:
    at = await _prefill(js, s)
    started = time.perf_counter()
    await _append_all(js, _members_as_events(members, at), expected=0)
    appends_s = time.perf_counter() - started
    loop = SchedulerLoop(js, SchedulerSettings(max_inflight=APPENDS_IN_FLIGHT))
    seconds = await _run_until_scheduled(loop, s.replicas)
    if len(loop.view.tasks) != s.replicas:
        raise RuntimeError(f"{len(loop.view.tasks)} tasks after the direct path, not {s.replicas}")
    return seconds, appends_s


async def creation(js: JetStreamContext, s: SetBenchSettings, say: Say) -> list[CreationRound]:
    out = []
    members: list[TaskView] = []
    for i in range(s.rounds):
        say(f"creation round {i + 1}/{s.rounds}: {s.replicas:,} members on {s.nodes} nodes")
        if i % 2 == 0 or not members:
            set_s, members = await _set_path(js, s)
            direct_s, appends_s = await _direct_path(js, s, members)
        else:
            direct_s, appends_s = await _direct_path(js, s, members)
            set_s, members = await _set_path(js, s)
        out.append(CreationRound(set_s, direct_s, appends_s))
    return out


# ---- 2. one controller pass -------------------------------------------------------------------


def _started(t: TaskView, at: datetime) -> ev.TaskStarted:
    assert t.status.node is not None
    data = ev.StartedData(
        name=t.meta.name, node=t.status.node, epoch=t.status.epoch, container_id=ids.new_id()
    )
    return ev.TaskStarted(id=ids.new_id(), at=at, actor="bench", data=data)


def _updated(name: str, replicas: int, at: datetime) -> ev.SetUpdated:
    data = _set_spec(name, replicas, "registry.local/app:2")
    return ev.SetUpdated(id=ids.new_id(), at=at, actor="bench", data=data)


def _time_pass(
    loop: SchedulerLoop, rounds: int, case: str, n_sets: int, per: int
) -> ControllerCase:
    now = clock.now()
    control_s, plan_s = [], []
    decisions = 0
    for _ in range(rounds):
        started = time.perf_counter()
        decisions = len(sets.control(loop.view, now))
        control_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        plan(loop.view, now)
        plan_s.append(time.perf_counter() - started)
    return ControllerCase(n_sets, per, case, decisions, tuple(control_s), tuple(plan_s))


async def controller(
    js: JetStreamContext, n_sets: int, per: int, rounds: int, say: Say
) -> list[ControllerCase]:
    total = n_sets * per
    say(f"controller pass: {n_sets} sets x {per} members (created and scheduled by the loop)")
    await _fresh(js)
    at = clock.now() - timedelta(minutes=1)
    nodes = max(10, total // 10)
    await _append_all(js, [_node(i, at) for i in range(nodes)])
    names = [f"s{j:03d}" for j in range(n_sets)]
    await _append_all(js, [_set_created(n, per, at) for n in names], expected=0)
    loop = SchedulerLoop(js, SchedulerSettings(max_inflight=APPENDS_IN_FLIGHT))
    await _run_until_scheduled(loop, total)
    await _append_all(js, [_started(t, clock.now()) for t in _scheduled(loop)])
    await loop.catch_up()
    running = sum(1 for t in loop.view.tasks.values() if t.status.phase == "running")
    if running != total:
        raise RuntimeError(f"{running} members running, not {total}")
    # One round of the loop records every Set's first rollout as complete: a steady view.
    completed = await loop.step()
    await loop.catch_up()
    if completed.appended["set-completed"] != n_sets:
        raise RuntimeError(f"rollouts completed: {dict(completed.appended)}, not {n_sets}")
    out = [_time_pass(loop, rounds, "all available, no rollout", n_sets, per)]
    await append(js, _updated(names[0], per, clock.now()))
    await loop.catch_up()
    out.append(_time_pass(loop, rounds, "one Set rolling out", n_sets, per))
    await _append_all(js, [_updated(n, per, clock.now()) for n in names[1:]])
    await loop.catch_up()
    out.append(_time_pass(loop, rounds, "every Set rolling out", n_sets, per))
    return out


async def _in_process(url: str, s: SetBenchSettings, say: Say) -> SetBenchResults:
    nc = await nats.connect(url, name="voiyd-bench-sets", pending_size=64 * 1024 * 1024)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        rounds = await creation(js, s, say)
        cases: list[ControllerCase] = []
        for n_sets, per in s.controller_sizes:
            cases += await controller(js, n_sets, per, s.controller_rounds, say)
    finally:
        await nc.close()
    return SetBenchResults(s.nodes, s.replicas, tuple(rounds), tuple(cases), None)


# ---- 3. a rolling update on Docker ------------------------------------------------------------


def _docker_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S, check=False
    )


def docker_images() -> tuple[str, str] | str:
    """The two tags of the test image, or why Docker cannot be used here."""
    try:
        if _docker_cli("info").returncode != 0:
            return "no Docker engine answers"
        first = ensure_test_image()
        tagged = _docker_cli("tag", first, IMAGE_TAG2)
    except (OSError, subprocess.SubprocessError, ImageUnavailable) as exc:
        return f"Docker unavailable: {exc}"
    if tagged.returncode != 0:
        return f"docker tag failed: {tagged.stderr.strip()}"
    return first, IMAGE_TAG2


def _set_doc(image: str, replicas: int, max_parallel: int) -> dict[str, Any]:
    return {
        "meta": {"name": SET_NAME, "labels": {"app": SET_NAME}},
        "config": {
            "replicas": replicas,
            "template": {"image": image, "args": list(ARGS), "stop_timeout_s": 1},
            "update": {"max_parallel": max_parallel, "order": "stop-first", "deadline_s": 300},
        },
    }


@dataclass
class DockerBench:
    nc: Client
    docker: aiodocker.Docker
    node: str
    replicas: int
    max_parallel: int
    direct: list[str] = field(default_factory=list)
    most: int = 0
    """The most containers of the node seen running during the last rollout."""

    async def api(self, kind: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        return await call(self.nc, subjects.api(kind, verb), body, timeout=API_TIMEOUT_S)

    async def wait_node_ready(self) -> None:
        deadline = time.monotonic() + NODE_READY_S
        while time.monotonic() < deadline:
            with contextlib.suppress(NotFoundError, UnavailableError):
                if (await self.api("node", "get", {"name": self.node}))["node"]["phase"] == "ready":
                    return
            await asyncio.sleep(DOCKER_POLL_S)
        raise RuntimeError(f"node {self.node} not ready within {NODE_READY_S:g}s")

    async def rollout_done(self, revision: int, written: int) -> int:
        """Poll ``set.get`` (as of ``written``, the write's revision) until the rollout to
        ``revision`` is complete; the fewest available members seen meanwhile."""
        fewest, self.most = self.replicas, 0
        body = {"name": SET_NAME, "min_revision": written}
        running = json.dumps({"label": [f"{LABEL_NODE}={self.node}"], "status": ["running"]})
        async with asyncio.timeout(ROLLOUT_TIMEOUT_S):
            while True:
                s = (await self.api("set", "get", body))["set"]["status"]
                fewest = min(fewest, int(s["available"]))
                found = await self.docker.containers.list(filters=running)
                self.most = max(self.most, len(found))
                rollout = s["rollout"]
                if rollout["revision"] == revision and rollout["state"] == "failed":
                    raise RuntimeError(f"rollout to revision {revision} failed: {rollout}")
                if rollout["revision"] == revision and rollout["state"] == "complete":
                    return fewest
                await asyncio.sleep(DOCKER_POLL_S)

    async def voiyd_rollout(self, image: str, revision: int) -> tuple[float, int]:
        doc = _set_doc(image, self.replicas, self.max_parallel)
        started = time.perf_counter()
        written = await self.api("set", "apply", {"set": doc})
        fewest = await self.rollout_done(revision, int(written["revision"]))
        return time.perf_counter() - started, fewest

    async def _create_direct(self, name: str, image: str) -> None:
        body: dict[str, Any] = {"Image": image, "Cmd": list(ARGS), "Labels": {BENCH_LABEL: name}}
        container = await self.docker.containers.create(body, name=name)
        await container.start()

    async def _replace_direct(self, name: str, image: str) -> None:
        old = await self.docker.containers.get(name)
        await old.stop(t=1)
        await old.delete()
        await self._create_direct(name, image)

    async def start_direct(self, image: str) -> None:
        self.direct = [f"{self.node}-direct-{i}" for i in range(1, self.replicas + 1)]
        await asyncio.gather(*(self._create_direct(n, image) for n in self.direct))

    async def direct_rollout(self, image: str) -> float:
        """Replace every direct container, ``max_parallel`` at a time; the seconds."""
        started = time.perf_counter()
        for i in range(0, len(self.direct), self.max_parallel):
            batch = self.direct[i : i + self.max_parallel]
            await asyncio.gather(*(self._replace_direct(n, image) for n in batch))
        return time.perf_counter() - started

    async def remove(self, label: str) -> None:
        filters = json.dumps({"label": [label]})
        for c in await self.docker.containers.list(all=True, filters=filters):
            with contextlib.suppress(DockerError):
                await c.delete(force=True)

    async def delete_set(self) -> None:
        with contextlib.suppress(NotFoundError):
            await self.api("set", "delete", {"name": SET_NAME})
        label = f"{LABEL_NODE}={self.node}"
        filters = json.dumps({"label": [label]})
        deadline = time.monotonic() + SET_GONE_S
        while time.monotonic() < deadline:
            if not await self.docker.containers.list(all=True, filters=filters):
                return
            await asyncio.sleep(DOCKER_POLL_S * 4)
        await self.remove(label)


async def _docker_async(
    url: str, node: str, images: tuple[str, str], s: SetBenchSettings, say: Say
) -> DockerRollout:
    nc = await nats.connect(url, name="voiyd-bench-sets-docker")
    docker = aiodocker.Docker()
    b = DockerBench(nc, docker, node, s.docker_replicas, s.max_parallel)
    rounds = []
    try:
        await b.wait_node_ready()
        say(f"a Set of {b.replicas} on {images[0]}; direct containers beside it")
        doc = _set_doc(images[0], b.replicas, b.max_parallel)
        written = await b.api("set", "create", {"set": doc})
        await b.rollout_done(1, int(written["revision"]))
        await b.start_direct(images[0])
        for i in range(s.docker_rounds):
            image = images[(i + 1) % 2]
            say(f"rolling update {i + 1}/{s.docker_rounds} to {image}: voiyd, then direct")
            voiyd_s, fewest = await b.voiyd_rollout(image, revision=i + 2)
            direct_s = await b.direct_rollout(image)
            rounds.append(RolloutRound(image, voiyd_s, direct_s, fewest, b.most))
        await b.delete_set()
    finally:
        with contextlib.suppress(DockerError):
            await b.remove(BENCH_LABEL)
        await docker.close()
        await nc.close()
    return DockerRollout(b.replicas, b.max_parallel, tuple(rounds))


def _docker_rm_all(node: str) -> None:
    """Last resort, whatever happened: no container of this run outlives it."""
    for label in (f"{LABEL_NODE}={node}", BENCH_LABEL):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = _docker_cli("ps", "-aq", "--filter", f"label={label}")
            if found_ids := found.stdout.split():
                _docker_cli("rm", "-f", *found_ids)


def docker_rollout(s: SetBenchSettings, say: Say) -> DockerRollout:
    images = docker_images()
    if isinstance(images, str):
        say(f"rolling update skipped: {images}")
        return DockerRollout(s.docker_replicas, s.max_parallel, skipped=images)
    node = f"bench-sets-{secrets.token_hex(3)}"
    procs: list[DaemonProcess] = []
    with tempfile.TemporaryDirectory(prefix="voiyd-bench-sets-docker-") as tmp:
        workdir = Path(tmp)
        server = NatsServer(workdir / "nats")
        try:
            server.start()
            say(f"starting voiyd-server, voiyd-scheduler and node {node}")
            for proc in (
                voiyd_server(server.url, workdir / "server"),
                voiyd_scheduler(server.url, workdir),
                voiyd_node(server.url, node, workdir / f"node-{node}", "--runtime", "docker"),
            ):
                procs.append(proc)
                proc.start()
            return asyncio.run(_docker_async(server.url, node, images, s, say))
        finally:
            for proc in reversed(procs):
                proc.stop()
            server.stop()
            _docker_rm_all(node)


# ---- the run and the table --------------------------------------------------------------------


def run(settings: SetBenchSettings | None = None, say: Say = _say) -> SetBenchResults:
    """Start what each part needs, measure, stop everything (whatever happened)."""
    s = settings or SetBenchSettings()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="voiyd-bench-sets-") as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        try:
            results = asyncio.run(_in_process(server.url, s, say))
        finally:
            server.stop()
    docker = docker_rollout(s, say) if s.docker else None
    return replace(results, docker=docker, total_s=time.perf_counter() - started)


def _span(values: Sequence[float], fmt: str = ".2f") -> str:
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


def _sets_text(total: int) -> str:
    parts = split(total)
    if len(parts) == 1:
        return f"Set of {total:,}"
    return f"{len(parts)} Sets, {total:,} members"


def _creation_rows(r: SetBenchResults) -> list[tuple[str, str, str]]:
    c = r.creation
    set_s, direct_s = median([x.set_s for x in c]), median([x.direct_s for x in c])
    appends_s = median([x.appends_s for x in c])
    both_s = median([x.direct_s + x.appends_s for x in c])
    return [
        (
            f"{_sets_text(r.replicas)} created -> all scheduled, {r.nodes} nodes",
            f"{r.replicas / set_s:,.0f} members/s ({set_s:.2f} s)",
            "",
        ),
        (
            "  direct: the same tasks in the log -> all scheduled",
            f"{r.replicas / direct_s:,.0f} tasks/s ({direct_s:.2f} s)",
            "",
        ),
        (
            "  ratio set / direct (median of per-round ratios)",
            f"{median([x.ratio for x in c]):.2f}x the time",
            "",
        ),
        (
            f"  direct appends of the tasks, {APPENDS_IN_FLIGHT} in flight",
            f"{r.replicas / appends_s:,.0f} tasks/s ({appends_s:.2f} s)",
            "",
        ),
        (
            "  ratio set / (direct appends + scheduling)",
            f"{median([x.ratio_with_appends for x in c]):.2f}x ({set_s:.2f} s vs {both_s:.2f} s)",
            "",
        ),
        (
            f"  {len(c)} rounds: set / direct / appends",
            f"{_span([x.set_s for x in c])} / {_span([x.direct_s for x in c])} / "
            f"{_span([x.appends_s for x in c])} s",
            "",
        ),
    ]


def _controller_rows(r: SetBenchResults) -> list[tuple[str, str, str]]:
    out = []
    for c in r.controller:
        out.append(
            (
                f"controller pass, {c.sets} sets x {c.members} members, {c.case}",
                f"{c.control_us_per_member:.1f} us/member ({median(c.control_s) * 1000:.2f} ms, "
                f"{c.decisions} decisions); plan() {median(c.plan_s) * 1000:.2f} ms; "
                f"controller/plan {c.ratio:.2f}x",
                "",
            )
        )
    return out


def _docker_rows(d: DockerRollout | None) -> list[tuple[str, str, str]]:
    if d is None:
        return []
    name = f"Docker rolling update, {d.replicas} replicas, max_parallel {d.max_parallel} stop-first"
    if d.skipped:
        return [(name, f"skipped: {d.skipped}", "")]
    v = median([x.voiyd_s for x in d.rounds])
    direct = median([x.direct_s for x in d.rounds])
    fewest = min(x.min_available for x in d.rounds)
    return [
        (
            name,
            f"{v:.2f} s set.apply -> complete ({len(d.rounds)} rounds "
            f"{_span([x.voiyd_s for x in d.rounds])} s)",
            "",
        ),
        (
            f"  direct aiodocker: stop t=1, remove, create, start, {d.max_parallel} at a time",
            f"{direct:.2f} s ({_span([x.direct_s for x in d.rounds])} s)",
            "",
        ),
        ("  ratio voiyd / direct", f"{median([x.ratio for x in d.rounds]):.2f}x", ""),
        (
            "  fewest available members seen (set.get)",
            f"{fewest} of {d.replicas}",
            f">= {d.replicas - d.max_parallel}: "
            f"{'met' if fewest >= d.replicas - d.max_parallel else 'NOT met'}",
        ),
        (
            "  most containers of the node running at once",
            f"{max(x.max_containers for x in d.rounds)}",
            "",
        ),
    ]


def rows(r: SetBenchResults) -> list[tuple[str, str, str]]:
    """``(measurement, figure, target)`` rows for a report table."""
    total = [("whole run", f"{r.total_s:.0f} s", "")]
    return _creation_rows(r) + _controller_rows(r) + _docker_rows(r.docker) + total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_sets", description=__doc__.split("\n")[0]
    )
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--replicas", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sets", type=int, default=100, help="Sets in the larger controller view")
    p.add_argument("--members", type=int, default=20, help="members per Set (controller)")
    p.add_argument("--no-docker", action="store_true", help="skip the rolling update")
    args = p.parse_args(argv)
    if min(args.nodes, args.replicas, args.rounds, args.sets, args.members) < 1:
        p.error("every figure must be at least 1")
    sizes = ((max(1, args.sets // 10), args.members), (args.sets, args.members))
    settings = SetBenchSettings(
        nodes=args.nodes,
        replicas=args.replicas,
        rounds=args.rounds,
        controller_sizes=sizes,
        docker=not args.no_docker,
    )
    table = rows(run(settings))
    width = max(len(name) for name, _, _ in table)
    for name, figure, target in table:
        print(f"{name:<{width}}  {figure:<56} {target}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
