"""CORE: one whole scheduler round: evictions, then the Set controller, then placements.

The three parts read the same view; the order makes them agree: the controller counts this
round's drain evictions as unavailable members (so a drain and a rollout together never take
more than ``max_parallel`` of a Set away) and decides nothing else about an evicted task, and
placement skips the tasks the controller deletes or updates. So a round makes at most one
decision per aggregate and its appends may go in any order. ``wake_at`` is the next time the
decisions can change without a new event (min_healthy_s, a rollout or drain deadline).
Pure: ``now`` comes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from voiyd.scheduler import sets
from voiyd.scheduler.plan import ClusterView, Decision, evictions, placements

AnyDecision = Decision | sets.SetDecision


class RoundView(ClusterView, sets.SetsView, Protocol):
    """Everything a round reads (``voiyd.scheduler.view.View`` is one)."""


@dataclass(frozen=True, slots=True)
class Round:
    decisions: list[AnyDecision]
    wake_at: datetime | None
    """When to decide again even if the log stays quiet (None: only on a new event)."""


def decide(view: RoundView, now: datetime) -> Round:
    """Everything to append now, and when the same view needs another look."""
    evicted = evictions(view, now)
    gone = frozenset(e.task for e in evicted)
    controlled = sets.control(view, now, gone)
    touched = gone | {d.task for d in controlled if isinstance(d, sets.MemberDecision)}
    placed = placements(view, now, skip=touched)
    return Round([*evicted, *controlled, *placed], wake_at(view, now))


def wake_at(view: RoundView, now: datetime) -> datetime | None:
    """The earliest future time at which a Set member turns available by waiting, a rollout
    reaches its deadline, or a drain reaches its deadline."""
    times = [n.drain_deadline for n in view.nodes.values() if n.phase == "draining"]
    times.append(sets.wake_at(view, now))
    future = [t for t in times if t is not None and t > now]
    return min(future) if future else None
