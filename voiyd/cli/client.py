"""voiydctl's connection: connect once per command, call the API, read its own writes.

A ``Session`` remembers the highest revision its writes produced and passes it as
``min_revision`` to every later query, so a command never reads a view older than its own write.
Connection failures become ``UnavailableError`` naming the URL and what to do about it.
``run`` is the one ``asyncio.run`` of the CLI; with ``follow`` SIGINT/SIGTERM end it quietly.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import BaseModel, ValidationError

from voiyd.api.requests import WriteReply
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.bus.reader import RawEvent, read_events
from voiyd.bus.rpc import call
from voiyd.cli.output import Output
from voiyd.errors import InternalError, UnavailableError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
CLIENT_NAME = "voiydctl"


@dataclass(frozen=True)
class CliSettings:
    """Everything a command needs to reach the cluster, resolved from flags, env and context."""

    nats: NatsOptions
    source: str
    """Where ``nats`` came from: ``context NAME`` or the ``--server`` flag."""
    timeout: float = 5.0
    actor: str = CLIENT_NAME


def parse_reply(model: type[M], data: Mapping[str, Any]) -> M:
    """A reply as its model; a shape this client does not know is an internal error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InternalError(f"unexpected reply from the server ({model.__name__}): {exc}") from exc


class Session:
    def __init__(self, settings: CliSettings, out: Output) -> None:
        self.settings = settings
        self.out = out
        self.min_revision = 0
        self.quiet = False
        """No spinner (set while following: rows are printing, a spinner would flicker)."""
        self._nc: Client | None = None

    async def __aenter__(self) -> Session:
        servers = ", ".join(self.settings.nats.servers)
        async with self.out.spinner(f"connecting to {servers}"):
            try:
                self._nc = await connect(
                    self.settings.nats,
                    CLIENT_NAME,
                    reconnect=False,
                    connect_timeout=self.settings.timeout,
                )
            except UnavailableError as exc:
                raise UnavailableError(
                    f"cannot connect to NATS at {servers} ({self.settings.source}): "
                    "start a local cluster with `voiyd up`, or check the context "
                    "(`voiydctl config view`, `--server`)"
                ) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = None

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise RuntimeError("session is not connected")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream(timeout=self.settings.timeout)

    async def call(self, kind: str, verb: str, body: Mapping[str, Any]) -> dict[str, Any]:
        subject = subjects.api(kind, verb)
        if self.quiet:
            return await call(self.nc, subject, body, timeout=self.settings.timeout)
        async with self.out.spinner(f"{kind} {verb}"):
            return await call(self.nc, subject, body, timeout=self.settings.timeout)

    async def write(self, kind: str, verb: str, body: Mapping[str, Any]) -> WriteReply:
        """A command; later queries of this session will see its result."""
        reply = parse_reply(
            WriteReply, await self.call(kind, verb, {**body, "actor": self.settings.actor})
        )
        if not body.get("dry_run"):
            self.min_revision = max(self.min_revision, reply.revision)
        return reply

    async def query(
        self, kind: str, verb: str, body: Mapping[str, Any], *, min_revision: int = 0
    ) -> dict[str, Any]:
        """A query that sees at least this session's writes (and ``min_revision``)."""
        wanted = max(self.min_revision, min_revision)
        return await self.call(kind, verb, {**body, "min_revision": wanted})

    async def read_log(
        self,
        filter_subject: str,
        *,
        start_seq: int | None = None,
        start_time: datetime | None = None,
        follow: bool = False,
    ) -> AsyncIterator[RawEvent]:
        """The event log straight from JetStream (``read_events``), with its errors translated."""
        reader = read_events(
            self.js, filter_subject, start_seq=start_seq, start_time=start_time, follow=follow
        )
        async with aclosing(reader):
            try:
                async for raw in reader:
                    yield raw
            except nats.js.errors.NotFoundError as exc:
                raise UnavailableError(
                    f"the event log (stream {subjects.EVENTS_STREAM}) does not exist on this NATS: "
                    "is voiyd-server running?"
                ) from exc


async def until_signal(work: Awaitable[T]) -> T | None:
    """Await ``work``; SIGINT or SIGTERM ends it quietly (returns None) instead of a traceback."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    signalled = False

    def stop() -> None:
        nonlocal signalled
        signalled = True
        task.cancel()

    # Signal handlers can only be installed in the main thread (tests run the CLI in a worker).
    in_main = threading.current_thread() is threading.main_thread()
    sigs = (signal.SIGINT, signal.SIGTERM) if in_main else ()
    for sig in sigs:
        loop.add_signal_handler(sig, stop)
    try:
        return await work
    except asyncio.CancelledError:
        if not signalled:
            raise
        task.uncancel()
        return None
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)


def run(
    settings: CliSettings,
    out: Output,
    fn: Callable[[Session], Awaitable[T]],
    *,
    follow: bool = False,
) -> T | None:
    """Connect, run ``fn`` with the session, disconnect: the CLI's one event loop."""

    async def main() -> T | None:
        async with Session(settings, out) as session:
            if follow:
                return await until_signal(fn(session))
            return await fn(session)

    return asyncio.run(main())
