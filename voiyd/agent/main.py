"""``voiyd-node``: the agent's entry point. Picks its runtimes, then runs the agent.

After an upgrade (``voiyd.agent.upgrade``) the agent has stopped everything but its tasks; this
module then re-executes it (``os.execv``: same pid, same arguments, the new code) as
``python -m voiyd.agent``, and the new agent adopts the running tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import signal
import socket
import sys
from pathlib import Path

import rich_click as click
from prometheus_client import start_http_server

from voiyd import logs
from voiyd.agent.logship import DEFAULT_BUFFER
from voiyd.agent.runner import Agent, AgentSettings
from voiyd.agent.runtimes.docker import DockerRuntime
from voiyd.agent.runtimes.exec import ExecRuntime
from voiyd.agent.runtimes.protocol import Runtime
from voiyd.agent.sysinfo import node_capacity
from voiyd.api.labels import label_key_problem, label_value_problem
from voiyd.api.views import NodeCapacity
from voiyd.bus.connect import NatsOptions
from voiyd.bus.options import nats_options
from voiyd.ids import name_problem

log = logging.getLogger(__name__)


def default_name() -> str:
    host = socket.gethostname().split(".")[0].lower()
    return re.sub(r"[^a-z0-9-]", "-", host).strip("-")[:63] or "node"


async def pick_runtimes(wanted: tuple[str, ...], data_dir: Path) -> dict[str, Runtime]:
    """The requested runtimes, or with ``auto``: Docker if an engine answers, and exec."""
    out: dict[str, Runtime] = {}
    auto = not wanted or "auto" in wanted
    if auto or "docker" in wanted:
        docker = DockerRuntime()
        if await docker.available():
            out["docker"] = docker
        else:
            await docker.close()
            if not auto:
                raise click.ClickException("runtime docker: no Docker engine answers")
            log.info("no Docker engine answers; running without the docker runtime")
    if auto or "exec" in wanted:
        out["exec"] = ExecRuntime(data_dir / "exec")
    return out


async def _run(settings: AgentSettings, wanted: tuple[str, ...]) -> bool:
    """Run the agent until a signal (False) or an installed upgrade (True: restart it)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtimes = await pick_runtimes(wanted, settings.data_dir)
    agent = Agent(settings, runtimes)
    try:
        await agent.run(stop)
    finally:
        for runtime in runtimes.values():
            await runtime.close()
    return agent.restart_requested


def restart(args: list[str]) -> None:
    """Become a fresh agent: the same pid and arguments, the code now installed."""
    argv = [sys.executable, "-m", "voiyd.agent", *args]
    log.info("re-executing: %s", " ".join(argv))
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def _labels(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--label")
        problem = label_key_problem(key) or label_value_problem(value)
        if problem:
            raise click.BadParameter(f"{pair!r}: {problem}", param_hint="--label")
        out[key] = value
    return out


@click.command(context_settings={"auto_envvar_prefix": "VOIYD_NODE"})
@nats_options
@click.option("--name", default=default_name, show_default="the hostname", help="Node name.")
@click.option("--label", "labels", multiple=True, help="Node label key=value (repeatable).")
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(["auto", "docker", "exec"]),
    help="Runtimes (default: auto).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("voiyd-node-data"),
    show_default=True,
)
@click.option("--cpus", type=float, default=None, help="Capacity to offer (default: all CPUs).")
@click.option("--memory", type=int, default=None, help="Memory to offer in bytes (default: all).")
@click.option("--heartbeat", type=float, default=2.0, show_default=True, help="Seconds.")
@click.option(
    "--log-buffer",
    type=click.IntRange(min=64 * 1024),
    default=DEFAULT_BUFFER,
    show_default=True,
    help="Bytes of task log lines held while NATS does not acknowledge them; beyond, "
    "new lines are dropped and counted.",
)
@click.option("--metrics-port", type=int, default=None)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option("--log-level", default="INFO", show_default=True)
def main(
    name: str,
    labels: tuple[str, ...],
    runtimes: tuple[str, ...],
    data_dir: Path,
    nats: NatsOptions,
    cpus: float | None,
    memory: int | None,
    heartbeat: float,
    log_buffer: int,
    metrics_port: int | None,
    metrics_host: str,
    log_level: str,
) -> None:
    """Run the voiyd node agent: join, run assigned tasks, report what happens."""
    logs.setup(f"voiyd-node[{name}]", log_level)
    if problem := name_problem(name):
        raise click.BadParameter(problem, param_hint="--name")
    capacity = None
    if cpus is not None or memory is not None:
        detected = node_capacity()
        capacity = NodeCapacity(cpus=cpus or detected.cpus, memory=memory or detected.memory)
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host)
    settings = AgentSettings(
        name=name,
        # Replies to this node arrive under its own inbox prefix, so its credentials can be
        # limited to subscribing there (and nowhere else).
        nats=dataclasses.replace(nats, inbox_prefix=f"_INBOX.{name}"),
        labels=_labels(labels),
        data_dir=data_dir,
        heartbeat_s=heartbeat,
        capacity=capacity,
        log_buffer=log_buffer,
    )
    if asyncio.run(_run(settings, runtimes)):
        restart(sys.argv[1:])


if __name__ == "__main__":
    main()
