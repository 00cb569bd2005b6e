"""Idempotent creation of the streams and buckets voiyd needs.

Every process calls ``ensure_streams`` at start; the first creates, the others find the same
config. The event log is file-backed, refuses deletes and purges, keeps every event (no limits)
and refuses writes rather than dropping history if an operator ever adds a cap (``discard=new``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError
from nats.js.errors import NotFoundError as JsNotFoundError

from voiyd.bus import subjects

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0


@dataclass(frozen=True)
class LogLimits:
    """Ceilings of the ``VOIYD_LOGS`` stream: logs of exited tasks stay a while, disk is bounded."""

    max_age_s: float = 7 * 24 * 3600.0
    max_bytes: int = 1024**3
    max_msgs_per_task: int = 100_000


def events_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=subjects.EVENTS_STREAM,
        description="voiyd event log: the source of truth",
        subjects=[f"{subjects.EVENTS_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_msgs=-1,
        max_bytes=-1,
        max_age=0,
        max_msgs_per_subject=-1,
        duplicate_window=DUPLICATE_WINDOW_S,
        deny_delete=True,
        deny_purge=True,
        allow_direct=True,
        num_replicas=replicas,
    )


def logs_config(limits: LogLimits, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=subjects.LOGS_STREAM,
        description="voiyd task logs, bounded by age, bytes and per-task count",
        subjects=[f"{subjects.LOGS_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=limits.max_age_s,
        max_bytes=limits.max_bytes,
        max_msgs_per_subject=limits.max_msgs_per_task,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_direct=True,
        num_replicas=replicas,
    )


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except JsNotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", config.name)
        return
    # Exists: bring mutable settings in line (another version may have created it), but never
    # shrink its replicas: a daemon started without --replicas must not drop an R3 log to R1.
    current = info.config.num_replicas or 1
    if (config.num_replicas or 1) < current:
        config.num_replicas = current
    await js.update_stream(config)


async def ensure_streams(
    js: JetStreamContext, replicas: int = 1, log_limits: LogLimits | None = None
) -> None:
    """Create (or update) ``VOIYD_EVENTS``, ``VOIYD_LOGS`` and the ``voiyd-assignments`` bucket."""
    await _ensure(js, events_config(replicas))
    await _ensure(js, logs_config(log_limits or LogLimits(), replicas))
    try:
        await js.key_value(subjects.ASSIGNMENTS_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=subjects.ASSIGNMENTS_BUCKET,
                description="voiyd: each node's desired tasks (derived from the event log)",
                history=1,
                storage=StorageType.FILE,
                replicas=replicas,
                direct=True,
            )
        )
        log.info("created bucket %s", subjects.ASSIGNMENTS_BUCKET)
