"""``voiyd-logrelay``: the entry point. Reads options (and ``VOIYD_*`` variables), runs it."""

from __future__ import annotations

import asyncio
import signal

import rich_click as click

from voiyd import logs
from voiyd.bus.connect import NatsOptions
from voiyd.bus.options import nats_options
from voiyd.bus.streams import LogLimitOptions, log_limit_options
from voiyd.logrelay.runner import Relay, RelaySettings


async def _run(settings: RelaySettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Relay(settings).run(stop)


def limits(max_age: str | None, max_bytes: str | None, max_lines: int | None) -> LogLimitOptions:
    try:
        return log_limit_options(max_age, max_bytes, max_lines)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.command(context_settings={"auto_envvar_prefix": "VOIYD_LOGRELAY"})
@nats_options
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics here.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option(
    "--replicas",
    type=int,
    default=1,
    show_default=True,
    help="Stream replicas when creating streams (3 on a NATS cluster).",
)
@click.option(
    "--logs-max-age",
    metavar="DURATION",
    envvar="VOIYD_LOGS_MAX_AGE",
    help="Keep log lines this long (e.g. 7d); unset: leave the stream's limit [default 7d].",
)
@click.option(
    "--logs-max-bytes",
    metavar="SIZE",
    envvar="VOIYD_LOGS_MAX_BYTES",
    help="Disk for all task logs (e.g. 1Gi); unset: leave the stream's limit [default 1Gi].",
)
@click.option(
    "--logs-max-lines-per-task",
    type=int,
    metavar="N",
    envvar="VOIYD_LOGS_MAX_LINES_PER_TASK",
    help=(
        "Keep at least the last N lines of each task: the stream keeps its last N batches "
        "(each holds one line or more); unset: leave the stream's limit [default 100000]."
    ),
)
@click.option(
    "--eof-wait",
    "eof_wait_s",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help=(
        "Seconds a follow of an ended task waits, with nothing new stored, for its live "
        "agent's end-of-output mark before it ends without it."
    ),
)
@click.option(
    "--max-inflight",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Requests served at once (a waiting follow holds one for up to 2 s).",
)
@click.option("--log-level", default="INFO", show_default=True)
def main(
    nats: NatsOptions,
    metrics_port: int | None,
    metrics_host: str,
    replicas: int,
    logs_max_age: str | None,
    logs_max_bytes: str | None,
    logs_max_lines_per_task: int | None,
    eof_wait_s: float,
    max_inflight: int,
    log_level: str,
) -> None:
    """Run the voiyd log relay: serve task logs (history, tail, follow) to voiydctl and others."""
    log_limits = limits(logs_max_age, logs_max_bytes, logs_max_lines_per_task)
    logs.setup("voiyd-logrelay", log_level)
    settings = RelaySettings(
        nats=nats,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        replicas=replicas,
        log_limits=log_limits,
        eof_wait_s=eof_wait_s,
        max_inflight=max_inflight,
    )
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
