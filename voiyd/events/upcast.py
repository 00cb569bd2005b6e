"""CORE: pure upcasters that turn old event shapes into current ones before validation.

An upcaster is keyed by ``(type, v)`` and returns the envelope at ``v + 1``; ``upcast`` applies
them until none matches. A wire name never changes; a changed ``data`` shape bumps ``v`` and adds
an upcaster here. There are none yet: version 1 is the first shape of every event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Envelope = dict[str, Any]
UPCASTERS: dict[tuple[str, int], Callable[[Envelope], Envelope]] = {}


def upcast(envelope: Envelope) -> Envelope:
    while (key := (str(envelope.get("type")), int(envelope.get("v", 1)))) in UPCASTERS:
        envelope = UPCASTERS[key](envelope)
    return envelope
