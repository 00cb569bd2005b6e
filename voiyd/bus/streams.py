"""Idempotent creation of the streams and buckets voiyd needs.

Every process calls ``ensure_streams`` at start; the first creates, the others find the same
config. The event log is file-backed, refuses deletes and purges, keeps every event (no limits)
and refuses writes rather than dropping history if an operator ever adds a cap (``discard=new``).
The log stream's limits change only when a daemon is given them (``--logs-max-*``): one started
without them keeps what the stream has, so daemons started with different options do not undo
each other's limits at every restart.
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

from voiyd.api.units import parse_duration, parse_memory
from voiyd.bus import subjects

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0


@dataclass(frozen=True)
class LogLimits:
    """Ceilings of the ``VOIYD_LOGS`` stream: logs of exited tasks stay a while, disk is bounded."""

    max_age_s: float = 7 * 24 * 3600.0
    max_bytes: int = 1024**3
    max_msgs_per_task: int = 100_000
    """Messages kept per task subject. Agents send lines in batches and every batch but an
    end-of-output mark holds at least one line, so this keeps at least this many lines (and up
    to this many batches): ``--logs-max-lines-per-task`` sets it."""

    def merged(
        self,
        max_age_s: float | None = None,
        max_bytes: int | None = None,
        max_msgs_per_task: int | None = None,
    ) -> LogLimits:
        """These limits with the given ones replaced (None keeps a value)."""
        return LogLimits(
            max_age_s=self.max_age_s if max_age_s is None else max_age_s,
            max_bytes=self.max_bytes if max_bytes is None else max_bytes,
            max_msgs_per_task=self.max_msgs_per_task
            if max_msgs_per_task is None
            else max_msgs_per_task,
        )


@dataclass(frozen=True)
class LogLimitOptions:
    """Limits a daemon was started with; each None leaves the stream's current value alone."""

    max_age_s: float | None = None
    max_bytes: int | None = None
    max_lines_per_task: int | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.max_age_s, self.max_bytes, self.max_lines_per_task))

    def over(self, current: LogLimits) -> LogLimits:
        return current.merged(self.max_age_s, self.max_bytes, self.max_lines_per_task)


def log_limit_options(
    max_age: str | None, max_bytes: str | None, max_lines_per_task: int | None
) -> LogLimitOptions:
    """Limits as operators write them (``7d``, ``1Gi``, ``100000``); ValueError if one is bad."""
    age = parse_duration(max_age).total_seconds() if max_age is not None else None
    size = parse_memory(max_bytes) if max_bytes is not None else None
    if age is not None and age <= 0:
        raise ValueError(f"--logs-max-age {max_age!r}: must be more than 0")
    if size is not None and size <= 0:
        raise ValueError(f"--logs-max-bytes {max_bytes!r}: must be more than 0")
    if max_lines_per_task is not None and max_lines_per_task <= 0:
        raise ValueError(f"--logs-max-lines-per-task {max_lines_per_task}: must be more than 0")
    return LogLimitOptions(age, size, max_lines_per_task)


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


def _limits_of(config: StreamConfig) -> LogLimits:
    default = LogLimits()
    return LogLimits(
        max_age_s=config.max_age if config.max_age is not None else default.max_age_s,
        max_bytes=config.max_bytes if config.max_bytes is not None else default.max_bytes,
        max_msgs_per_task=config.max_msgs_per_subject
        if config.max_msgs_per_subject is not None
        else default.max_msgs_per_task,
    )


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except JsNotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", config.name)
        return
    await _update(js, config, info.config)


async def _ensure_logs(js: JetStreamContext, options: LogLimitOptions, replicas: int) -> None:
    try:
        info = await js.stream_info(subjects.LOGS_STREAM)
    except JsNotFoundError:
        await js.add_stream(logs_config(options.over(LogLimits()), replicas))
        log.info("created stream %s", subjects.LOGS_STREAM)
        return
    limits = options.over(_limits_of(info.config))
    if options.given:
        log.info(
            "stream %s limits: max age %gs, max bytes %d, max messages per task %d",
            subjects.LOGS_STREAM,
            limits.max_age_s,
            limits.max_bytes,
            limits.max_msgs_per_task,
        )
    await _update(js, logs_config(limits, replicas), info.config)


async def _update(js: JetStreamContext, config: StreamConfig, existing: StreamConfig) -> None:
    # Exists: bring mutable settings in line (another version may have created it), but never
    # shrink its replicas: a daemon started without --replicas must not drop an R3 log to R1.
    current = existing.num_replicas or 1
    if (config.num_replicas or 1) < current:
        config.num_replicas = current
    await js.update_stream(config)


async def ensure_streams(
    js: JetStreamContext, replicas: int = 1, log_limits: LogLimitOptions | None = None
) -> None:
    """Create (or update) ``VOIYD_EVENTS``, ``VOIYD_LOGS`` and the ``voiyd-assignments`` bucket.

    ``VOIYD_LOGS`` is created with ``LogLimits()`` overridden by ``log_limits``; an existing one
    keeps its limits but those ``log_limits`` gives.
    """
    await _ensure(js, events_config(replicas))
    await _ensure_logs(js, log_limits or LogLimitOptions(), replicas)
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
