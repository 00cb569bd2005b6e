"""CORE: desired (the node's assignments) against observed (its containers) -> actions.

Pure: ``now`` comes in, no I/O. The rules:
- a container whose (task, epoch) is not assigned to this node is stopped and removed;
- two containers of one placement: the extra one is removed (never run a task twice);
- an assigned placement with no container is started, unless it waits out a restart backoff
  or has given up (failed), or an older copy of the task still runs here (it is stopped first);
- a container that exited is reported once, then restarted per the task's restart policy with
  capped exponential backoff, or left exited / failed.
``Memory`` is what the agent remembers between rounds; after an agent restart it starts from
the assignment's ``restarts`` so counting goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from voiyd.agent.runtimes.protocol import Observed
from voiyd.api.agent import Assignment
from voiyd.api.specs import RestartPolicy

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Memory:
    """What the agent remembers about one placement (task, epoch)."""

    epoch: int
    restarts: int = 0
    handled_exits: frozenset[str] = frozenset()
    """Container ids whose exit has been reported and acted on."""
    restart_at: datetime | None = None
    gave_up: bool = False


@dataclass(frozen=True)
class Start:
    assignment: Assignment
    replaces: str | None = None
    """An exited container of the same placement to remove first."""


@dataclass(frozen=True)
class Stop:
    container: Observed
    reason: str
    report: bool = True


@dataclass(frozen=True)
class Exited:
    """Report an exit and what follows: a restart after ``delay_s``, a failure, or nothing."""

    container: Observed
    then: str  # "restart" | "fail" | "stay"
    restarts: int = 0
    delay_s: float = 0.0
    reason: str = ""


Action = Start | Stop | Exited


@dataclass(frozen=True)
class Plan:
    actions: list[Action] = field(default_factory=list)
    memory: dict[str, Memory] = field(default_factory=dict)


def backoff_delay(policy: RestartPolicy, restarts: int) -> float:
    """Capped exponential backoff: backoff_s, twice that, four times... up to max_backoff_s."""
    return float(min(policy.max_backoff_s, policy.backoff_s * (2 ** max(0, restarts))))


def after_exit(policy: RestartPolicy, exit_code: int, restarts: int) -> tuple[str, str]:
    """What an exit leads to: ("restart"|"fail"|"stay", reason)."""
    match policy.policy:
        case "always":
            return "restart", ""
        case "never":
            return "stay", f"exited with code {exit_code} (restart policy never)"
        case "on-failure":
            if exit_code == 0:
                return "stay", "exited with code 0"
            limit = policy.max_retries
            if limit is not None and restarts >= limit:
                return "fail", f"exited with code {exit_code} after {restarts} restarts"
            return "restart", ""


def _memory_for(a: Assignment, memory: Mapping[str, Memory]) -> Memory:
    m = memory.get(a.task)
    if m is None or m.epoch != a.epoch:
        return Memory(epoch=a.epoch, restarts=a.restarts)
    return m


def _split(
    desired: Mapping[str, Assignment], observed: Sequence[Observed]
) -> tuple[list[Stop], dict[str, list[Observed]]]:
    """Containers not assigned here (to stop) and the assigned ones per task, newest first."""
    stops: list[Stop] = []
    mine: dict[str, list[Observed]] = {}
    for c in observed:
        a = desired.get(c.task)
        if a is None or a.epoch != c.epoch:
            why = "no longer assigned to this node" if a is None else f"epoch {c.epoch} replaced"
            stops.append(Stop(c, why, report=c.state != "exited"))
        else:
            mine.setdefault(c.task, []).append(c)
    for task, cs in mine.items():
        cs.sort(key=lambda c: (c.state == "running", c.started_at or _EPOCH), reverse=True)
        stops.extend(Stop(extra, "duplicate of this placement", report=False) for extra in cs[1:])
        mine[task] = cs[:1]
    return stops, mine


def _exited(a: Assignment, c: Observed, m: Memory, now: datetime) -> tuple[Exited, Memory]:
    code = c.exit_code if c.exit_code is not None else -1
    then, reason = after_exit(a.config.restart, code, m.restarts)
    handled = m.handled_exits | {c.id}
    if then == "restart":
        delay = backoff_delay(a.config.restart, m.restarts)
        restarts = m.restarts + 1
        at = now + timedelta(seconds=delay)
        new = replace(m, restarts=restarts, handled_exits=handled, restart_at=at)
        return Exited(c, "restart", restarts, delay), new
    return Exited(c, then, m.restarts, reason=reason), replace(
        m, handled_exits=handled, gave_up=True
    )


def _for_task(
    a: Assignment, containers: list[Observed], m: Memory, now: datetime
) -> tuple[list[Action], Memory]:
    c = containers[0] if containers else None
    if c is not None and c.state != "exited":
        return [], m
    if c is not None and c.id not in m.handled_exits:
        exited, m = _exited(a, c, m, now)
        return [exited], m
    if m.gave_up or (m.restart_at is not None and now < m.restart_at):
        return [], m
    return [Start(a, replaces=c.id if c is not None else None)], replace(m, restart_at=None)


def reconcile(
    desired: Mapping[str, Assignment],
    observed: Sequence[Observed],
    memory: Mapping[str, Memory],
    now: datetime,
) -> Plan:
    """The actions that bring this node's containers to its assignments."""
    stops, mine = _split(desired, observed)
    plan = Plan(actions=list(stops))
    # A new placement starts once the old copy on this node has stopped: they may need the
    # same host port or volume, and a Set's stop-first rollout means stop, then start.
    replacing = {s.container.task for s in stops if s.container.state != "exited"}
    for task in sorted(desired):
        a = desired[task]
        if task in replacing and not mine.get(task):
            plan.memory[task] = _memory_for(a, memory)
            continue
        actions, m = _for_task(a, mine.get(task, []), _memory_for(a, memory), now)
        plan.actions.extend(actions)
        plan.memory[task] = m
    return plan


def stale_templates(
    on_disk: Set[str], desired: Mapping[str, Assignment], observed: Sequence[Observed]
) -> set[str]:
    """Tasks whose template volume files can go: not assigned here and no container left."""
    return set(on_disk) - set(desired) - {c.task for c in observed}
