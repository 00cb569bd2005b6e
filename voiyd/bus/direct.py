"""Reading a stream without a consumer: JetStream direct gets, one message or a batch.

A direct get (``$JS.API.DIRECT.GET.<stream>``, the stream needs ``allow_direct``) is answered by
any replica of the stream and leaves no state on the server, so a reader that keeps its own
position (a stream sequence) can ask any time, from anywhere, at no cost to others. A batch get
(nats-server 2.11+) answers one message per stored message, then an end-of-batch status (204
``EOB``) saying how many more match; nats-py has no call for it, so it is built here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from voiyd.errors import InternalError, UnavailableError

DEFAULT_TIMEOUT_S = 5.0
MAX_BATCH = 1024
"""Most messages one batch get asks for (the server caps a batch's bytes as well)."""

_STATUS = "Status"
_NOT_FOUND = "404"
_END_OF_BATCH = "204"


@dataclass(frozen=True)
class Stored:
    """One stored message: its stream sequence, subject, when the stream stored it, payload."""

    seq: int
    subject: str
    time: datetime
    data: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Batch:
    messages: list[Stored]
    pending: int
    """Messages matching the request that come after the last one returned."""


def _stored_time(text: str | None) -> datetime:
    if not text:
        return datetime.fromtimestamp(0, UTC)
    # nats-server writes nanoseconds; fromisoformat (3.11) keeps microseconds.
    head, dot, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}" if dot else head).replace(
        tzinfo=UTC
    )


def _stored(msg: Msg) -> Stored:
    headers = dict(msg.headers or {})
    return Stored(
        seq=int(headers.get("Nats-Sequence", "0")),
        subject=headers.get("Nats-Subject", ""),
        time=_stored_time(headers.get("Nats-Time-Stamp")),
        data=msg.data,
        headers=headers,
    )


def _status_error(stream: str, msg: Msg) -> Exception:
    headers = msg.headers or {}
    status = headers.get(_STATUS, "")
    text = headers.get("Description", "")
    if status in ("503", "408"):
        return UnavailableError(f"stream {stream} did not answer a direct get: {status} {text}")
    return InternalError(f"direct get on stream {stream} refused: {status} {text}")


async def get_last(
    nc: Client, stream: str, subject: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Stored | None:
    """The last message stored on ``subject``, or None when there is none."""
    try:
        msg = await nc.request(f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", timeout=timeout)
    except nats.errors.NoRespondersError:
        raise UnavailableError(f"stream {stream} does not exist or has no direct get") from None
    except nats.errors.TimeoutError:
        raise UnavailableError(f"stream {stream}: no direct get reply in {timeout:g}s") from None
    status = (msg.headers or {}).get(_STATUS)
    if status == _NOT_FOUND:
        return None
    if status:
        raise _status_error(stream, msg)
    return _stored(msg)


async def get_batch(
    nc: Client,
    stream: str,
    subject: str,
    *,
    after_seq: int = 0,
    start_time: datetime | None = None,
    batch: int = 256,
    max_bytes: int = 0,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Batch:
    """Up to ``batch`` messages on ``subject`` after ``after_seq`` (or from ``start_time``).

    The server stops early once ``max_bytes`` (if set) are sent, but always sends at least one.
    """
    req: dict[str, Any] = {"next_by_subj": subject, "batch": max(1, min(batch, MAX_BATCH))}
    if start_time is not None:
        req["start_time"] = start_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    else:
        req["seq"] = after_seq + 1
    if max_bytes > 0:
        req["max_bytes"] = max_bytes
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(req).encode(), reply=inbox)
        return await _collect(stream, sub, timeout)
    finally:
        await sub.unsubscribe()


async def _collect(stream: str, sub: Any, timeout: float) -> Batch:
    messages: list[Stored] = []
    while True:
        try:
            msg: Msg = await sub.next_msg(timeout)
        except nats.errors.TimeoutError:
            raise UnavailableError(
                f"stream {stream}: direct get stalled for {timeout:g}s"
            ) from None
        status = (msg.headers or {}).get(_STATUS)
        if not status:
            messages.append(_stored(msg))
            continue
        if status == _NOT_FOUND:
            return Batch(messages, 0)
        if status == _END_OF_BATCH:
            return Batch(messages, int((msg.headers or {}).get("Nats-Num-Pending", "0")))
        if status == "503" and not messages:
            raise UnavailableError(f"stream {stream} does not exist or has no direct get")
        raise _status_error(stream, msg)
