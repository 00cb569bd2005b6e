"""``python -m benchmarks [--write]``: run every benchmark in one go and print the figures.

Starts a nats-server (JetStream in a temp dir, random loopback port), ``voiyd-server`` and a bare
relay as separate processes; runs the API benchmark and reads the server's peak RSS; stops the
server and the relay, fills the event log and runs the replay benchmark; then the scheduler's
placement benchmark (``bench_placement``, with a nats-server of its own), Docker tasks, logs and
Sets (``bench_sets``). Every process it starts
is stopped, whatever happened. ``--write`` regenerates the marked section of ``BENCHMARKS.md``.
``--profile DIR`` also samples where voiyd-server's CPU goes (``benchmarks.sampler``) and
cProfiles one replay (profiling slows things down, so it cannot be combined with ``--write``).
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nats

from benchmarks import api_writes, bench_docker, bench_logs, bench_placement, bench_sets, replay
from benchmarks.machine import Machine, load_average
from benchmarks.processes import (
    Child,
    NatsServer,
    read_peak_rss,
    relay_argv,
    voiyd_server_argv,
)
from benchmarks.relay import RELAY_SUBJECT
from benchmarks.report import Report, markdown, text_table, write_section

ROOT = Path(__file__).resolve().parent.parent
PROFILE_LINES = 30
CLIENT_PENDING_BYTES = 64 * 1024 * 1024


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--write", action="store_true", help="regenerate the figures in BENCHMARKS.md")
    p.add_argument("--file", type=Path, default=ROOT / "BENCHMARKS.md", help="file for --write")
    p.add_argument("--requests", type=int, default=1000, help="requests per API round")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    p.add_argument("--rounds", type=int, default=5, help="rounds of each API measurement")
    p.add_argument("--events", type=int, default=100_000, help="events in the replayed log")
    p.add_argument("--replay-rounds", type=int, default=2, help="rounds of each replay")
    p.add_argument("--profile", type=Path, help="write server-samples.txt and replay.prof here")
    p.add_argument(
        "--only",
        choices=("server", "placement", "docker", "logs", "sets"),
        help="run only the server benchmarks (API, replay, RSS) or only one of the others",
    )
    args = p.parse_args(argv)
    if args.write and (args.profile or args.only):
        p.error("--write records a whole run: no --profile (it distorts the figures), no --only")
    for name in ("requests", "concurrency", "rounds", "events", "replay_rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


@dataclass
class Processes:
    nats: NatsServer
    server: Child
    relay: Child


async def _measure(args: argparse.Namespace, procs: Processes, workdir: Path) -> Report:
    started = time.perf_counter()
    machine = Machine.describe()
    write_settings = api_writes.WriteSettings(args.requests, args.concurrency, args.rounds)
    replay_settings = replay.ReplaySettings(
        args.events, args.replay_rounds, args.profile / "replay.prof" if args.profile else None
    )
    nc = await nats.connect(procs.nats.url, name="voiyd-bench", pending_size=CLIENT_PENDING_BYTES)
    try:
        await api_writes.ensure_raw_stream(nc.jetstream())
        await procs.server.wait_answering(nc, "voiyd.api.v1.system.info", {})
        await procs.relay.wait_answering(nc, RELAY_SUBJECT, {})
        assert procs.nats.proc is not None
        pids = {
            "nats-server": procs.nats.proc.pid,
            "voiyd-server": procs.server.pid,
            "relay": procs.relay.pid,
        }
        _say(f"task creates: {args.rounds} rounds of raw, relay and API")
        targets = api_writes.Targets(nc, pids)
        writes = await api_writes.run(targets, write_settings, _say)
        peak_rss = read_peak_rss(procs.server.pid)
        # Nothing else runs from here on: no competition for the CPUs, no appends to the log
        # (voiyd-server's liveness rounds would append node events about the filled nodes).
        procs.relay.stop()
        procs.server.stop()
        _say(f"filling the event log to {args.events:,} events")
        filled = await replay.prepare(nc, replay_settings)
        _say(f"replay: {args.replay_rounds} rounds of raw read and projection replay")
        await replay.measure(nc, workdir, replay_settings, filled, _say)
    finally:
        await nc.close()
    return Report(
        machine=machine,
        writes=writes,
        write_settings=write_settings,
        replay=filled,
        replay_settings=replay_settings,
        server_peak_rss=peak_rss,
        load_after=load_average(),
        total_s=time.perf_counter() - started,
    )


def _run(args: argparse.Namespace) -> Report:
    with tempfile.TemporaryDirectory(prefix="voiyd-bench-") as tmp:
        workdir = Path(tmp)
        procs = Processes(
            NatsServer(workdir / "nats"),
            Child("voiyd-server", workdir / "voiyd-server.log"),
            Child("relay", workdir / "relay.log"),
        )
        profile_to = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile_to = args.profile / "server-samples.txt"
        try:
            procs.nats.start()
            procs.server.start(voiyd_server_argv(procs.nats.url, workdir / "server", profile_to))
            procs.relay.start(relay_argv(procs.nats.url))
            return asyncio.run(_measure(args, procs, workdir))
        except BaseException:
            for child in (procs.server, procs.relay):
                if tail := child.log_tail():
                    _say(f"{child.name} log tail:\n{tail}")
            raise
        finally:
            procs.relay.stop()
            procs.server.stop()
            procs.nats.stop()


def _print_profiles(directory: Path) -> None:
    samples = directory / "server-samples.txt"
    if samples.exists():
        print(f"\n== {samples} (voiyd-server, sampled) ==")
        print("\n".join(samples.read_text().splitlines()[: PROFILE_LINES + 3]))
    replay_prof = directory / "replay.prof"
    if replay_prof.exists():
        print(f"\n== {replay_prof} (one replay, cProfile, by cumulative time) ==")
        stats = pstats.Stats(str(replay_prof), stream=sys.stdout)
        stats.sort_stats("cumtime").print_stats(PROFILE_LINES)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    report = _run(args) if args.only in (None, "server") else None
    placement = None
    if args.only in (None, "placement"):
        _say("scheduler placement (its own nats-server)")
        placement = bench_placement.run(say=_say)
    docker: list[tuple[str, str, str]] = []
    if args.only in (None, "docker"):
        _say("docker tasks: submit to running and agent memory (needs a Docker engine)")
        docker = bench_docker.rows(bench_docker.run(say=_say))
    logs: list[tuple[str, str, str]] = []
    if args.only in (None, "logs"):
        _say("logs: container -> agent -> relay -> following client, beside raw publishing")
        logs = bench_logs.rows(bench_logs.run(say=_say))
    sets: list[tuple[str, str, str]] = []
    if args.only in (None, "sets"):
        _say("sets: creation, controller pass and a Docker rolling update, beside baselines")
        sets = bench_sets.rows(bench_sets.run(say=_say))
    print(text_table(report, placement, docker, logs, sets))
    if args.profile:
        _print_profiles(args.profile)
    if args.write and report is not None:
        write_section(args.file, markdown(report, placement, docker, logs, sets))
        _say(f"wrote the figures into {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
