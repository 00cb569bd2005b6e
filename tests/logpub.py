"""A stand-in for the agent's log shipping: ``LogBatch`` messages on ``voiyd.logs.<node>.<task>``.

It publishes as the agent does: ``js.publish`` of the msgpack of the batch (JSON-mode plain
types, bytes kept as msgpack binary), ``Nats-Msg-Id`` = ``<task>.<epoch>.<first n>`` so a
retried batch is stored once, lines numbered per placement from 1, and a last batch with
``eof`` (id ``<task>.<epoch>.eof.<container>``) when the container's output has ended. It
does not import the agent; tests use it to write logs no real task would (bytes, split lines,
times in the past, many tasks) or to run without an agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgpack
from nats.js import JetStreamContext

from voiyd import clock
from voiyd.api.logs import LogBatch, LogLine, Stream
from voiyd.bus import subjects


def encode_batch(batch: LogBatch) -> bytes:
    """msgpack of the batch's JSON-mode dump, except that byte lines stay bytes."""
    plain: dict[str, Any] = batch.model_dump(mode="json", exclude={"lines"})
    plain["lines"] = [
        {**line.model_dump(mode="json", exclude={"line"}), "line": line.line}
        for line in batch.lines
    ]
    data: bytes = msgpack.packb(plain, use_bin_type=True)
    return data


class LogPublisher:
    """One placement's output: ``write`` lines, then ``end``."""

    def __init__(
        self,
        js: JetStreamContext,
        task: str,
        *,
        node: str = "n1",
        epoch: int = 1,
        batch_lines: int = 500,
        container_id: str = "c0ffee",
    ) -> None:
        self.js = js
        self.task = task
        self.node = node
        self.epoch = epoch
        self.batch_lines = batch_lines
        self.container_id = container_id
        self.next_n = 1
        self.seqs: list[int] = []

    async def _publish(self, lines: list[LogLine], eof: bool = False) -> None:
        batch = LogBatch(
            task=self.task,
            node=self.node,
            epoch=self.epoch,
            container_id=self.container_id,
            lines=lines,
            eof=eof,
        )
        if eof:
            msg_id = f"{self.task}.{self.epoch}.eof.{self.container_id}"
        else:
            msg_id = f"{self.task}.{self.epoch}.{lines[0].n}"
        ack = await self.js.publish(
            subjects.logs(self.node, self.task),
            encode_batch(batch),
            stream=subjects.LOGS_STREAM,
            headers={"Nats-Msg-Id": msg_id},
        )
        self.seqs.append(int(ack.seq))

    async def write(
        self,
        texts: Iterable[str | bytes],
        *,
        stream: Stream = "stdout",
        t: datetime | None = None,
        partial: Sequence[bool] = (),
    ) -> None:
        """Publish ``texts`` as lines, ``batch_lines`` to a message."""
        pending: list[LogLine] = []
        for i, text in enumerate(texts):
            part = partial[i] if i < len(partial) else False
            pending.append(
                LogLine(n=self.next_n, t=t or clock.now(), s=stream, line=text, partial=part)
            )
            self.next_n += 1
            if len(pending) >= self.batch_lines:
                await self._publish(pending)
                pending = []
        if pending:
            await self._publish(pending)

    async def end(self) -> None:
        """The container's output has ended: the eof batch."""
        await self._publish([], eof=True)


def numbered(count: int, start: int = 1, width: int = 5) -> list[str]:
    return [f"line {i:0{width}d}" for i in range(start, start + count)]
