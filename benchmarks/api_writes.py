"""Benchmark 1: task creates through the API, beside raw JetStream publishes of the same size.

A create goes client -> ``voiyd.api.v1.task.create`` -> voiyd-server (validate, read SQLite,
decide, append with OCC and dedupe headers, wait for the ack, project the event) -> reply.
Baselines, all in the same run and interleaved round by round so that noise hits each alike:

- ``raw``: ``js.publish`` of a msgpack payload as large as the event the API appends, awaiting
  each ack, to a separate file stream with one subject per aggregate (the issue's baseline);
- ``relay``: the same hops as the API through a bare relay process (``benchmarks.relay``) that
  only publishes and replies, to tell the cost of the hops from the cost of voiyd's own work.

Concurrency is 1 (sequential) or N in flight as asyncio tasks bounded by a semaphore, each
awaiting its own ``js.publish``/request (never ``publish_async``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from benchmarks.processes import read_cpu_s
from benchmarks.relay import RAW_STREAM, RELAY_SUBJECT
from benchmarks.timing import Throughput
from voiyd import clock, ids
from voiyd.api.specs import TaskDoc
from voiyd.bus import codec
from voiyd.bus.rpc import call
from voiyd.events.models import TaskCreated, TaskSpecData

CREATE_SUBJECT = "voiyd.api.v1.task.create"
RAW_PREFIX = "bench.raw"
ROUND_TIMEOUT_S = 120.0
WARMUP_OPS = 200
PATHS = ("raw", "relay", "api")


def task_doc(name: str) -> dict[str, Any]:
    """A small, valid task document, as ``voiydctl run`` would send it."""
    return {
        "meta": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "config": {
            "image": "nginx:1.27-alpine",
            "env": {"MODE": "bench", "WORKERS": "2"},
            "resources": {"cpus": 0.25, "memory": "64Mi"},
            "restart": "on-failure:3",
        },
    }


def created_event(name: str) -> TaskCreated:
    """The event the server appends for a create of ``name``."""
    doc = TaskDoc.model_validate(task_doc(name))
    return TaskCreated(
        id=ids.new_id(), at=clock.now(), actor="api", data=TaskSpecData.from_doc(doc)
    )


@dataclass(frozen=True)
class WriteSettings:
    requests: int = 1000
    concurrency: int = 64
    rounds: int = 5


@dataclass
class WriteResults:
    """Rounds per (path, concurrency); ``path`` is one of ``PATHS``."""

    rounds: dict[tuple[str, int], list[Throughput]] = field(default_factory=dict)
    request_bytes: int = 0
    event_bytes: int = 0

    def add(self, path: str, concurrency: int, result: Throughput) -> None:
        self.rounds.setdefault((path, concurrency), []).append(result)


Op = Callable[[int], Awaitable[object]]


def _cpu(pids: Mapping[str, int]) -> dict[str, float]:
    out = {name: read_cpu_s(pid) for name, pid in pids.items()}
    out["client"] = time.process_time()
    return out


async def measure(
    op: Op, count: int, concurrency: int, pids: Mapping[str, int] | None = None
) -> Throughput:
    """Run ``op(0..count-1)`` with at most ``concurrency`` in flight; time each and the whole.

    With ``pids``, also the CPU seconds each of those processes (and this client) used.
    """
    latencies = [0.0] * count
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            started = time.perf_counter()
            await op(i)
            latencies[i] = time.perf_counter() - started

    cpu_before = _cpu(pids) if pids is not None else {}
    started = time.perf_counter()
    async with asyncio.timeout(ROUND_TIMEOUT_S):
        if concurrency == 1:
            for i in range(count):
                await one(i)
        else:
            async with asyncio.TaskGroup() as tg:
                for i in range(count):
                    tg.create_task(one(i))
    elapsed = time.perf_counter() - started
    cpu_after = _cpu(pids) if pids is not None else {}
    cpu = {name: cpu_after[name] - before for name, before in cpu_before.items()}
    return Throughput(count, elapsed, tuple(latencies), cpu)


async def ensure_raw_stream(js: JetStreamContext) -> None:
    await js.add_stream(
        StreamConfig(
            name=RAW_STREAM,
            subjects=[f"{RAW_PREFIX}.>"],
            storage=StorageType.FILE,
            num_replicas=1,
        )
    )


def _api_op(nc: Client, prefix: str) -> Op:
    async def create(i: int) -> object:
        reply = await call(nc, CREATE_SUBJECT, {"task": task_doc(f"{prefix}-{i}")})
        if reply.get("changed") is not True:
            raise RuntimeError(f"create {prefix}-{i} changed nothing: {reply}")
        return reply

    return create


def _relay_op(nc: Client, body: dict[str, Any]) -> Op:
    async def relay(i: int) -> object:
        return await call(nc, RELAY_SUBJECT, body)

    return relay


def _raw_op(js: JetStreamContext, prefix: str, payload: bytes) -> Op:
    async def publish(i: int) -> object:
        return await js.publish(f"{RAW_PREFIX}.{prefix}-{i}", payload, stream=RAW_STREAM)

    return publish


@dataclass(frozen=True)
class Targets:
    """What the rounds talk to: the client connection and the processes whose CPU is counted."""

    nc: Client
    pids: Mapping[str, int]


async def run(
    targets: Targets, settings: WriteSettings, say: Callable[[str], None]
) -> WriteResults:
    """Warm every path up, then interleave raw, relay and API rounds at each concurrency."""
    nc = targets.nc
    js = nc.jetstream()
    sample = f"api-r0-c{settings.concurrency:03d}-{settings.requests - 1}"
    event = created_event(sample)
    payload = codec.encode(event)
    relay_body = event.model_dump(mode="json")
    results = WriteResults(
        request_bytes=len(codec.encode({"task": task_doc(sample)})), event_bytes=len(payload)
    )

    def op(path: str, prefix: str) -> Op:
        if path == "raw":
            return _raw_op(js, prefix, payload)
        if path == "relay":
            return _relay_op(nc, relay_body)
        return _api_op(nc, f"api-{prefix}")

    for path in PATHS:
        await measure(op(path, "warm"), WARMUP_OPS, 1)
    for round_no in range(settings.rounds):
        for concurrency in (1, settings.concurrency):
            prefix = f"r{round_no}-c{concurrency:03d}"
            rates = []
            for path in PATHS:
                result = await measure(
                    op(path, prefix), settings.requests, concurrency, targets.pids
                )
                results.add(path, concurrency, result)
                rates.append(f"{path} {result.rate:,.0f}/s")
            say(f"round {round_no + 1}, {concurrency} in flight: {', '.join(rates)}")
    return results
