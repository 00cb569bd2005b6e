"""Reading a container's logs from the Docker engine as raw bytes, stdout and stderr apart.

aiodocker's ``container.log`` decodes the output as text and drops which stream a frame came
from, so the Docker runtime asks the engine itself (``GET /containers/<id>/logs`` with
``follow``, ``timestamps``, both streams) and demultiplexes the answer here: frames of an 8-byte
header (stream, 3 zero bytes, big-endian length) and a payload ``<RFC 3339 nano time> <bytes>``.
The engine splits a line longer than 16 KiB into several frames, all but the last without a
newline; ``LineAssembler`` joins them again. Times are the engine's (when its log driver received
the line), truncated to microseconds. Containers voiyd creates have no TTY, so the answer is
always multiplexed. The engine can end a follow of a container that exits at that moment
before its last lines: ``container_logs`` then reads the log once more without following.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from voiyd.agent.runtimes.lines import LineAssembler, Seen
from voiyd.agent.runtimes.protocol import LogStream, Observed, RawLine, RuntimeUnavailable

_HEADER = 8
_READ = 256 * 1024
_STREAMS: dict[int, LogStream] = {1: "stdout", 2: "stderr"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REREAD_MARGIN = timedelta(seconds=1)
"""Reading a log again starts this long before the last line seen (the two streams' times may
interleave slightly out of order); lines seen already are skipped."""
Calling = Callable[[str], AbstractAsyncContextManager[None]]
"""The runtime's deadline-and-translation wrapper for one conversation with the engine."""
Inspect = Callable[[str], Awaitable[Observed | None]]
_ONE_US = timedelta(microseconds=1)


def log_params(since: datetime | None, follow: bool = True) -> dict[str, str]:
    """The query of the logs request (``since``: seconds.microseconds, the engine's format)."""
    params = {"stdout": "1", "stderr": "1", "follow": "1" if follow else "0", "timestamps": "1"}
    if since is not None:
        seconds, micros = divmod((since - _EPOCH) // _ONE_US, 1_000_000)  # exact, no float
        params["since"] = f"{seconds}.{micros:06d}"
    return params


class FrameSplitter:
    """Cuts the multiplexed byte stream into ``(stream, payload)`` frames, whatever the chunks."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[LogStream | None, bytes]]:
        self._buf += chunk
        out: list[tuple[LogStream | None, bytes]] = []
        pos, buf = 0, self._buf
        while len(buf) - pos >= _HEADER:
            size = int.from_bytes(buf[pos + 4 : pos + _HEADER], "big")
            end = pos + _HEADER + size
            if len(buf) < end:
                break
            out.append((_STREAMS.get(buf[pos]), bytes(buf[pos + _HEADER : end])))
            pos = end
        del buf[:pos]
        return out

    @property
    def leftover(self) -> int:
        """Bytes of an incomplete frame still waiting (non-zero at the end: a truncated answer)."""
        return len(self._buf)


def split_timestamp(payload: bytes) -> tuple[datetime | None, bytes]:
    """``(time, bytes)`` of a frame payload ``<time> <bytes>``; (None, payload) if it has none."""
    head, sep, rest = payload.partition(b" ")
    if not sep:
        return None, payload
    try:
        return datetime.fromisoformat(head.decode("ascii")), rest
    except (UnicodeDecodeError, ValueError):
        return None, payload


class DockerLogDecoder:
    """Frames in, ``RawLine``s out: one ``LineAssembler`` per stream."""

    def __init__(self) -> None:
        self._frames = FrameSplitter()
        self._streams = {s: LineAssembler(s) for s in _STREAMS.values()}
        self._last: datetime | None = None

    def feed(self, chunk: bytes) -> list[RawLine]:
        out: list[RawLine] = []
        for stream, payload in self._frames.feed(chunk):
            if stream is None:
                continue
            t, data = split_timestamp(payload)
            t = t or self._last
            if t is None:
                continue  # without a time there is no honest place for it; never seen in practice
            self._last = t
            out.extend(self._streams[stream].feed(data, t))
        return out

    def flush(self) -> list[RawLine]:
        return [line for s in self._streams.values() for line in s.flush()]


async def read_lines(response: Any) -> AsyncIterator[RawLine]:
    """The lines of an aiohttp response to the logs request, until the engine ends it."""
    decoder = DockerLogDecoder()
    while chunk := await response.content.read(_READ):
        for line in decoder.feed(chunk):
            yield line
    for line in decoder.flush():
        yield line


async def container_logs(
    docker: Any, calling: Calling, inspect: Inspect, container_id: str, since: datetime | None
) -> AsyncIterator[RawLine]:
    """Follow the log while the container runs, then read it once more without following: the
    engine can end a follow before the last lines of a container that exits just then. Lines
    read twice are handed over once."""
    seen, follow = Seen(), True
    while True:
        seen.again()
        again = seen.since(_REREAD_MARGIN)
        start = max(again, since) if again and since else again or since
        async for line in _read(docker, calling, container_id, start, follow):
            if seen.new(line):
                seen.add(line)
                yield line
        observed = await inspect(container_id) if follow else None
        if observed is None:
            return
        follow = observed.state == "running"


async def _read(
    docker: Any, calling: Calling, container_id: str, since: datetime | None, follow: bool
) -> AsyncIterator[RawLine]:
    what = f"logs of {container_id}"
    async with contextlib.AsyncExitStack() as stack:
        async with calling(what):  # the deadline covers the start of the answer only
            response = await stack.enter_async_context(
                docker._query(  # aiodocker's public log() decodes text and drops the stream
                    f"containers/{container_id}/logs",
                    params=log_params(since, follow),
                    timeout=docker._resolve_long_running_timeout(None),
                )
            )
        try:
            async for line in read_lines(response):
                yield line
        except (aiohttp.ClientError, OSError) as exc:
            raise RuntimeUnavailable(f"docker {what}: {exc}") from exc
