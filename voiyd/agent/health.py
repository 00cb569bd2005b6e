"""CORE: health-check bookkeeping for one placement: when to probe, and when health flips.

A probe result moves the state; failures inside the start period do not count; ``retries``
failures in a row make the task unhealthy, one success makes it healthy again. The shell runs
the probes (command, HTTP, TCP) and acts on a flip: it reports it and, when unhealthy, stops the
container so the restart policy takes over.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from voiyd.api.specs import HealthCheck, PortMapping


@dataclass(frozen=True)
class HealthState:
    container_id: str
    started_at: datetime
    failures: int = 0
    healthy: bool | None = None
    next_at: datetime | None = None
    message: str = ""


def first_state(container_id: str, started_at: datetime, check: HealthCheck) -> HealthState:
    return HealthState(container_id, started_at, next_at=started_at + timedelta(seconds=0.2))


def due(state: HealthState, now: datetime) -> bool:
    return state.next_at is not None and now >= state.next_at


def on_result(
    state: HealthState, check: HealthCheck, ok: bool, message: str, now: datetime
) -> tuple[HealthState, bool]:
    """The state after a probe, and whether ``healthy`` flipped (to report)."""
    next_at = now + timedelta(seconds=check.interval_s)
    if ok:
        new = replace(state, failures=0, healthy=True, next_at=next_at, message="")
        return new, state.healthy is not True
    in_grace = now < state.started_at + timedelta(seconds=check.start_period_s)
    failures = state.failures if in_grace else state.failures + 1
    healthy = state.healthy
    if failures >= check.retries:
        healthy = False
    new = replace(state, failures=failures, healthy=healthy, next_at=next_at, message=message)
    return new, healthy is False and state.healthy is not False


def probe_address(
    check: HealthCheck, ports: list[PortMapping], container_ip: str | None, runtime: str
) -> tuple[str, int] | None:
    """Where an HTTP/TCP probe connects: a published port on the host when there is one."""
    if check.port is None:
        return None
    for p in ports:
        if p.container == check.port and p.protocol == "tcp":
            host = "127.0.0.1" if p.host_ip == "0.0.0.0" else p.host_ip
            return host, p.host
    if runtime == "exec":
        return "127.0.0.1", check.port
    return (container_ip, check.port) if container_ip else None
