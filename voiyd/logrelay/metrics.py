"""Prometheus metrics of voiyd-logrelay (``voiyd_logrelay_<thing>_<unit>``), made once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "voiyd_logrelay_requests_total",
    "logs.read requests answered, by mode (history, follow) and outcome (ok or an error code)",
    ["mode", "outcome"],
)
LINES_SERVED = Counter("voiyd_logrelay_lines_served_total", "Log lines sent to clients")
BYTES_SERVED = Counter(
    "voiyd_logrelay_bytes_served_total",
    "Bytes of log batches sent to clients (as stored: lines with their numbers, times, streams)",
)
READ_SECONDS = Histogram(
    "voiyd_logrelay_read_seconds",
    "Time to read one round of lines from the stream and build the reply (waits excluded)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
WAITING = Gauge(
    "voiyd_logrelay_waiting_requests", "Follow requests waiting for new lines (long polls)"
)
STREAMS_ENDED = Counter(
    "voiyd_logrelay_streams_ended_total", "Follows answered with end-of-stream (the task ended)"
)
BAD_MESSAGES = Counter(
    "voiyd_logrelay_bad_messages_total",
    "Messages on voiyd.logs.<task> that are not log batches (skipped)",
)

for _mode in ("history", "follow"):
    REQUESTS.labels(mode=_mode, outcome="ok")  # every series exists from the start, at 0
