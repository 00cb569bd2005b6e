"""Benchmark: task logs end to end, from an exec task through the agent and the log relay to a
following ``voiydctl logs -f``, beside the raw rate of publishing the same batches to JetStream.

Starts its own nats-server and the daemons as processes (voiyd-server, voiyd-scheduler, a
voiyd-node with the exec runtime and a 256 MiB ``--log-buffer``, so that a burst of half a
million lines is shipped whole rather than partly dropped, voiyd-logrelay), then:

- **throughput**: a task prints N numbered lines at once (``seq``; and a run of 100-byte lines);
  ``voiydctl logs -f`` follows it; lines/s and MB/s from the first byte to the last at the
  client. The client's output must be exactly what the task printed (nothing lost, nothing
  twice, in order) and the command must exit 0 by itself when the task has exited;
- **raw**: the batches the agent stored, read back and published again, one in flight as the
  agent does, to a stream of the same kind (``js.publish``): the rate JetStream alone allows;
  the ratio raw / end to end says what the agent, relay and client cost on top;
- **the agent alone**: the short run's first batch stored to its last (the storage times);
- **history**: ``voiydctl logs`` (no ``-f``) of the stored task, through the relay: the
  relay and the client alone, process start included;
- **latency**: a task prints a timestamped line every 10 ms; the follower's receive time minus
  the line's own time, p50 and p99 (one host, one clock).

``run()`` returns the figures, ``rows()`` turns them into table rows; ``python -m
benchmarks.bench_logs`` prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgpack
import nats
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from benchmarks.timing import Throughput
from tests.e2e.cluster import kill_exec_tasks
from tests.e2e.procs import (
    DaemonProcess,
    voiyd_logrelay,
    voiyd_node,
    voiyd_scheduler,
    voiyd_server,
)
from tests.natsserver import NatsServer
from voiyd.bus import direct, subjects
from voiyd.bus.rpc import call

TARGET_LINES_S = 50_000.0
LOG_BUFFER = 256 * 1024 * 1024
"""The agent's ``--log-buffer`` here: a burst of half a million lines must not be dropped (with
the default 16 MiB the agent drops what it cannot ship fast enough, by design)."""
_DROPPED = re.compile(r"dropped (\d+) line")
"""End-to-end lines per second to beat (the issue's aim), with nothing lost."""
RAW_STREAM = "BENCH_LOGS"
MB = 1e6
TIMEOUT_S = 600.0
ROOT = Path(__file__).resolve().parent.parent

Say = Callable[[str], None]


@dataclass(frozen=True)
class LogBenchSettings:
    lines: int = 500_000
    wide_lines: int = 200_000
    wide_bytes: int = 100
    latency_lines: int = 500
    latency_interval_s: float = 0.01


@dataclass(frozen=True)
class Flow:
    """One task's output at a following client."""

    lines: int
    bytes: int
    seconds: float
    """From the first byte to the last at the client."""
    exact: bool
    """The client printed exactly what the task did, and exited 0 by itself."""
    dropped: int = 0
    """Lines the agent said it dropped (its log buffer was full)."""

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class LogBenchResult:
    short: Flow
    wide: Flow
    raw_short: Throughput
    """Lines per second publishing the short run's batches to JetStream, one in flight."""
    raw_wide: Throughput
    history: Flow
    latency: Throughput
    batches: int
    """Batches the agent stored for the short run."""
    shipped: Throughput
    """The short run's lines into the stream, first batch stored to last: the agent's pace."""

    @property
    def met(self) -> bool:
        return self.short.rate >= TARGET_LINES_S and self.short.exact and self.wide.exact


def _say(text: str) -> None:
    print(f"[bench logs] {text}", file=sys.stderr, flush=True)


# ---- the cluster --------------------------------------------------------------------------------


class Bench:
    def __init__(self, server: NatsServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.procs: list[DaemonProcess] = []
        self.config = workdir / "voiydctl.yaml"

    def start(self) -> None:
        url, d = self.server.url, self.workdir
        for proc in (
            voiyd_server(url, d / "server"),
            voiyd_scheduler(url, d),
            voiyd_node(
                url, "n1", d / "node-n1", "--runtime", "exec", "--log-buffer", str(LOG_BUFFER)
            ),
            voiyd_logrelay(url, d),
        ):
            self.procs.append(proc.start())

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        kill_exec_tasks(self.workdir)

    async def voiydctl(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "voiyd.cli.main",
            "--server",
            self.server.url,
            *args,
            cwd=ROOT,
            env={**os.environ, "VOIYD_CONFIG": str(self.config)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


async def _create(nc: Client, name: str, args: list[str]) -> None:
    task = {"meta": {"name": name}, "config": {"runtime": "exec", "args": args, "restart": "never"}}
    await call(nc, subjects.api("task", "create"), {"task": task}, timeout=30)


# ---- end to end ---------------------------------------------------------------------------------


async def _follow(bench: Bench, name: str, expected: bytes, lines: int) -> Flow:
    """Follow ``name`` with ``voiydctl logs -f`` until it exits; time first byte to last."""
    proc = await bench.voiydctl("logs", "-f", name)
    assert proc.stdout is not None and proc.stderr is not None
    got = bytearray()
    first = last = 0.0
    while chunk := await proc.stdout.read(1 << 16):
        now = time.perf_counter()
        first = first or now
        last = now
        got += chunk
    stderr = await proc.stderr.read()
    code = await proc.wait()
    if code != 0:
        raise RuntimeError(f"voiydctl logs -f {name} exited {code}: {stderr.decode()[-500:]}")
    dropped = max((int(m) for m in _DROPPED.findall(stderr.decode())), default=0)
    return Flow(lines, len(expected), last - first, bytes(got) == expected, dropped)


async def _throughput(
    bench: Bench, nc: Client, name: str, args: list[str], expected: bytes
) -> Flow:
    await _create(nc, name, ["sh", "-c", "sleep 2; exec " + " ".join(args)])
    return await _follow(bench, name, expected, expected.count(b"\n"))


async def _history(bench: Bench, name: str, expected: bytes) -> Flow:
    started = time.perf_counter()
    proc = await bench.voiydctl("logs", name)
    out, err = await proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"voiydctl logs {name}: {err.decode()[-500:]}")
    return Flow(expected.count(b"\n"), len(expected), seconds, out == expected)


async def _latency(bench: Bench, nc: Client, settings: LogBenchSettings) -> Throughput:
    code = (
        "import time\n"
        f"for i in range({settings.latency_lines}):\n"
        "    print(f'{time.time():.6f} {i}', flush=True)\n"
        f"    time.sleep({settings.latency_interval_s})\n"
    )
    await _create(nc, "ticks", ["sh", "-c", f'sleep 2; exec {sys.executable} -c "{code}"'])
    proc = await bench.voiydctl("logs", "-f", "ticks")
    assert proc.stdout is not None
    latencies: list[float] = []
    started = time.perf_counter()
    while line := await proc.stdout.readline():
        latencies.append(time.time() - float(line.split()[0]))
    await proc.wait()
    return Throughput(len(latencies), time.perf_counter() - started, tuple(latencies))


# ---- the raw baseline ---------------------------------------------------------------------------


async def _stored_batches(nc: Client, task: str) -> list[direct.Stored]:
    out: list[direct.Stored] = []
    after = 0
    while True:
        got = await direct.get_batch(
            nc, subjects.LOGS_STREAM, subjects.logs_filter(task), after_seq=after, batch=1024
        )
        out += got.messages
        if not got.messages or got.pending == 0:
            return out
        after = got.messages[-1].seq


def _shipped(batches: list[direct.Stored]) -> Throughput:
    """Lines per second into the stream, first batch stored to last (the agent's pace)."""
    lines = sum(len(msgpack.unpackb(b.data)["lines"]) for b in batches)
    return Throughput(lines, (batches[-1].time - batches[0].time).total_seconds())


async def _raw(nc: Client, batches: list[direct.Stored], subject: str) -> Throughput:
    """Publish ``batches`` to ``RAW_STREAM`` one at a time (the agent keeps one in flight)."""
    js = nc.jetstream()
    lines = sum(len(msgpack.unpackb(b.data)["lines"]) for b in batches)
    started = time.perf_counter()
    for i, b in enumerate(batches):
        await js.publish(
            subject, b.data, stream=RAW_STREAM, headers={"Nats-Msg-Id": f"{subject}.{i}"}
        )
    return Throughput(lines, time.perf_counter() - started)


async def _raw_stream(nc: Client) -> None:
    await nc.jetstream().add_stream(
        StreamConfig(
            name=RAW_STREAM,
            subjects=["bench.logs.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=120,
            allow_direct=True,
        )
    )


# ---- the run ------------------------------------------------------------------------------------


def _expected(settings: LogBenchSettings) -> tuple[list[str], bytes, list[str], bytes]:
    short_args = ["seq", "1", str(settings.lines)]
    short = "".join(f"{i}\n" for i in range(1, settings.lines + 1)).encode()
    width = settings.wide_bytes
    wide_args = ["seq", "-f", f"%0{width}.0f", "1", str(settings.wide_lines)]
    wide = "".join(f"{i:0{width}d}\n" for i in range(1, settings.wide_lines + 1)).encode()
    return short_args, short, wide_args, wide


async def measure(bench: Bench, nc: Client, settings: LogBenchSettings, say: Say) -> LogBenchResult:
    short_args, short_out, wide_args, wide_out = _expected(settings)
    say(f"{settings.lines:,} short lines through agent, relay and voiydctl logs -f")
    short = await _throughput(bench, nc, "short", short_args, short_out)
    say(f"{settings.wide_lines:,} lines of {settings.wide_bytes} bytes")
    wide = await _throughput(bench, nc, "wide", wide_args, wide_out)
    say("history read of the short run (voiydctl logs, no -f)")
    history = await _history(bench, "short", short_out)
    say("raw: the same batches published to JetStream, one in flight")
    await _raw_stream(nc)
    short_batches = await _stored_batches(nc, "short")
    raw_short = await _raw(nc, short_batches, "bench.logs.short")
    raw_wide = await _raw(nc, await _stored_batches(nc, "wide"), "bench.logs.wide")
    say(f"follow latency over {settings.latency_lines} timestamped lines")
    latency = await _latency(bench, nc, settings)
    return LogBenchResult(
        short,
        wide,
        raw_short,
        raw_wide,
        history,
        latency,
        len(short_batches),
        _shipped(short_batches),
    )


async def _run_async(bench: Bench, settings: LogBenchSettings, say: Say) -> LogBenchResult:
    nc = await nats.connect(bench.server.url, name="voiyd-bench-logs")
    try:
        async with asyncio.timeout(TIMEOUT_S):
            return await measure(bench, nc, settings, say)
    finally:
        await nc.close()


def run(settings: LogBenchSettings | None = None, say: Say = _say) -> LogBenchResult:
    """Start a nats-server and the daemons of its own, measure, stop them (whatever happened)."""
    settings = settings or LogBenchSettings()
    with tempfile.TemporaryDirectory(prefix="voiyd-bench-logs-") as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        bench = Bench(server, Path(tmp))
        try:
            say("starting voiyd-server, voiyd-scheduler, voiyd-node (exec), voiyd-logrelay")
            bench.start()
            return asyncio.run(_run_async(bench, settings, say))
        finally:
            bench.stop()
            server.stop()


def _flow(f: Flow) -> str:
    exact = "" if f.exact else f", NOT EXACT: {f.dropped:,} dropped by the agent"
    return f"{f.rate:,.0f} lines/s, {f.mb_s:.1f} MB/s ({f.seconds:.2f} s{exact})"


def rows(r: LogBenchResult) -> list[tuple[str, str, str]]:
    """``(measurement, figure, target)`` rows for a report table."""
    verdict = "met" if r.met else "NOT met"
    short_ratio = r.raw_short.rate / r.short.rate
    wide_ratio = r.raw_wide.rate / r.wide.rate
    return [
        (
            f"logs end to end, {r.short.lines:,} short lines (exec -> agent -> relay -> logs -f)",
            _flow(r.short),
            f">= {TARGET_LINES_S:,.0f} lines/s, exact: {verdict}",
        ),
        (
            "  raw js.publish of the same batches, one in flight",
            f"{r.raw_short.rate:,.0f} lines/s ({r.batches:,} batches); {short_ratio:.1f}x",
            "",
        ),
        (
            "  the agent alone: first batch stored to last",
            f"{r.shipped.rate:,.0f} lines/s ({r.shipped.seconds:.2f} s)",
            "",
        ),
        ("  the same, read back through the relay (logs, no -f)", _flow(r.history), ""),
        (f"logs end to end, {r.wide.lines:,} lines of 100 bytes", _flow(r.wide), ""),
        (
            "  raw js.publish of the same batches",
            f"{r.raw_wide.rate:,.0f} lines/s; {wide_ratio:.1f}x",
            "",
        ),
        (
            "follow latency, task print -> logs -f output",
            f"p50 {r.latency.latency_ms(50):.0f} ms, p99 {r.latency.latency_ms(99):.0f} ms",
            "",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_logs", description=__doc__.split("\n")[0]
    )
    p.add_argument("--lines", type=int, default=500_000)
    p.add_argument("--wide-lines", type=int, default=200_000)
    p.add_argument("--latency-lines", type=int, default=500)
    args = p.parse_args(argv)
    if min(args.lines, args.wide_lines, args.latency_lines) < 1:
        p.error("every figure must be at least 1")
    settings = LogBenchSettings(
        lines=args.lines, wide_lines=args.wide_lines, latency_lines=args.latency_lines
    )
    results = run(settings)
    width = max(len(name) for name, _, _ in rows(results))
    for name, figure, target in rows(results):
        print(f"{name:<{width}}  {figure:<48} {target}".rstrip())
    return 0 if results.met else 1


if __name__ == "__main__":
    sys.exit(main())
