"""CORE: the event log's vocabulary: one envelope, one discriminated union of past-tense facts."""

from voiyd.events.models import (
    AnyEvent,
    Event,
    decode_event,
    event_kind,
    event_name,
)

__all__ = ["AnyEvent", "Event", "decode_event", "event_kind", "event_name"]
