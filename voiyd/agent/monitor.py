"""The agent's health monitor: probes running containers and reports when health flips.

Each round it looks at the running containers of current placements: a task with a probe is
probed when due (one probe in flight per task, in the agent's task group); a task without one
follows the image's own HEALTHCHECK, if the runtime reports it. A flip is handed to ``on_flip``,
which reports it and stops an unhealthy container so the restart policy takes over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping

from voiyd import clock
from voiyd.agent import health, probes
from voiyd.agent.runtimes.protocol import Observed, Runtime
from voiyd.api.agent import Assignment

OnFlip = Callable[[Observed, Assignment, bool, str], None]


class HealthMonitor:
    def __init__(self, runtime_of: Callable[[Observed], Runtime], on_flip: OnFlip) -> None:
        self._runtime_of = runtime_of
        self._on_flip = on_flip
        self._state: dict[str, health.HealthState] = {}
        self._native: dict[str, tuple[str, bool]] = {}
        self._probing: set[str] = set()

    def round(
        self,
        observed: list[Observed],
        desired: Mapping[str, Assignment],
        busy: Collection[str],
        tg: asyncio.TaskGroup,
    ) -> None:
        now = clock.now()
        live: set[str] = set()
        for c in observed:
            a = desired.get(c.task)
            if a is None or a.epoch != c.epoch or c.state != "running" or c.task in busy:
                continue
            live.add(c.task)
            if a.config.health is None:
                self._native_health(c, a)
                continue
            st = self._state.get(c.task)
            if st is None or st.container_id != c.id:
                st = health.first_state(c.id, c.started_at or now, a.config.health)
                self._state[c.task] = st
            if health.due(st, now) and c.task not in self._probing:
                self._probing.add(c.task)
                tg.create_task(self._probe(c, a, st))
        for task in set(self._state) - live:
            del self._state[task]

    async def _probe(self, c: Observed, a: Assignment, st: health.HealthState) -> None:
        check = a.config.health
        assert check is not None
        try:
            address = health.probe_address(check, a.config.ports, c.ip, a.config.runtime)
            ok, message = await probes.probe(self._runtime_of(c), c.id, check, address)
            new, flipped = health.on_result(st, check, ok, message, clock.now())
            if self._state.get(c.task) is st:
                self._state[c.task] = new
            if flipped:
                self._on_flip(c, a, bool(new.healthy), new.message)
        finally:
            self._probing.discard(c.task)

    def _native_health(self, c: Observed, a: Assignment) -> None:
        """The image's own HEALTHCHECK (Docker), when the task defines no probe."""
        if c.health not in ("healthy", "unhealthy"):
            return
        healthy = c.health == "healthy"
        if self._native.get(c.task) != (c.id, healthy):
            self._native[c.task] = (c.id, healthy)
            self._on_flip(c, a, healthy, "" if healthy else "image HEALTHCHECK failing")
