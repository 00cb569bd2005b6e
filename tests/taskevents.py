"""A task's life written straight into the event log, for log tests that run no agent.

``TaskLife`` appends what voiyd-server, the scheduler and an agent's reports would append
(created, scheduled, started, exited, stopped, deleted), each with its expected revision, so
that readers of the log (the log relay, voiyd-server's projection) see a task run and end.
"""

from __future__ import annotations

from nats.js import JetStreamContext

from voiyd import clock, ids
from voiyd.bus.publish import append
from voiyd.events import models as ev


class TaskLife:
    def __init__(self, js: JetStreamContext, name: str, *, node: str = "n1") -> None:
        self.js = js
        self.name = name
        self.node = node
        self.epoch = 0
        self.revision = 0

    async def _append(self, event: ev.AnyEvent) -> int:
        self.revision = await append(self.js, event, self.revision)
        return self.revision

    def _placement(self) -> ev.PlacementData:
        return ev.PlacementData(name=self.name, node=self.node, epoch=self.epoch)

    async def created(self, restart: str = "never") -> int:
        config = {"runtime": "exec", "args": ["sh", "-c", "true"], "restart": restart}
        data = ev.TaskSpecData.model_validate({"name": self.name, "config": config})
        return await self._append(
            ev.TaskCreated(id=ids.new_id(), at=clock.now(), actor="t", data=data)
        )

    async def started(self) -> int:
        self.epoch += 1
        await self._append(
            ev.TaskScheduled(id=ids.new_id(), at=clock.now(), actor="t", data=self._placement())
        )
        data = ev.StartedData(name=self.name, node=self.node, epoch=self.epoch, container_id="c0")
        return await self._append(
            ev.TaskStarted(id=ids.new_id(), at=clock.now(), actor="t", data=data)
        )

    async def exited(self, code: int = 0) -> int:
        data = ev.ExitedData(name=self.name, node=self.node, epoch=self.epoch, exit_code=code)
        return await self._append(
            ev.TaskExited(id=ids.new_id(), at=clock.now(), actor="t", data=data)
        )

    async def stopped(self) -> int:
        await self._append(
            ev.TaskStopRequested(
                id=ids.new_id(), at=clock.now(), actor="t", data=ev.TaskRef(name=self.name)
            )
        )
        return await self._append(
            ev.TaskStopped(id=ids.new_id(), at=clock.now(), actor="t", data=self._placement())
        )

    async def deleted(self) -> int:
        return await self._append(
            ev.TaskDeleted(
                id=ids.new_id(), at=clock.now(), actor="t", data=ev.TaskRef(name=self.name)
            )
        )
