"""Turning timed operations into figures: rate, latency percentiles, medians over rounds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; ``sorted_values`` is sorted."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Throughput:
    """One measured round: ``count`` operations in ``seconds``, with per-operation latencies."""

    count: int
    seconds: float
    latencies_s: tuple[float, ...] = ()
    cpu_s: Mapping[str, float] = field(default_factory=dict)
    """CPU seconds each process (by name: ``client``, ``voiyd-server``...) used in the round."""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan

    def latency_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies_s), q) * 1000

    def cpu_us_per_op(self, process: str) -> float | None:
        if process not in self.cpu_s or not self.count:
            return None
        return self.cpu_s[process] / self.count * 1e6


def median_round(rounds: Sequence[Throughput]) -> Throughput:
    """The round with the median rate (an actual round, so its latencies stay consistent)."""
    if not rounds:
        raise ValueError("no rounds")
    ordered = sorted(rounds, key=lambda r: r.rate)
    return ordered[(len(ordered) - 1) // 2]


def spread(rounds: Sequence[Throughput]) -> tuple[float, float]:
    rates = [r.rate for r in rounds]
    return min(rates), max(rates)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan
