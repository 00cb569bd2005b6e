"""CORE: an operator's node commands + the node's view -> the node event to append, or an error.

``cordon``/``uncordon`` flip ``schedulable``; ``drain`` is ``node.draining`` with an optional
deadline (the scheduler moves the tasks away); ``label`` appends the complete new label map;
``delete`` refuses a node whose agent is alive and still holds tasks unless forced. Each is a
no-op (nothing appended, ``changed: false``) when the node is already so. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from voiyd.api import requests as rq
from voiyd.api.labels import MAX_LABELS, label_key_problem, label_value_problem
from voiyd.api.views import NodeView
from voiyd.errors import ConflictError, FieldError, InvalidRequestError
from voiyd.events import models as ev
from voiyd.server.decide import Context, Decision, check_expected, require

KIND = "node"
_ALIVE = ("ready", "draining")
_TASKS_SHOWN = 5


def _node(cmd: rq.NamedNode, current: NodeView | None, revision: int) -> NodeView:
    node = require(current, KIND, cmd.name)
    check_expected(cmd, revision, KIND, cmd.name)
    return node


def decide_cordon(
    cmd: rq.CordonNode, current: NodeView | None, revision: int, ctx: Context
) -> Decision:
    node = _node(cmd, current, revision)
    if not node.schedulable:
        return Decision(None, revision)
    return Decision(ev.NodeCordoned(**ctx.envelope, data=ev.NodeRef(name=cmd.name)), revision)


def decide_uncordon(
    cmd: rq.UncordonNode, current: NodeView | None, revision: int, ctx: Context
) -> Decision:
    node = _node(cmd, current, revision)
    if node.schedulable and node.phase != "draining":
        return Decision(None, revision)
    return Decision(ev.NodeUncordoned(**ctx.envelope, data=ev.NodeRef(name=cmd.name)), revision)


def decide_drain(
    cmd: rq.DrainNode, current: NodeView | None, revision: int, ctx: Context
) -> Decision:
    node = _node(cmd, current, revision)
    deadline = ctx.now + timedelta(seconds=cmd.deadline_s) if cmd.deadline_s else None
    if node.phase == "draining" and node.drain_deadline == deadline:
        return Decision(None, revision)
    data = ev.NodeDrainData(name=cmd.name, deadline_at=deadline)
    return Decision(ev.NodeDraining(**ctx.envelope, data=data), revision)


def _labels_after(labels: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    """``labels`` with ``changes`` made (None removes), or ``invalid`` naming each bad label."""
    if not changes:
        raise InvalidRequestError(
            "labels: give at least one change (k=v sets a label, k- removes it)",
            [FieldError("labels", "no label changes given")],
        )
    problems: list[FieldError] = []
    out = dict(labels)
    for key, value in changes.items():
        if problem := label_key_problem(key):
            problems.append(FieldError(f"labels.{key}", f"label key {key!r}: {problem}"))
        elif value is None:
            out.pop(key, None)
        elif problem := label_value_problem(value):
            problems.append(
                FieldError(f"labels.{key}", f"label {key!r} value {value!r}: {problem}")
            )
        else:
            out[key] = value
    if not problems and len(out) > MAX_LABELS:
        problems.append(FieldError("labels", f"a node has at most {MAX_LABELS} labels"))
    if problems:
        raise InvalidRequestError(f"{problems[0].loc}: {problems[0].message}", problems)
    return dict(sorted(out.items()))


def decide_label(
    cmd: rq.LabelNode, current: NodeView | None, revision: int, ctx: Context
) -> Decision:
    node = _node(cmd, current, revision)
    labels = _labels_after(node.labels, cmd.labels)
    if labels == node.labels:
        return Decision(None, revision)
    data = ev.NodeLabelsData(name=cmd.name, labels=labels)
    return Decision(ev.NodeLabeled(**ctx.envelope, data=data), revision)


def decide_delete(
    cmd: rq.DeleteNode,
    current: NodeView | None,
    revision: int,
    ctx: Context,
    tasks_on_node: Sequence[str],
) -> Decision:
    """``tasks_on_node``: the tasks that hold resources on the node (placed, not settled)."""
    node = _node(cmd, current, revision)
    if node.phase in _ALIVE and tasks_on_node and not cmd.force:
        shown = ", ".join(tasks_on_node[:_TASKS_SHOWN])
        more = (
            f" and {len(tasks_on_node) - _TASKS_SHOWN} more"
            if len(tasks_on_node) > _TASKS_SHOWN
            else ""
        )
        raise ConflictError(
            f"node {cmd.name} is {node.phase} and runs {len(tasks_on_node)} task(s) "
            f"({shown}{more}): drain it or stop its agent first, or force the delete"
        )
    return Decision(ev.NodeDeleted(**ctx.envelope, data=ev.NodeRef(name=cmd.name)), revision)
