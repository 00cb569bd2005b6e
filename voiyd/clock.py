"""The wall clock, in one place, so that core code takes ``now`` as a parameter instead."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)
