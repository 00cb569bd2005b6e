"""Node decisions (voiyd.server.decide_nodes): cordon, uncordon, drain, label, delete.

Each decided event is folded with ``evolve_node`` to check what it means; each command is a
no-op when the node is already so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voiyd.api import requests as rq
from voiyd.api.views import NodeView
from voiyd.errors import ConflictError, InvalidRequestError, NotFoundError
from voiyd.events import models as ev
from voiyd.events.fold import evolve_node, fold_node
from voiyd.server.decide import Context, Decision
from voiyd.server.decide_nodes import (
    decide_cordon,
    decide_delete,
    decide_drain,
    decide_label,
    decide_uncordon,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
CTX = Context(now=NOW, event_id="ev-new", actor="tester")
REV = 5


def node(**changes: Any) -> NodeView:
    data = ev.NodeJoinedData(name="n1", labels={"voiyd.io/os": "linux", "disk": "ssd"})
    joined = evolve_node(None, ev.NodeJoined(id="j", at=T0, actor="t", data=data), REV)
    assert joined is not None
    return joined.model_copy(update=changes)


def after(view: NodeView, decision: Decision) -> NodeView:
    assert decision.event is not None
    out = fold_node(view, decision.event, REV + 1)
    assert out is not None
    return out


def test_cordon_makes_the_node_unschedulable_once() -> None:
    decision = decide_cordon(rq.CordonNode(name="n1"), node(), REV, CTX)
    assert isinstance(decision.event, ev.NodeCordoned)
    cordoned = after(node(), decision)
    assert cordoned.schedulable is False
    assert decide_cordon(rq.CordonNode(name="n1"), cordoned, REV, CTX) == Decision(None, REV)


def test_uncordon_makes_it_schedulable_and_ends_a_drain() -> None:
    ready = node()
    assert decide_uncordon(rq.UncordonNode(name="n1"), ready, REV, CTX) == Decision(None, REV)
    draining = node(phase="draining", schedulable=False, drain_deadline=NOW)
    back = after(draining, decide_uncordon(rq.UncordonNode(name="n1"), draining, REV, CTX))
    assert (back.phase, back.schedulable, back.drain_deadline) == ("ready", True, None)


def test_drain_with_a_deadline_sets_it_from_now() -> None:
    decision = decide_drain(rq.DrainNode(name="n1", deadline_s=300), node(), REV, CTX)
    assert isinstance(decision.event, ev.NodeDraining)
    assert decision.event.data.deadline_at == NOW + timedelta(minutes=5)
    drained = after(node(), decision)
    assert (drained.phase, drained.schedulable) == ("draining", False)
    assert drained.drain_deadline == NOW + timedelta(minutes=5)


def test_drain_of_a_draining_node_without_a_deadline_changes_nothing() -> None:
    draining = node(phase="draining", schedulable=False)
    assert decide_drain(rq.DrainNode(name="n1"), draining, REV, CTX) == Decision(None, REV)
    with_deadline = decide_drain(rq.DrainNode(name="n1", deadline_s=60), draining, REV, CTX)
    assert isinstance(with_deadline.event, ev.NodeDraining)


def test_label_sets_and_removes_and_appends_the_full_map() -> None:
    cmd = rq.LabelNode(name="n1", labels={"zone": "a", "disk": None})
    decision = decide_label(cmd, node(), REV, CTX)
    assert isinstance(decision.event, ev.NodeLabeled)
    assert decision.event.data.labels == {"voiyd.io/os": "linux", "zone": "a"}


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param({"disk": "ssd"}, id="same-value"),
        pytest.param({"gone": None}, id="remove-missing"),
    ],
)
def test_label_that_changes_nothing_appends_nothing(labels: dict[str, str | None]) -> None:
    cmd = rq.LabelNode(name="n1", labels=labels)
    assert decide_label(cmd, node(), REV, CTX) == Decision(None, REV)


@pytest.mark.parametrize(
    ("labels", "loc"),
    [
        pytest.param({"bad key": "x"}, "labels.bad key", id="key-with-space"),
        pytest.param({"zone": "a b"}, "labels.zone", id="value-with-space"),
        pytest.param({"-x": None}, "labels.-x", id="bad-key-removed"),
        pytest.param({}, "labels", id="no-change-given"),
    ],
)
def test_label_with_a_bad_label_is_invalid_naming_it(
    labels: dict[str, str | None], loc: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decide_label(rq.LabelNode(name="n1", labels=labels), node(), REV, CTX)
    assert [f.loc for f in caught.value.fields] == [loc]


def test_delete_of_an_idle_or_gone_node_appends_node_deleted() -> None:
    for view in (node(), node(phase="lost")):
        decision = decide_delete(rq.DeleteNode(name="n1"), view, REV, CTX, [])
        assert isinstance(decision.event, ev.NodeDeleted)
    lost_with_tasks = decide_delete(rq.DeleteNode(name="n1"), node(phase="lost"), REV, CTX, ["a"])
    assert isinstance(lost_with_tasks.event, ev.NodeDeleted)


@pytest.mark.parametrize("phase", ["ready", "draining"])
def test_delete_of_a_live_node_with_tasks_is_conflict_unless_forced(phase: str) -> None:
    view = node(phase=phase)
    with pytest.raises(ConflictError) as caught:
        decide_delete(rq.DeleteNode(name="n1"), view, REV, CTX, ["web-1", "web-2"])
    assert "runs 2 task(s) (web-1, web-2): drain it or stop its agent first" in str(caught.value)
    forced = decide_delete(rq.DeleteNode(name="n1", force=True), view, REV, CTX, ["web-1"])
    assert isinstance(forced.event, ev.NodeDeleted)


@pytest.mark.parametrize(
    "decide",
    [
        pytest.param(lambda v: decide_cordon(rq.CordonNode(name="n1"), v, 0, CTX), id="cordon"),
        pytest.param(lambda v: decide_drain(rq.DrainNode(name="n1"), v, 0, CTX), id="drain"),
        pytest.param(
            lambda v: decide_label(rq.LabelNode(name="n1", labels={"a": "b"}), v, 0, CTX),
            id="label",
        ),
        pytest.param(lambda v: decide_delete(rq.DeleteNode(name="n1"), v, 0, CTX, []), id="delete"),
    ],
)
def test_node_writes_of_an_unknown_node_are_not_found(decide: Any) -> None:
    with pytest.raises(NotFoundError, match="node 'n1' not found"):
        decide(None)


def test_node_writes_are_conflict_on_a_stale_expected_revision() -> None:
    with pytest.raises(ConflictError, match="node 'n1' is at revision 5, not 2"):
        decide_cordon(rq.CordonNode(name="n1", expected_revision=2), node(), REV, CTX)
