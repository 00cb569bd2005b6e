"""``voiyd-server``: the entry point. Reads options (and ``VOIYD_*`` variables), runs the server."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import rich_click as click

from voiyd import logs
from voiyd.bus.connect import NatsOptions
from voiyd.bus.options import nats_options
from voiyd.bus.streams import LogLimitOptions, log_limit_options
from voiyd.server.runner import Server, ServerSettings


async def _run(settings: ServerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Server(settings).run(stop)


def _limits(max_age: str | None, max_bytes: str | None, max_lines: int | None) -> LogLimitOptions:
    try:
        return log_limit_options(max_age, max_bytes, max_lines)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.command(context_settings={"auto_envvar_prefix": "VOIYD_SERVER"})
@nats_options
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("voiyd-server-data"),
    show_default=True,
    help="Where the SQLite projection lives.",
)
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics here.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--rebuild", is_flag=True, help="Replay the whole event log into a fresh projection.")
@click.option(
    "--replicas",
    type=int,
    default=1,
    show_default=True,
    help="Stream replicas when creating streams (3 on a NATS cluster).",
)
@click.option(
    "--not-ready-after",
    type=float,
    default=6.0,
    show_default=True,
    help="Seconds without a heartbeat before a node is not-ready.",
)
@click.option(
    "--lost-after",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds without a heartbeat before a node is lost and its tasks move.",
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
@click.option("--log-level", default="INFO", show_default=True)
def main(
    nats: NatsOptions,
    data_dir: Path,
    metrics_port: int | None,
    metrics_host: str,
    rebuild: bool,
    replicas: int,
    not_ready_after: float,
    lost_after: float,
    logs_max_age: str | None,
    logs_max_bytes: str | None,
    logs_max_lines_per_task: int | None,
    log_level: str,
) -> None:
    """Run the voiyd API server: decide, append to the event log, project into SQLite."""
    log_limits = _limits(logs_max_age, logs_max_bytes, logs_max_lines_per_task)
    logs.setup("voiyd-server", log_level)
    settings = ServerSettings(
        nats=nats,
        data_dir=data_dir,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        rebuild=rebuild,
        replicas=replicas,
        not_ready_after_s=not_ready_after,
        lost_after_s=lost_after,
        log_limits=log_limits,
    )
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
