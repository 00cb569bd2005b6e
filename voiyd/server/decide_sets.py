"""CORE: Set commands + the Set's view -> the Set event to append (or none), or a ``VoiydError``.

The server appends only the Set's own events (``set.created``, ``set.updated``, ``set.scaled``,
``set.restarted``, ``set.deleted``); the Set controller in voiyd-scheduler turns them into its
member tasks' events. ``rollout undo`` is a ``set.updated`` carrying an older template from the
Set's history, with ``cause: "rollback to revision N"``. Pure, like ``voiyd.server.decide``.
"""

from __future__ import annotations

from voiyd.api import requests as rq
from voiyd.api.members import previous_template
from voiyd.api.specs import SetDoc
from voiyd.api.views import SetRevision, SetView
from voiyd.errors import AlreadyExistsError, FieldError, InvalidRequestError
from voiyd.events import models as ev
from voiyd.server.decide import (
    Context,
    Decision,
    Volumes,
    check_expected,
    check_mounts,
    require,
)

KIND = "set"
_TEMPLATE_LOC = "set.config.template"


def _created(doc: SetDoc, revision: int, ctx: Context) -> Decision:
    return Decision(ev.SetCreated(**ctx.envelope, data=ev.SetSpecData.from_doc(doc)), revision)


def _updated(view: SetView, doc: SetDoc, revision: int, ctx: Context) -> Decision:
    if view.meta == doc.meta and view.config == doc.config:
        return Decision(None, revision)
    return Decision(ev.SetUpdated(**ctx.envelope, data=ev.SetSpecData.from_doc(doc)), revision)


def decide_create(
    cmd: rq.CreateSet, current: SetView | None, revision: int, ctx: Context, volumes: Volumes
) -> Decision:
    name = cmd.set.name
    if current is not None:
        raise AlreadyExistsError(f"set {name!r} already exists (revision {current.revision})")
    check_expected(cmd, revision, KIND, name)
    check_mounts(cmd.set.config.template, volumes, _TEMPLATE_LOC)
    return _created(cmd.set, revision, ctx)


def decide_apply(
    cmd: rq.ApplySet, current: SetView | None, revision: int, ctx: Context, volumes: Volumes
) -> Decision:
    check_expected(cmd, revision, KIND, cmd.set.name)
    check_mounts(cmd.set.config.template, volumes, _TEMPLATE_LOC)
    if current is None:
        return _created(cmd.set, revision, ctx)
    return _updated(current, cmd.set, revision, ctx)


def decide_update(
    cmd: rq.UpdateSet, current: SetView | None, revision: int, ctx: Context, volumes: Volumes
) -> Decision:
    view = require(current, KIND, cmd.set.name)
    check_expected(cmd, revision, KIND, cmd.set.name)
    check_mounts(cmd.set.config.template, volumes, _TEMPLATE_LOC)
    return _updated(view, cmd.set, revision, ctx)


def decide_delete(
    cmd: rq.DeleteSet, current: SetView | None, revision: int, ctx: Context
) -> Decision:
    require(current, KIND, cmd.name)
    check_expected(cmd, revision, KIND, cmd.name)
    return Decision(ev.SetDeleted(**ctx.envelope, data=ev.SetRef(name=cmd.name)), revision)


def decide_scale(
    cmd: rq.ScaleSet, current: SetView | None, revision: int, ctx: Context
) -> Decision:
    view = require(current, KIND, cmd.name)
    check_expected(cmd, revision, KIND, cmd.name)
    if view.config.replicas == cmd.replicas:
        return Decision(None, revision)
    data = ev.SetScaledData(name=cmd.name, replicas=cmd.replicas)
    return Decision(ev.SetScaled(**ctx.envelope, data=data), revision)


def decide_restart(
    cmd: rq.RestartSet, current: SetView | None, revision: int, ctx: Context
) -> Decision:
    require(current, KIND, cmd.name)
    check_expected(cmd, revision, KIND, cmd.name)
    return Decision(ev.SetRestarted(**ctx.envelope, data=ev.SetRef(name=cmd.name)), revision)


def _undo_target(view: SetView, to_revision: int | None) -> SetRevision:
    """The history entry ``rollout undo`` goes back to, or ``invalid`` naming ``to_revision``."""
    listed = ", ".join(str(h.revision) for h in view.history) or "none"
    if to_revision is None:
        previous = previous_template(view)
        if previous is not None:
            return previous
        problem = (
            f"set {view.meta.name!r} has no earlier revision with another template to go back to"
        )
    else:
        for entry in view.history:
            if entry.revision == to_revision:
                return entry
        problem = f"set {view.meta.name!r} has no revision {to_revision}"
    message = f"{problem}; known revisions: {listed}"
    raise InvalidRequestError(f"to_revision: {message}", [FieldError("to_revision", message)])


def decide_undo(cmd: rq.UndoSet, current: SetView | None, revision: int, ctx: Context) -> Decision:
    """``set.updated`` back to an earlier template (a new revision); nothing if it is the same."""
    view = require(current, KIND, cmd.name)
    check_expected(cmd, revision, KIND, cmd.name)
    target = _undo_target(view, cmd.to_revision)
    if target.template == view.config.template:
        return Decision(None, revision)
    config = view.config.model_copy(update={"template": target.template})
    data = ev.SetSpecData.model_construct(
        name=view.meta.name,
        labels=view.meta.labels,
        config=config,
        cause=f"rollback to revision {target.revision}",
    )
    return Decision(ev.SetUpdated(**ctx.envelope, data=data), revision)
