"""``voiyd-scheduler``: the entry point. Reads options (and ``VOIYD_*`` variables), runs it."""

from __future__ import annotations

import asyncio
import signal

import rich_click as click

from voiyd import logs
from voiyd.bus.connect import NatsOptions
from voiyd.bus.options import nats_options
from voiyd.scheduler.runner import Scheduler, SchedulerSettings


async def _run(settings: SchedulerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Scheduler(settings).run(stop)


@click.command(context_settings={"auto_envvar_prefix": "VOIYD_SCHEDULER"})
@nats_options
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics here.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help=(
        "Seconds between rounds when the log is quiet; a round re-plans when the view changed "
        "or an append was not acknowledged."
    ),
)
@click.option(
    "--replicas",
    type=int,
    default=1,
    show_default=True,
    help="Stream replicas when creating streams (3 on a NATS cluster).",
)
@click.option("--log-level", default="INFO", show_default=True)
def main(
    nats: NatsOptions,
    metrics_port: int | None,
    metrics_host: str,
    interval_s: float,
    replicas: int,
    log_level: str,
) -> None:
    """Run the voiyd scheduler: follow the event log and place pending tasks on nodes."""
    logs.setup("voiyd-scheduler", log_level)
    settings = SchedulerSettings(
        nats=nats,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        interval_s=interval_s,
        replicas=replicas,
    )
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
