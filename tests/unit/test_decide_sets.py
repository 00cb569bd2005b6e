"""Set decisions (voiyd.server.decide_sets): command + the Set's view -> Set event or error.

Views are folded from real events (``evolve_set``), so a decision is checked against what the
projection would hold; a decided event is folded back to check what it means.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from voiyd.api import requests as rq
from voiyd.api.specs import SetDoc, VolumeDoc
from voiyd.api.views import SetView, VolumeView
from voiyd.errors import AlreadyExistsError, ConflictError, InvalidRequestError, NotFoundError
from voiyd.events import models as ev
from voiyd.events.fold import SetEvent, evolve_set, fold_set
from voiyd.server.decide import Context, Decision
from voiyd.server.decide_sets import (
    decide_apply,
    decide_create,
    decide_delete,
    decide_restart,
    decide_scale,
    decide_undo,
    decide_update,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
CTX = Context(now=NOW, event_id="ev-new", actor="tester")
DATA = VolumeView(
    meta={"name": "data"},
    config={"type": "host-local", "node": "n1"},
    revision=1,
    created_at=T0,
    updated_at=T0,
)
VOLUMES: dict[str, VolumeView] = {"data": DATA}


def doc(image: str = "nginx:1", replicas: int = 3, **template: Any) -> SetDoc:
    return SetDoc.model_validate(
        {
            "meta": {"name": "web", "labels": {"app": "web"}},
            "config": {
                "replicas": replicas,
                "template": {"image": image, **template},
                "update": {"max_parallel": 2},
            },
        }
    )


def fold(*events: SetEvent, view: SetView | None = None) -> SetView:
    for seq, event in enumerate(events, start=1):
        view = evolve_set(view, event, seq)
    assert view is not None
    return view


def created(d: SetDoc | None = None) -> ev.SetCreated:
    data = ev.SetSpecData.from_doc(d or doc())
    return ev.SetCreated(id="c", at=T0, actor="t", data=data)


def updated(image: str, cause: str = "") -> ev.SetUpdated:
    data = ev.SetSpecData.from_doc(doc(image), cause=cause)
    return ev.SetUpdated(id="u", at=T0, actor="t", data=data)


def after(view: SetView | None, decision: Decision, seq: int = 99) -> SetView:
    assert decision.event is not None
    out = fold_set(view, decision.event, seq)
    assert out is not None
    return out


# ---- create, apply, update --------------------------------------------------------------------


def test_create_makes_set_created_expecting_no_earlier_event() -> None:
    decision = decide_create(rq.CreateSet(set=doc()), None, 0, CTX, VOLUMES.get)
    assert isinstance(decision.event, ev.SetCreated)
    assert decision.expected_revision == 0
    assert (decision.event.id, decision.event.actor, decision.event.at) == ("ev-new", "tester", NOW)
    view = after(None, decision)
    assert (view.config.replicas, view.status.template_revision) == (3, 1)


def test_create_of_an_existing_set_is_already_exists() -> None:
    with pytest.raises(AlreadyExistsError, match="'web' already exists"):
        decide_create(rq.CreateSet(set=doc()), fold(created()), 1, CTX, VOLUMES.get)


def test_create_refuses_a_mount_of_a_volume_that_does_not_exist() -> None:
    cmd = rq.CreateSet(set=doc(mounts=["data:/data", "ghost:/ghost"]))
    with pytest.raises(InvalidRequestError) as caught:
        decide_create(cmd, None, 0, CTX, VOLUMES.get)
    assert [f.loc for f in caught.value.fields] == ["set.config.template.mounts.1.source"]
    assert "volume 'ghost' does not exist" in caught.value.message


def test_create_accepts_mounts_of_existing_volumes_and_bind_mounts() -> None:
    cmd = rq.CreateSet(set=doc(mounts=["data:/data", "/srv:/srv:ro"]))
    assert decide_create(cmd, None, 0, CTX, VOLUMES.get).event is not None


def test_apply_creates_when_missing_then_changes_nothing_when_the_same() -> None:
    first = decide_apply(rq.ApplySet(set=doc()), None, 0, CTX, VOLUMES.get)
    assert isinstance(first.event, ev.SetCreated)
    again = decide_apply(rq.ApplySet(set=doc()), after(None, first), 99, CTX, VOLUMES.get)
    assert again == Decision(None, 99)


@pytest.mark.parametrize(
    ("changed", "new_revision"),
    [
        pytest.param(doc("nginx:2"), True, id="template"),
        pytest.param(doc(replicas=5), False, id="replicas"),
        pytest.param(
            SetDoc.model_validate(
                {**doc().model_dump(), "meta": {"name": "web", "labels": {"app": "x"}}}
            ),
            False,
            id="labels",
        ),
    ],
)
def test_update_appends_set_updated_and_only_a_new_template_is_a_new_revision(
    changed: SetDoc, new_revision: bool
) -> None:
    view = fold(created())
    decision = decide_update(rq.UpdateSet(set=changed), view, 1, CTX, VOLUMES.get)
    assert isinstance(decision.event, ev.SetUpdated)
    assert decision.event.data.cause == ""
    assert after(view, decision).status.template_revision == (2 if new_revision else 1)


def test_update_of_a_missing_set_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="set 'web' not found"):
        decide_update(rq.UpdateSet(set=doc()), None, 0, CTX, VOLUMES.get)


@pytest.mark.parametrize(
    "decide",
    [
        pytest.param(
            lambda v: decide_update(
                rq.UpdateSet(set=doc("x:1"), expected_revision=1), v, 4, CTX, VOLUMES.get
            ),
            id="update",
        ),
        pytest.param(
            lambda v: decide_apply(
                rq.ApplySet(set=doc("x:1"), expected_revision=1), v, 4, CTX, VOLUMES.get
            ),
            id="apply",
        ),
        pytest.param(
            lambda v: decide_delete(rq.DeleteSet(name="web", expected_revision=1), v, 4, CTX),
            id="delete",
        ),
        pytest.param(
            lambda v: decide_scale(
                rq.ScaleSet(name="web", replicas=1, expected_revision=1), v, 4, CTX
            ),
            id="scale",
        ),
        pytest.param(
            lambda v: decide_undo(rq.UndoSet(name="web", expected_revision=1), v, 4, CTX), id="undo"
        ),
        pytest.param(
            lambda v: decide_restart(rq.RestartSet(name="web", expected_revision=1), v, 4, CTX),
            id="restart",
        ),
    ],
)
def test_every_set_write_is_conflict_on_a_stale_expected_revision(decide: Any) -> None:
    view = fold(created(), updated("nginx:2"))
    with pytest.raises(ConflictError, match="set 'web' is at revision 4, not 1"):
        decide(view)


# ---- delete, scale, restart -------------------------------------------------------------------


def test_delete_makes_set_deleted_and_of_a_missing_set_is_not_found() -> None:
    decision = decide_delete(rq.DeleteSet(name="web"), fold(created()), 1, CTX)
    assert isinstance(decision.event, ev.SetDeleted)
    assert fold_set(fold(created()), decision.event, 2) is None
    with pytest.raises(NotFoundError):
        decide_delete(rq.DeleteSet(name="web"), None, 2, CTX)


def test_scale_to_another_count_appends_set_scaled_and_to_the_same_nothing() -> None:
    view = fold(created())
    decision = decide_scale(rq.ScaleSet(name="web", replicas=6), view, 1, CTX)
    assert isinstance(decision.event, ev.SetScaled)
    assert after(view, decision).config.replicas == 6
    assert after(view, decision).status.template_revision == 1
    assert decide_scale(rq.ScaleSet(name="web", replicas=3), view, 1, CTX) == Decision(None, 1)


def test_restart_always_makes_a_new_revision_with_the_same_template() -> None:
    view = fold(created())
    decision = decide_restart(rq.RestartSet(name="web"), view, 1, CTX)
    assert isinstance(decision.event, ev.SetRestarted)
    restarted = after(view, decision)
    assert restarted.status.template_revision == 2
    assert restarted.config.template == view.config.template
    assert restarted.history[-1].cause == "restart"


# ---- undo ---------------------------------------------------------------------------------------


def history_of_three() -> SetView:
    """Revisions 1 (nginx:1), 2 (nginx:2), 3 (nginx:3)."""
    return fold(created(), updated("nginx:2"), updated("nginx:3"))


def test_undo_goes_back_to_the_revision_before_the_current_as_a_new_revision() -> None:
    view = history_of_three()
    decision = decide_undo(rq.UndoSet(name="web"), view, 3, CTX)
    assert isinstance(decision.event, ev.SetUpdated)
    assert decision.event.data.cause == "rollback to revision 2"
    assert decision.event.data.config.replicas == view.config.replicas
    rolled = after(view, decision)
    assert rolled.config.template.image == "nginx:2"
    assert rolled.status.template_revision == 4
    assert rolled.history[-1].cause == "rollback to revision 2"


def test_undo_to_a_named_revision() -> None:
    decision = decide_undo(rq.UndoSet(name="web", to_revision=1), history_of_three(), 3, CTX)
    assert isinstance(decision.event, ev.SetUpdated)
    assert decision.event.data.config.template.image == "nginx:1"
    assert decision.event.data.cause == "rollback to revision 1"


def test_undo_to_an_unknown_revision_is_invalid_listing_the_known_ones() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decide_undo(rq.UndoSet(name="web", to_revision=9), history_of_three(), 3, CTX)
    assert [f.loc for f in caught.value.fields] == ["to_revision"]
    assert "no revision 9; known revisions: 1, 2, 3" in caught.value.message


def test_undo_with_no_earlier_revision_is_invalid() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decide_undo(rq.UndoSet(name="web"), fold(created()), 1, CTX)
    assert [f.loc for f in caught.value.fields] == ["to_revision"]
    assert "no earlier revision with another template" in caught.value.message


def test_undo_after_a_restart_skips_the_restarts_repeat_of_the_same_template() -> None:
    view = history_of_three()
    restarted = after(view, decide_restart(rq.RestartSet(name="web"), view, 3, CTX), seq=4)
    assert restarted.status.template_revision == 4  # same template as revision 3
    decision = decide_undo(rq.UndoSet(name="web"), restarted, 4, CTX)
    assert isinstance(decision.event, ev.SetUpdated)
    assert decision.event.data.cause == "rollback to revision 2"


def test_undo_to_the_current_template_changes_nothing() -> None:
    view = history_of_three()
    assert decide_undo(rq.UndoSet(name="web", to_revision=3), view, 3, CTX) == Decision(None, 3)


def test_undo_after_a_rollback_goes_back_to_the_revision_before_it() -> None:
    view = history_of_three()
    rolled = after(view, decide_undo(rq.UndoSet(name="web"), view, 3, CTX), seq=4)
    again = decide_undo(rq.UndoSet(name="web"), rolled, 4, CTX)
    assert again.event is not None
    assert isinstance(again.event, ev.SetUpdated)
    assert again.event.data.config.template.image == "nginx:3"


def test_undo_of_a_missing_set_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        decide_undo(rq.UndoSet(name="web"), None, 0, CTX)


def test_a_volume_doc_is_what_the_mount_check_reads() -> None:
    """The lookup is any ``name -> view``; a template volume without a node may be mounted."""
    tmpl = VolumeDoc.model_validate(
        {"meta": {"name": "conf"}, "config": {"type": "template", "files": {"a.conf": "x"}}}
    )
    view = VolumeView(meta=tmpl.meta, config=tmpl.config, revision=2, created_at=T0, updated_at=T0)
    cmd = rq.CreateSet(set=doc(mounts=["conf:/etc/conf:ro", "data:/data"]))
    assert decide_create(cmd, None, 0, CTX, {"conf": view, "data": DATA}.get).event is not None
