"""CORE: a Set's member tasks: which tasks they are, their index, revision and availability.

One definition used by the server (the counts in ``get sets``), the scheduler's Set controller
(rollouts, scale, drain budgets) and the CLI (``rollout status``). Pure: ``now`` comes in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from voiyd.api.specs import SET_LABEL, SET_RESTART_LABEL, SET_REVISION_LABEL
from voiyd.api.views import SetRevision, SetView, TaskView


def member_name(set_name: str, index: int) -> str:
    return f"{set_name}-{index}"


def member_index(set_name: str, task_name: str) -> int | None:
    """``n`` of ``<set>-<n>``, or None when ``task_name`` is not shaped like a member's."""
    prefix = f"{set_name}-"
    if not task_name.startswith(prefix):
        return None
    rest = task_name[len(prefix) :]
    if not rest.isdigit() or rest.startswith("0"):
        return None
    return int(rest)


def is_member(task: TaskView, set_name: str) -> bool:
    return task.meta.labels.get(SET_LABEL) == set_name


def members(tasks: Iterable[TaskView], set_name: str) -> list[TaskView]:
    """The Set's member tasks, by index (then name)."""
    found = [t for t in tasks if is_member(t, set_name)]
    return sorted(found, key=lambda t: (member_index(set_name, t.meta.name) or 0, t.meta.name))


def member_labels(view: SetView) -> dict[str, str]:
    """The labels a member of ``view`` carries at its current template revision."""
    labels = {
        **view.meta.labels,
        SET_LABEL: view.meta.name,
        SET_REVISION_LABEL: str(view.status.template_revision),
    }
    if view.status.restart_revision:
        labels[SET_RESTART_LABEL] = str(view.status.restart_revision)
    return dict(sorted(labels.items()))


def up_to_date(task: TaskView, view: SetView) -> bool:
    """The member runs the Set's current template (labels included)."""
    return task.config == view.config.template and task.meta.labels == member_labels(view)


def member_revision(task: TaskView) -> int:
    """The template revision a member runs (0 when the label is missing or malformed)."""
    value = task.meta.labels.get(SET_REVISION_LABEL, "")
    return int(value) if value.isdigit() else 0


def running_since(task: TaskView) -> datetime | None:
    """When the current run started (the ``Running`` condition's time), if it is running."""
    if task.status.phase != "running":
        return None
    for cond in task.status.conditions:
        if cond.type == "Running" and cond.status:
            return cond.at
    return None


def available(task: TaskView, min_healthy_s: float, now: datetime) -> bool:
    """Running, not unhealthy, healthy when it has a health check, for ``min_healthy_s``."""
    s = task.status
    if s.phase != "running" or s.desired != "running" or s.healthy is False:
        return False
    if task.config.health is not None and s.healthy is not True:
        return False
    since = running_since(task)
    if since is None:
        return False
    return (now - since).total_seconds() >= min_healthy_s


def counts(view: SetView, tasks: Iterable[TaskView], now: datetime) -> tuple[int, int, int]:
    """``(members, updated, available)`` of the Set ``view`` among ``tasks``."""
    found = members(tasks, view.meta.name)
    rev = view.status.template_revision
    min_healthy = view.config.update.min_healthy_s
    updated = sum(1 for t in found if member_revision(t) == rev)
    ready = sum(1 for t in found if available(t, min_healthy, now))
    return len(found), updated, ready


def previous_template(view: SetView) -> SetRevision | None:
    """The latest earlier revision whose template differs from the current one (a restart
    repeats a template, so it is skipped): what ``rollout undo`` and an automatic rollback
    go back to."""
    current = view.status.template_revision
    earlier = [
        h for h in view.history if h.revision < current and h.template != view.config.template
    ]
    return max(earlier, key=lambda h: h.revision) if earlier else None
