"""Prometheus metrics of voiyd-scheduler (``voiyd_scheduler_<thing>_<unit>``), made once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from voiyd.scheduler.sets import ACTIONS

PLACEMENTS = Counter(
    "voiyd_scheduler_placements_total",
    "Decisions appended to the log, by outcome (scheduled, unschedulable, evicted)",
    ["outcome"],
)
PLACEMENT_SECONDS = Histogram(
    "voiyd_scheduler_placement_seconds",
    "Time to plan one scheduling round over the whole view",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONFLICTS = Counter(
    "voiyd_scheduler_conflicts_total",
    "Decisions refused because the task had changed since the view read it",
)
APPEND_ERRORS = Counter(
    "voiyd_scheduler_append_errors_total",
    "Decisions the log did not acknowledge in time (retried by a later round)",
)
SET_ACTIONS = Counter(
    "voiyd_scheduler_set_actions_total",
    "Set controller decisions appended to the log, by action (created, updated, relabeled, "
    "deleted members; completed, failed rollouts; rollback)",
    ["action"],
)
VIEW_SEQ = Gauge("voiyd_scheduler_view_seq", "Last stream sequence applied to the in-memory view")
EVENTS_SKIPPED = Counter(
    "voiyd_scheduler_events_skipped_total", "Events in the log that could not be decoded"
)

for _outcome in ("scheduled", "unschedulable", "evicted"):
    PLACEMENTS.labels(outcome=_outcome)  # every series exists from the start, at 0
for _action in ACTIONS:
    SET_ACTIONS.labels(action=_action)
