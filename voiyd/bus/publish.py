"""Appending events to the log: dedupe by id, optimistic concurrency, retry until acknowledged.

``append`` sends ``Nats-Msg-Id`` (= the event id, so a retried append is a no-op) and, when the
decision was made against a read, ``Nats-Expected-Last-Subject-Sequence`` (0 = must not exist).
A timeout or a missing stream leader is retried with the same id until the deadline; a stale
revision (err_code 10071) becomes ``ConflictError`` carrying the actual revision, unless the
aggregate's last event is this very event (an earlier attempt was stored but its ack was lost).
"""

from __future__ import annotations

import asyncio
import logging
import re

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from voiyd.bus import codec, subjects
from voiyd.errors import ConflictError, InternalError, UnavailableError
from voiyd.events.models import AnyEvent, event_kind, event_name

log = logging.getLogger(__name__)

WRONG_LAST_SEQUENCE = 10071  # nats-server err_code: Nats-Expected-Last-Subject-Sequence mismatch
_ACTUAL_SEQ_RE = re.compile(r"wrong last sequence:\s*(\d+)")
DEFAULT_DEADLINE_S = 30.0
_ATTEMPT_TIMEOUT_S = 2.0
_BACKOFF_START_S = 0.05
_BACKOFF_MAX_S = 1.0


def event_subject(event: AnyEvent) -> str:
    return subjects.event(event_kind(event), event_name(event))


async def append(
    js: JetStreamContext,
    event: AnyEvent,
    expected_revision: int | None = None,
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> int:
    """Append ``event`` to its aggregate's subject; return its stream sequence (the new revision).

    Raises ``ConflictError`` when ``expected_revision`` is stale, ``UnavailableError`` when the
    log did not acknowledge within ``deadline_s`` (the outcome is then unknown; retrying the
    same event is safe within the stream's duplicate window).
    """
    subject = event_subject(event)
    payload = codec.encode(event)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    backoff = _BACKOFF_START_S
    attempt = 0
    while True:
        attempt += 1
        headers = {"Nats-Msg-Id": event.id, subjects.EVENT_HEADER: event.type}
        if expected_revision is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_revision)
        try:
            ack = await js.publish(
                subject,
                payload,
                timeout=min(_ATTEMPT_TIMEOUT_S, max(0.1, give_up - loop.time())),
                stream=subjects.EVENTS_STREAM,
                headers=headers,
            )
            return int(ack.seq)
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                # nats-server checks the expected sequence before the duplicate window, so an
                # earlier attempt whose ack was lost shows up as a conflict: find it by its id.
                stored = await _stored_seq(js, subject, event.id)
                if stored is not None:
                    return stored
                raise _conflict(subject, expected_revision, exc) from exc
            if not isinstance(exc, ServiceUnavailableError):
                raise InternalError(f"event log refused {event.type}: {exc.description}") from exc
            retry_reason = str(exc)
        except _RETRYABLE as exc:
            retry_reason = type(exc).__name__
        if loop.time() + backoff >= give_up:
            raise UnavailableError(
                f"event log did not acknowledge {event.type} {event.id} after {attempt} attempts "
                f"({retry_reason})"
            )
        log.warning(
            "append %s %s attempt %d failed (%s); retrying",
            event.type,
            event.id,
            attempt,
            retry_reason,
        )
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, _BACKOFF_MAX_S)


_RETRYABLE = (
    nats.errors.TimeoutError,
    NoStreamResponseError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
)


async def _stored_seq(js: JetStreamContext, subject: str, event_id: str) -> int | None:
    """The sequence of ``event_id`` if it is the last event on ``subject``."""
    try:
        last = await js.get_last_msg(subjects.EVENTS_STREAM, subject, direct=True)
    except (APIError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return None
    if last.headers and last.headers.get("Nats-Msg-Id") == event_id and last.seq is not None:
        return int(last.seq)
    return None


def _conflict(subject: str, expected: int | None, exc: APIError) -> ConflictError:
    m = _ACTUAL_SEQ_RE.search(exc.description or "")
    actual = int(m.group(1)) if m else None
    return ConflictError(
        f"{subject} changed: expected revision {expected}, it is now "
        f"{actual if actual is not None else 'newer'}",
        actual_revision=actual,
    )
