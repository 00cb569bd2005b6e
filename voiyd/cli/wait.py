"""``--wait``: follow a task's events until it runs, fails, or the wait times out.

Each event of the task is followed by a read of the task at that revision, so the phase shown is
exactly what the event made it. Phase changes are printed to stderr as they happen (with the
spinner on a terminal); the outcome decides the exit code.
"""

from __future__ import annotations

import asyncio

from voiyd.api.requests import TaskReply
from voiyd.api.views import TaskView
from voiyd.bus import subjects
from voiyd.cli.client import Session, parse_reply
from voiyd.errors import TaskFailedError, UnavailableError

SETTLED_BAD = ("failed", "exited", "stopped")


def _describe(task: TaskView) -> str:
    s = task.status
    where = f" on {s.node}" if s.node else ""
    why = f": {s.reason}" if s.reason else ""
    code = f" (exit code {s.exit_code})" if s.exit_code is not None else ""
    return f"task/{task.meta.name} {s.phase}{where}{code}{why}"


async def _get(session: Session, name: str, revision: int) -> TaskView:
    reply = await session.call("task", "get", {"name": name, "min_revision": revision})
    return parse_reply(TaskReply, reply).task


def _settled(task: TaskView) -> bool:
    return task.status.phase == "running" or task.status.phase in SETTLED_BAD


async def _follow(session: Session, name: str, revision: int) -> TaskView:
    task = await _get(session, name, revision)
    session.out.note(_describe(task))
    if _settled(task):
        return task
    shown = task.status.phase, task.status.reason
    async for raw in session.read_log(
        subjects.event("task", name), start_seq=revision + 1, follow=True
    ):
        task = await _get(session, name, raw.seq)
        if (task.status.phase, task.status.reason) != shown:
            shown = task.status.phase, task.status.reason
            session.out.note(_describe(task))
        if _settled(task):
            break
    return task


async def wait_running(session: Session, name: str, revision: int, timeout: float) -> TaskView:
    """The task once it runs; ``TaskFailedError`` if it ends otherwise, unavailable on timeout."""
    session.quiet = True
    try:
        async with session.out.spinner(f"waiting for task/{name} to run"), asyncio.timeout(timeout):
            task = await _follow(session, name, revision)
    except TimeoutError:
        last = await _get(session, name, 0)
        raise UnavailableError(f"gave up waiting after {timeout:g}s: {_describe(last)}") from None
    if task.status.phase != "running":
        raise TaskFailedError(_describe(task))
    return task
