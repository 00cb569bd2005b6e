"""Figures -> tables for the terminal and a generated section of ``BENCHMARKS.md``.

Every ratio compares voiyd with a raw NATS baseline measured in the same run, round by round
(the median of the per-round ratios), because these machines are shared and noisy: an absolute
figure alone says little. The section between the markers is regenerated, never hand-typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import bench_placement
from benchmarks.api_writes import PATHS, WARMUP_OPS, WriteResults, WriteSettings
from benchmarks.machine import Machine
from benchmarks.replay import ReplayResults, ReplaySettings
from benchmarks.timing import Throughput, median, median_round, spread

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
API_TARGET_X = 3.0
"""API creates/s at most this many times slower than raw ``js.publish`` (the issue's target)."""
REPLAY_TARGET = 0.25
"""Projection replay at least this fraction of the raw ordered-consumer read rate."""
MIB = 1024**2
_SERVERS = {"raw": "", "relay": "relay", "api": "voiyd-server"}


@dataclass(frozen=True)
class Report:
    machine: Machine
    writes: WriteResults
    write_settings: WriteSettings
    replay: ReplayResults
    replay_settings: ReplaySettings
    server_peak_rss: int
    """voiyd-server's VmHWM in bytes after the API runs."""
    load_after: str
    total_s: float


@dataclass(frozen=True)
class Comparison:
    name: str
    voiyd: str
    baseline: str
    ratio_text: str
    target_text: str
    met: bool


def _ratio(top: Sequence[Throughput], bottom: Sequence[Throughput]) -> float:
    """Median over rounds of ``bottom.rate / top.rate`` (how many times slower ``top`` is)."""
    return median([b.rate / t.rate for t, b in zip(top, bottom, strict=True)])


def _figure(rounds: Sequence[Throughput], unit: str, latencies: bool) -> str:
    mid = median_round(rounds)
    text = f"{mid.rate:,.0f}{unit}"
    if latencies:
        text += f", p50 {mid.latency_ms(50):.2f} ms, p99 {mid.latency_ms(99):.2f} ms"
    else:
        text += f" ({mid.seconds:.2f} s)"
    return text


def _in_flight(concurrency: int) -> str:
    return "sequential (1 in flight)" if concurrency == 1 else f"{concurrency} in flight"


def _api(report: Report, concurrency: int) -> Comparison:
    api = report.writes.rounds[("api", concurrency)]
    raw = report.writes.rounds[("raw", concurrency)]
    slower = _ratio(api, raw)
    return Comparison(
        name=f"task create, {_in_flight(concurrency)}",
        voiyd=_figure(api, "/s", latencies=True),
        baseline=_figure(raw, "/s", latencies=True),
        ratio_text=f"API {slower:.1f}x slower",
        target_text=f"<= {API_TARGET_X:g}x",
        met=slower <= API_TARGET_X,
    )


def _replay(report: Report) -> Comparison:
    rep, raw = report.replay.replay, report.replay.raw
    fraction = 1 / _ratio(rep, raw)
    return Comparison(
        name=f"projection replay, {report.replay.events:,} events",
        voiyd=_figure(rep, " ev/s", latencies=False),
        baseline=_figure(raw, " msg/s", latencies=False),
        ratio_text=f"{fraction:.2f} of raw (1/{1 / fraction:.1f})",
        target_text=f">= {REPLAY_TARGET:g} of raw",
        met=fraction >= REPLAY_TARGET,
    )


def comparisons(report: Report) -> list[Comparison]:
    c = report.write_settings.concurrency
    return [_api(report, 1), _api(report, c), _replay(report)]


def _cpu_cell(rounds: Sequence[Throughput], process: str) -> str:
    if not process:
        return "-"
    values = [v for r in rounds if (v := r.cpu_us_per_op(process)) is not None]
    return f"{median(values):,.0f}" if values else "-"


def breakdown_rows(report: Report) -> list[tuple[str, ...]]:
    """Per path and concurrency: rate, latency, slowdown against raw, CPU per operation."""
    w = report.writes
    rows: list[tuple[str, ...]] = []
    for concurrency in (1, report.write_settings.concurrency):
        raw = w.rounds[("raw", concurrency)]
        for path in PATHS:
            rounds = w.rounds[(path, concurrency)]
            low, high = spread(rounds)
            rows.append(
                (
                    f"{path}, {_in_flight(concurrency)}",
                    _figure(rounds, "/s", latencies=True),
                    f"{low:,.0f}-{high:,.0f}",
                    "1.0x" if path == "raw" else f"{_ratio(rounds, raw):.1f}x",
                    _cpu_cell(rounds, "client"),
                    _cpu_cell(rounds, "nats-server"),
                    _cpu_cell(rounds, _SERVERS[path]),
                )
            )
    return rows


BREAKDOWN_HEADER = (
    "path",
    "median round",
    "rounds (/s)",
    "vs raw",
    "client CPU us/op",
    "nats-server CPU us/op",
    "relay or voiyd-server CPU us/op",
)


def verdicts(report: Report) -> list[str]:
    """One line per target: met or missed, and for the API how the slowdown splits in two."""
    out = []
    for concurrency in (1, report.write_settings.concurrency):
        rounds = report.writes.rounds
        api, relay, raw = (rounds[(p, concurrency)] for p in ("api", "relay", "raw"))
        total, hops, own = _ratio(api, raw), _ratio(relay, raw), _ratio(api, relay)
        state = "met" if total <= API_TARGET_X else "missed"
        out.append(
            f"Creates, {_in_flight(concurrency)}: target {state} ({total:.1f}x raw, target "
            f"<= {API_TARGET_X:g}x). The bare relay, which takes the same hops and does nothing "
            f"else, is {hops:.1f}x raw; voiyd's own work makes the API {own:.1f}x the relay."
        )
    rep = _replay(report)
    state = "met" if rep.met else "missed"
    out.append(f"Replay: target {state}: {rep.ratio_text}, target {rep.target_text}.")
    return out


def _details(report: Report) -> list[str]:
    w, ws, r = report.writes, report.write_settings, report.replay
    return [
        *verdicts(report),
        f"API: {ws.rounds} rounds of {ws.requests:,} requests per path and concurrency, the "
        "paths interleaved; a figure is the median round, a ratio the median of the per-round "
        "ratios.",
        f"raw = `js.publish` of {w.event_bytes} B (the size of the task.created event the API "
        "appends) to its own file stream, one subject per task; relay = the API's hops "
        "(client -> process -> JetStream -> process -> client) through `benchmarks/relay.py`, "
        f"which does nothing but publish and reply; api = `task.create` ({w.request_bytes} B "
        "request) served by voiyd-server.",
        f"Replay: {r.events:,} events, {r.stream_bytes / MIB:.1f} MiB in `VOIYD_EVENTS` "
        f"({r.filled:,} filled in {r.fill_s:.1f} s: nodes, then waves of 500 tasks created, half "
        "of each wave scheduled, a quarter started; the rest are the API runs' creates); "
        f"{report.replay_settings.rounds} rounds, replay rounds {_span(r.replay)} ev/s, raw read "
        f"rounds {_span(r.raw)} msg/s. Raw = an ordered push consumer that receives and counts; "
        "replay = `ProjectionFollower` + `ProjectionStore` on an empty SQLite file, timed until "
        "it has applied the last sequence.",
        f"Load average before / after: {report.machine.load_before} / {report.load_after}; "
        f"the API and replay benchmarks took {report.total_s:.0f} s.",
    ]


def _span(rounds: Sequence[Throughput]) -> str:
    low, high = spread(rounds)
    return f"{low:,.0f}-{high:,.0f}"


def _memory_row(report: Report) -> tuple[str, ...]:
    ws = report.write_settings
    creates = (2 * ws.rounds * ws.requests) + WARMUP_OPS
    return (
        "voiyd-server peak RSS (VmHWM)",
        f"{report.server_peak_rss / MIB:.0f} MiB after {creates:,} creates",
        "",
        "",
        "",
        "",
    )


def _main_rows(report: Report) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (c.name, c.voiyd, c.baseline, c.ratio_text, c.target_text, "yes" if c.met else "NO")
        for c in comparisons(report)
    ]
    return [*rows, _memory_row(report)]


MAIN_HEADER = ("measurement", "voiyd", "raw baseline (same run)", "ratio", "target", "met")


def _text(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]


def _md(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


PLACEMENT_HEADER = ("scheduler placement", "figure", "target")
DOCKER_HEADER = ("docker tasks (submit to running, agent memory)", "figure", "target")
LOGS_HEADER = ("logs end to end", "figure", "target")
SETS_HEADER = ("sets", "figure", "target")
Rows = Sequence[tuple[str, str, str]]


def text_table(
    report: Report | None,
    placement: bench_placement.PlacementResults | None,
    docker: Rows = (),
    logs: Rows = (),
    sets: Rows = (),
) -> str:
    lines: list[str] = []
    if report is not None:
        lines += [
            *_text(MAIN_HEADER, _main_rows(report)),
            "",
            "Where the time goes (API creates):",
            *_text(BREAKDOWN_HEADER, breakdown_rows(report)),
            "",
            *_details(report),
        ]
    if placement is not None:
        lines += ["", *_text(PLACEMENT_HEADER, bench_placement.rows(placement))]
    if docker:
        lines += ["", *_text(DOCKER_HEADER, docker)]
    if logs:
        lines += ["", *_text(LOGS_HEADER, logs)]
    if sets:
        lines += ["", *_text(SETS_HEADER, sets)]
    return "\n".join(lines)


def markdown(
    report: Report,
    placement: bench_placement.PlacementResults | None,
    docker: Rows = (),
    logs: Rows = (),
    sets: Rows = (),
) -> str:
    m = report.machine
    main = [
        (name, voiyd, base, ratio, target, "yes" if met == "yes" else ("**no**" if met else ""))
        for name, voiyd, base, ratio, target, met in _main_rows(report)
    ]
    lines = [
        BEGIN,
        f"_Generated by `python -m benchmarks --write` on {m.date}; do not edit by hand._",
        "",
        *_md(("machine", ""), m.rows()),
        "",
        *_md(MAIN_HEADER, main),
        "",
        "Where the time goes in a create (median round; CPU per operation from `/proc`):",
        "",
        *_md(BREAKDOWN_HEADER, breakdown_rows(report)),
        "",
        *(f"- {line}" for line in _details(report)),
    ]
    if placement is not None:
        rows = [(n.strip(), f, t) for n, f, t in bench_placement.rows(placement)]
        lines += [
            "",
            "Scheduler placement (`benchmarks/bench_placement.py`, its own nats-server, "
            "run after the above):",
            "",
            *_md(PLACEMENT_HEADER, rows),
        ]
    if docker:
        lines += [
            "",
            "Docker tasks (`benchmarks/bench_docker.py`: server, scheduler and a docker agent as "
            "processes, beside direct aiodocker starts in the same run):",
            "",
            *_md(DOCKER_HEADER, [(n.strip(), f, t) for n, f, t in docker]),
        ]
    if logs:
        lines += [
            "",
            "Logs (`benchmarks/bench_logs.py`: an exec task's output through voiyd-node, "
            "VOIYD_LOGS and voiyd-logrelay to `voiydctl logs -f`, beside raw publishing):",
            "",
            *_md(LOGS_HEADER, [(n.strip(), f, t) for n, f, t in logs]),
        ]
    if sets:
        lines += [
            "",
            "Sets (`benchmarks/bench_sets.py`: the scheduler's loop creating and placing a Set's "
            "members beside the same tasks appended directly, one controller pass beside `plan()`, "
            "a Docker rolling update through server, scheduler and agent beside aiodocker):",
            "",
            *_md(SETS_HEADER, [(n.strip(), f, t) for n, f, t in sets]),
        ]
    return "\n".join([*lines, END])


def write_section(path: Path, section: str) -> None:
    """Replace the text between the markers in ``path`` (appending the markers if missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = text.find(BEGIN), text.find(END)
    if start == -1 or end == -1 or end < start:
        new = text.rstrip("\n") + "\n\n" + section + "\n"
    else:
        new = text[:start] + section + text[end + len(END) :]
    path.write_text(new)
