"""CORE: how far a wait has come: a Set's rollout (``rollout status``) and a node's drain.

Pure: views and events in, verdicts and one-line texts out; the commands poll and print.
A rollout is judged by the revision the wait started with: once a newer revision replaces it
(an automatic rollback, another update) that rollout can no longer complete, so it failed.
A complete rollout is waited on until ``replicas`` members are up to date and available.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from voiyd.api.views import EventView, SetView, TaskView

Verdict = Literal["complete", "failed"]
HOLDING_PHASES = ("scheduled", "pulling", "starting", "running", "stopping")
"""Phases in which a task holds its node's resources (or is about to)."""
_LISTED = 5


def rollout_line(view: SetView, revision: int) -> str:
    st = view.status
    return (
        f"set/{view.meta.name} rollout to revision {revision}: {st.updated} of "
        f"{view.config.replicas} updated, {st.available} available"
    )


def _cause(view: SetView, revision: int) -> str:
    for entry in view.history:
        if entry.revision == revision:
            return entry.cause
    return ""


def rollout_verdict(view: SetView, revision: int) -> tuple[Verdict | None, str]:
    """``(None, "")`` while the rollout to ``revision`` goes on; else how it ended, and why."""
    st = view.status
    if st.template_revision != revision:
        newer = st.template_revision
        cause = _cause(view, newer)
        why = f" ({cause})" if cause else ""
        return "failed", f"revision {revision} was replaced by revision {newer}{why}"
    rollout = st.rollout
    if rollout.revision != revision or rollout.state == "progressing":
        return None, ""
    if rollout.state == "failed":
        return "failed", rollout.reason or "no reason recorded"
    # Complete, and (like kubectl) every replica there: a scale-up after it is waited for too.
    wanted = view.config.replicas
    return ("complete", "") if st.updated >= wanted and st.available >= wanted else (None, "")


def holders(tasks: Iterable[TaskView], node: str) -> list[TaskView]:
    """Tasks that hold resources on ``node``."""
    return [t for t in tasks if t.status.node == node and t.status.phase in HOLDING_PHASES]


def evicted_from(events: Iterable[EventView], node: str) -> list[str]:
    """Names of the tasks ``task.evicted`` moved off ``node``, in order, each once."""
    names: dict[str, None] = {}
    for item in events:
        envelope = item.event
        data = envelope.get("data")
        if envelope.get("type") != "task.evicted" or not isinstance(data, dict):
            continue
        if data.get("node") == node and isinstance(data.get("name"), str):
            names[data["name"]] = None
    return list(names)


@dataclass(frozen=True)
class DrainState:
    left: list[TaskView]
    """Tasks still holding resources on the node."""
    undecided: list[str]
    """Tasks evicted from the node that the scheduler has not placed (or refused) yet."""
    stuck: list[TaskView]
    """Tasks evicted from the node that could not be placed elsewhere."""

    @property
    def done(self) -> bool:
        return not self.left and not self.undecided


def drain_state(tasks: Sequence[TaskView], evicted: Iterable[str], node: str) -> DrainState:
    by_name = {t.meta.name: t for t in tasks}
    moved = [by_name[name] for name in evicted if name in by_name]
    return DrainState(
        left=holders(tasks, node),
        undecided=[t.meta.name for t in moved if t.status.phase == "pending"],
        stuck=[t for t in moved if t.status.phase == "unschedulable"],
    )


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def drain_line(node: str, state: DrainState) -> str:
    if state.left:
        count = len(state.left)
        tasks = "task" if count == 1 else "tasks"
        left = _names([t.meta.name for t in state.left])
        return f"draining node/{node}: {count} {tasks} left ({left})"
    return f"draining node/{node}: waiting for {_names(state.undecided)} to be placed elsewhere"


def stuck_lines(state: DrainState) -> list[str]:
    """``task/web-3: unschedulable: <reason>`` for what could not move."""
    return [f"task/{t.meta.name}: {t.status.phase}: {t.status.reason or '-'}" for t in state.stuck]
