"""Prometheus metrics of voiyd-server (``voiyd_server_<thing>_<unit>``), made once a process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPENDED = Counter(
    "voiyd_server_events_appended_total", "Events appended to the log by this server", ["type"]
)
EVENTS_APPLIED = Counter(
    "voiyd_server_events_applied_total", "Events applied to the SQLite projection", ["type"]
)
EVENTS_SKIPPED = Counter(
    "voiyd_server_events_skipped_total", "Events in the log that could not be decoded"
)
APPEND_CONFLICTS = Counter(
    "voiyd_server_append_conflicts_total", "Appends refused because the aggregate had moved on"
)
PROJECTION_SEQ = Gauge("voiyd_server_projection_seq", "Last stream sequence applied to SQLite")
PROJECTION_LAG = Gauge(
    "voiyd_server_projection_lag_events", "Events delivered but not yet applied, per the consumer"
)
REQUEST_SECONDS = Histogram(
    "voiyd_server_request_seconds",
    "API request latency by subject and outcome",
    ["subject", "outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_request(subject: str, seconds: float, outcome: str) -> None:
    REQUEST_SECONDS.labels(subject=subject, outcome=outcome).observe(seconds)


HEARTBEATS = Counter("voiyd_server_heartbeats_total", "Agent heartbeats received")
ASSIGNMENT_WRITES = Counter(
    "voiyd_server_assignment_writes_total", "Writes to the voiyd-assignments bucket", ["op"]
)
