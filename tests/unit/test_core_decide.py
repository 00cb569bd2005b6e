"""The server's decisions (voiyd.server.decide): command + current view -> event or error.

Views are built by folding real events (``evolve_task``) or by setting a status directly;
every decision is checked for the event it makes and the revision its append must expect.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from voiyd.api import requests as rq
from voiyd.api.specs import TaskDoc
from voiyd.api.views import TaskStatus, TaskView
from voiyd.errors import AlreadyExistsError, ConflictError, InvalidRequestError, NotFoundError
from voiyd.events import models as ev
from voiyd.events.fold import evolve_task, fold_task
from voiyd.server.decide import (
    Context,
    decide_apply,
    decide_create,
    decide_delete,
    decide_patch,
    decide_start,
    decide_stop,
    decide_update,
    merge_patch,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
CTX = Context(now=NOW, event_id="ev-new", actor="tester")
REV = 7
"""The revision of the current view in these tests."""


def spec(name: str = "web", labels: dict[str, str] | None = None, **config: Any) -> TaskDoc:
    return TaskDoc.model_validate(
        {
            "meta": {"name": name, "labels": {"app": "web"} if labels is None else labels},
            "config": {
                "image": "nginx:alpine",
                "env": {"MODE": "prod"},
                "resources": {"cpus": 0.5, "memory": "64Mi"},
                "health": {"type": "tcp", "port": 80},
                **config,
            },
        }
    )


def current(
    doc: TaskDoc | None = None, phase: str = "pending", desired: str = "running"
) -> TaskView:
    """The view of ``doc`` as created at revision ``REV``, with the given phase and desire."""
    doc = doc or spec()
    created = ev.TaskCreated(id="ev-0", at=T0, actor="t", data=ev.TaskSpecData.from_doc(doc))
    view = evolve_task(None, created, REV)
    assert view is not None
    return view.model_copy(
        update={"status": TaskStatus.model_validate({"phase": phase, "desired": desired})}
    )


# ---- create -----------------------------------------------------------------------------------


def test_create_makes_task_created_expecting_no_earlier_event() -> None:
    decision = decide_create(rq.CreateTask(task=spec()), None, 0, CTX)
    assert decision.expected_revision == 0
    assert decision.event == ev.TaskCreated(
        id="ev-new", at=NOW, actor="tester", data=ev.TaskSpecData.from_doc(spec())
    )


def test_create_after_delete_expects_the_deleted_revision() -> None:
    decision = decide_create(rq.CreateTask(task=spec()), None, 12, CTX)
    assert isinstance(decision.event, ev.TaskCreated)
    assert decision.expected_revision == 12


def test_create_is_already_exists_when_the_task_exists() -> None:
    with pytest.raises(AlreadyExistsError, match=f"'web' already exists \\(revision {REV}\\)"):
        decide_create(rq.CreateTask(task=spec()), current(), REV, CTX)


@pytest.mark.parametrize(
    ("expected", "revision"),
    [
        pytest.param(3, 0, id="expects-a-revision-of-a-new-task"),
        pytest.param(0, 5, id="expects-new-but-was-deleted"),
    ],
)
def test_create_is_conflict_when_expected_revision_differs(expected: int, revision: int) -> None:
    with pytest.raises(ConflictError) as caught:
        decide_create(rq.CreateTask(task=spec(), expected_revision=expected), None, revision, CTX)
    assert caught.value.actual_revision == revision


# ---- apply ------------------------------------------------------------------------------------


def test_apply_creates_when_missing() -> None:
    decision = decide_apply(rq.ApplyTask(task=spec()), None, 0, CTX)
    assert isinstance(decision.event, ev.TaskCreated)
    assert decision.expected_revision == 0


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(spec(labels={"app": "web", "tier": "a"}), id="labels-changed"),
        pytest.param(spec(image="nginx:1.27"), id="config-changed"),
    ],
)
def test_apply_updates_when_different(doc: TaskDoc) -> None:
    decision = decide_apply(rq.ApplyTask(task=doc), current(), REV, CTX)
    assert decision.event == ev.TaskUpdated(
        id="ev-new", at=NOW, actor="tester", data=ev.TaskSpecData.from_doc(doc)
    )
    assert decision.expected_revision == REV


def test_apply_changes_nothing_when_the_same() -> None:
    decision = decide_apply(rq.ApplyTask(task=spec()), current(), REV, CTX)
    assert (decision.event, decision.expected_revision) == (None, REV)


def test_apply_is_conflict_on_a_stale_expected_revision() -> None:
    with pytest.raises(ConflictError, match=f"at revision {REV}, not 3"):
        decide_apply(rq.ApplyTask(task=spec(), expected_revision=3), current(), REV, CTX)


# ---- update -----------------------------------------------------------------------------------


def test_update_is_not_found_when_missing() -> None:
    with pytest.raises(NotFoundError, match="'web' not found"):
        decide_update(rq.UpdateTask(task=spec()), None, 0, CTX)


def test_update_of_a_missing_task_is_not_found_even_with_an_expected_revision() -> None:
    with pytest.raises(NotFoundError):
        decide_update(rq.UpdateTask(task=spec(), expected_revision=4), None, 0, CTX)


def test_update_changes_nothing_when_the_same() -> None:
    assert decide_update(rq.UpdateTask(task=spec()), current(), REV, CTX).event is None


def test_update_makes_task_updated_with_the_whole_new_spec() -> None:
    doc = spec(image="nginx:1.27", env={})
    decision = decide_update(rq.UpdateTask(task=doc), current(), REV, CTX)
    assert isinstance(decision.event, ev.TaskUpdated)
    assert decision.event.data.config == doc.config
    assert decision.expected_revision == REV


@pytest.mark.parametrize(
    ("expected", "ok"),
    [
        pytest.param(None, True, id="unpinned"),
        pytest.param(REV, True, id="pinned-current"),
        pytest.param(REV - 1, False, id="pinned-stale"),
        pytest.param(REV + 1, False, id="pinned-future"),
    ],
)
def test_update_checks_a_pinned_expected_revision(expected: int | None, ok: bool) -> None:
    cmd = rq.UpdateTask(task=spec(image="nginx:1.27"), expected_revision=expected)
    if ok:
        assert decide_update(cmd, current(), REV, CTX).event is not None
    else:
        with pytest.raises(ConflictError) as caught:
            decide_update(cmd, current(), REV, CTX)
        assert caught.value.actual_revision == REV


# ---- merge patch (RFC 7386) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        # RFC 7386, Appendix A, in order.
        pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="rfc-replace"),
        pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="rfc-add"),
        pytest.param({"a": "b"}, {"a": None}, {}, id="rfc-remove"),
        pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="rfc-remove-one"),
        pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="rfc-list-by-scalar"),
        pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="rfc-scalar-by-list"),
        pytest.param(
            {"a": {"b": "c"}},
            {"a": {"b": "d", "c": None}},
            {"a": {"b": "d"}},
            id="rfc-nested",
        ),
        pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="rfc-lists-replace"),
        pytest.param(["a", "b"], ["c", "d"], ["c", "d"], id="rfc-list-target"),
        pytest.param({"a": "b"}, ["c"], ["c"], id="rfc-list-patch"),
        pytest.param({"a": "foo"}, None, None, id="rfc-null-patch"),
        pytest.param({"a": "foo"}, "bar", "bar", id="rfc-scalar-patch"),
        pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="rfc-null-kept-in-target"),
        pytest.param([1, 2], {"a": "b", "c": None}, {"a": "b"}, id="rfc-map-over-list"),
        pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="rfc-deep-null"),
        # And what voiyd relies on.
        pytest.param({"a": 1}, {}, {"a": 1}, id="empty-patch-keeps-all"),
        pytest.param({"a": 1}, {"b": None}, {"a": 1}, id="remove-absent-key"),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_merge_patch_does_not_change_its_inputs() -> None:
    target = {"a": {"b": 1}, "c": 2}
    patch = {"a": {"b": None, "d": 3}}
    merge_patch(target, patch)
    assert target == {"a": {"b": 1}, "c": 2}
    assert patch == {"a": {"b": None, "d": 3}}


# ---- patch ------------------------------------------------------------------------------------


def patched(**changes: Any) -> ev.TaskSpecData:
    """The spec in the event that a patch of ``current()`` decides."""
    decision = decide_patch(rq.PatchTask(name="web", **changes), current(), REV, CTX)
    assert isinstance(decision.event, ev.TaskUpdated)
    assert decision.expected_revision == REV
    return decision.event.data


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"tier": "a"}, {"app": "web", "tier": "a"}, id="add"),
        pytest.param({"app": "api"}, {"app": "api"}, id="replace"),
        pytest.param({"app": None}, {}, id="remove"),
        pytest.param({"app": None, "tier": "b"}, {"tier": "b"}, id="remove-and-add"),
    ],
)
def test_patch_merges_labels_and_none_removes_one(
    labels: dict[str, str | None], expected: dict[str, str]
) -> None:
    assert patched(labels=labels).labels == expected


def test_patch_keeps_the_config_when_only_labels_change() -> None:
    assert patched(labels={"tier": "a"}).config == spec().config


def test_patch_merges_config_maps_field_by_field() -> None:
    config = patched(config={"env": {"DEBUG": "1"}, "resources": {"memory": "128Mi"}}).config
    assert config.env == {"DEBUG": "1", "MODE": "prod"}
    assert (config.resources.cpus, config.resources.memory) == (0.5, 128 * 1024**2)


def test_patch_replaces_lists_and_none_clears_an_optional_field() -> None:
    config = patched(config={"ports": ["9090:90"], "health": None, "env": {"MODE": None}}).config
    assert [str(p) for p in config.ports] == ["9090:90/tcp"]
    assert config.health is None
    assert config.env == {}


@pytest.mark.parametrize(
    ("changes", "loc", "says"),
    [
        pytest.param({"config": {"ports": ["0:80"]}}, "config.ports.0.host", "", id="port-0"),
        pytest.param({"config": {"image": None}}, "config", "image is required", id="no-image"),
        pytest.param({"config": {"bogus": 1}}, "config.bogus", "unknown field", id="unknown"),
        pytest.param(
            {"config": {"resources": {"memory": "1Mi"}}},
            "config.resources.memory",
            "6Mi",
            id="memory-below-minimum",
        ),
        pytest.param(
            {"config": {"restart": "always:3"}}, "config.restart", "on-failure", id="restart"
        ),
        pytest.param({"config": {"runtime": "exec"}}, "config", "args", id="exec-without-args"),
        pytest.param({"labels": {"bad key": "x"}}, "labels", "'bad key'", id="label-key"),
        pytest.param({"labels": {"app": "no way"}}, "labels", "'no way'", id="label-value"),
    ],
)
def test_patch_that_would_make_an_invalid_task_names_the_field(
    changes: dict[str, Any], loc: str, says: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decide_patch(rq.PatchTask(name="web", **changes), current(), REV, CTX)
    fields = {f.loc: f.message for f in caught.value.fields}
    assert loc in fields, fields
    assert says in fields[loc]


def test_patch_with_nothing_to_change_is_invalid() -> None:
    with pytest.raises(InvalidRequestError, match="changes nothing"):
        decide_patch(rq.PatchTask(name="web"), current(), REV, CTX)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"labels": {"app": "web"}}, id="same-label"),
        pytest.param({"labels": {"absent": None}}, id="remove-absent-label"),
        pytest.param({"config": {"image": "nginx:alpine"}}, id="same-image"),
        pytest.param({"config": {"resources": {"memory": "64Mi"}}}, id="same-memory-spelled"),
    ],
)
def test_patch_to_the_same_task_changes_nothing(changes: dict[str, Any]) -> None:
    decision = decide_patch(rq.PatchTask(name="web", **changes), current(), REV, CTX)
    assert (decision.event, decision.expected_revision) == (None, REV)


def test_patch_of_a_missing_task_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        decide_patch(rq.PatchTask(name="ghost", labels={"a": "b"}), None, 0, CTX)


def test_patch_is_conflict_on_a_stale_expected_revision() -> None:
    cmd = rq.PatchTask(name="web", labels={"a": "b"}, expected_revision=REV - 1)
    with pytest.raises(ConflictError):
        decide_patch(cmd, current(), REV, CTX)


# ---- delete -----------------------------------------------------------------------------------


def test_delete_makes_task_deleted() -> None:
    decision = decide_delete(rq.DeleteTask(name="web"), current(), REV, CTX)
    assert decision.event == ev.TaskDeleted(
        id="ev-new", at=NOW, actor="tester", data=ev.TaskRef(name="web")
    )
    assert decision.expected_revision == REV


def test_delete_of_a_missing_task_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="'web' not found"):
        decide_delete(rq.DeleteTask(name="web"), None, 3, CTX)


def test_delete_is_conflict_on_a_stale_expected_revision() -> None:
    with pytest.raises(ConflictError):
        decide_delete(rq.DeleteTask(name="web", expected_revision=1), current(), REV, CTX)


def test_delete_with_the_current_expected_revision_is_decided() -> None:
    decision = decide_delete(rq.DeleteTask(name="web", expected_revision=REV), current(), REV, CTX)
    assert isinstance(decision.event, ev.TaskDeleted)


# ---- start and stop ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "desired", "starts"),
    [
        pytest.param("pending", "running", False, id="pending-is-already-starting"),
        pytest.param("scheduled", "running", False, id="scheduled"),
        pytest.param("running", "running", False, id="running"),
        pytest.param("unschedulable", "running", False, id="unschedulable-waits-for-room"),
        pytest.param("stopped", "stopped", True, id="stopped"),
        pytest.param("stopping", "stopped", True, id="stopping"),
        pytest.param("exited", "running", True, id="exited-is-started-again"),
        pytest.param("failed", "running", True, id="failed-is-started-again"),
        pytest.param("running", "stopped", True, id="stop-requested-but-still-running"),
    ],
)
def test_start_requests_a_start_unless_already_running(
    phase: str, desired: str, starts: bool
) -> None:
    decision = decide_start(
        rq.StartTask(name="web"), current(phase=phase, desired=desired), REV, CTX
    )
    expected = ev.TaskStartRequested(
        id="ev-new", at=NOW, actor="tester", data=ev.TaskRef(name="web")
    )
    assert decision.event == (expected if starts else None)
    assert decision.expected_revision == REV


@pytest.mark.parametrize(
    ("phase", "desired", "stops"),
    [
        pytest.param("pending", "running", True, id="pending"),
        pytest.param("running", "running", True, id="running"),
        pytest.param("exited", "running", True, id="exited-but-wanted-running"),
        pytest.param("stopping", "stopped", False, id="stopping-already"),
        pytest.param("stopped", "stopped", False, id="stopped-already"),
        pytest.param("exited", "stopped", False, id="exited-and-stopped"),
    ],
)
def test_stop_requests_a_stop_unless_already_wanted_stopped(
    phase: str, desired: str, stops: bool
) -> None:
    decision = decide_stop(rq.StopTask(name="web"), current(phase=phase, desired=desired), REV, CTX)
    expected = ev.TaskStopRequested(
        id="ev-new", at=NOW, actor="tester", data=ev.TaskRef(name="web")
    )
    assert decision.event == (expected if stops else None)


def test_start_and_stop_are_idempotent_when_folded() -> None:
    view = current(phase="running")
    stop = decide_stop(rq.StopTask(name="web"), view, REV, CTX)
    assert stop.event is not None
    stopping = fold_task(view, stop.event, REV + 1)
    assert decide_stop(rq.StopTask(name="web"), stopping, REV + 1, CTX).event is None
    start = decide_start(rq.StartTask(name="web"), stopping, REV + 1, CTX)
    assert start.event is not None
    starting = fold_task(stopping, start.event, REV + 2)
    assert decide_start(rq.StartTask(name="web"), starting, REV + 2, CTX).event is None


@pytest.mark.parametrize(
    "decide",
    [pytest.param(decide_start, id="start"), pytest.param(decide_stop, id="stop")],
)
def test_start_and_stop_of_a_missing_task_are_not_found(decide: Any) -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        decide(rq.StopTask(name="ghost"), None, 0, CTX)


@pytest.mark.parametrize(
    ("decide", "cmd"),
    [
        pytest.param(decide_start, rq.StartTask(name="web", expected_revision=1), id="start"),
        pytest.param(decide_stop, rq.StopTask(name="web", expected_revision=1), id="stop"),
    ],
)
def test_start_and_stop_are_conflict_on_a_stale_expected_revision(decide: Any, cmd: Any) -> None:
    with pytest.raises(ConflictError, match=f"at revision {REV}, not 1"):
        decide(cmd, current(phase="stopped", desired="stopped"), REV, CTX)


def test_no_op_is_checked_after_the_expected_revision() -> None:
    """A stale writer learns it is stale even when its command would change nothing."""
    with pytest.raises(ConflictError):
        decide_stop(
            rq.StopTask(name="web", expected_revision=1),
            current(phase="stopped", desired="stopped"),
            REV,
            CTX,
        )
