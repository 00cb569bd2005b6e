"""Prometheus metrics of voiyd-node (``voiyd_node_<thing>_<unit>``), made once a process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ASSIGNED = Gauge("voiyd_node_assigned_tasks", "Tasks assigned to this node")
RUNNING = Gauge("voiyd_node_running_containers", "Containers running on this node")
STARTS = Counter("voiyd_node_starts_total", "Containers started")
STOPS = Counter("voiyd_node_stops_total", "Containers stopped and removed")
RESTARTS = Counter("voiyd_node_restarts_total", "Restarts decided by the restart policy")
HEARTBEATS = Counter("voiyd_node_heartbeats_total", "Heartbeats published")
REPORTS = Counter("voiyd_node_reports_total", "Reports acknowledged by the server")
LOG_LINES = Counter("voiyd_node_log_lines_total", "Log lines stored in VOIYD_LOGS (parts count)")
LOG_BYTES = Counter("voiyd_node_log_bytes_total", "Bytes of log lines stored in VOIYD_LOGS")
LOG_BATCHES = Counter("voiyd_node_log_batches_total", "Log batches acknowledged by VOIYD_LOGS")
LOG_DROPPED = Counter(
    "voiyd_node_log_lines_dropped_total", "Log lines dropped: the node's log buffer was full"
)
