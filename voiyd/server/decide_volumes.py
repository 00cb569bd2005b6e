"""CORE: volume commands + the volume's view -> the volume event to append, or a ``VoiydError``.

A volume's type and node never change (its data lives there); labels and a template's files
may. A host-local volume names a node voiyd knows. A volume that a task or a Set mounts cannot
be deleted (``conflict``, naming them): voiyd never forgets data that is still in use.
Pure, like ``voiyd.server.decide``; what is known about nodes and users comes in as values.
"""

from __future__ import annotations

from collections.abc import Sequence

from voiyd.api import requests as rq
from voiyd.api.specs import VolumeDoc
from voiyd.api.views import VolumeView
from voiyd.errors import AlreadyExistsError, ConflictError, FieldError, InvalidRequestError
from voiyd.events import models as ev
from voiyd.server.decide import Context, Decision, check_expected, require

KIND = "volume"
_USERS_SHOWN = 10


def _invalid(loc: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{loc}: {message}", [FieldError(loc, message)])


def _check_node(doc: VolumeDoc, node_known: bool) -> None:
    node = doc.config.node
    if node is not None and not node_known:
        raise _invalid(
            "volume.config.node",
            f"node {node!r} is unknown: name a node that has joined (voiydctl get nodes)",
        )


def _created(doc: VolumeDoc, revision: int, ctx: Context) -> Decision:
    data = ev.VolumeSpecData.from_doc(doc)
    return Decision(ev.VolumeCreated(**ctx.envelope, data=data), revision)


def _updated(view: VolumeView, doc: VolumeDoc, revision: int, ctx: Context) -> Decision:
    old, new = view.config, doc.config
    if new.type != old.type:
        raise _invalid(
            "volume.config.type",
            f"a volume's type never changes (it is {old.type}): delete it and create it again",
        )
    if new.node != old.node:
        raise _invalid(
            "volume.config.node",
            f"a volume's node never changes (it is {old.node or 'none'}): its data lives there",
        )
    if view.meta == doc.meta and old == new:
        return Decision(None, revision)
    data = ev.VolumeSpecData.from_doc(doc)
    return Decision(ev.VolumeUpdated(**ctx.envelope, data=data), revision)


def decide_create(
    cmd: rq.CreateVolume,
    current: VolumeView | None,
    revision: int,
    ctx: Context,
    node_known: bool,
) -> Decision:
    """``node_known``: the volume's node (if it names one) has joined and is not deleted."""
    name = cmd.volume.name
    if current is not None:
        raise AlreadyExistsError(f"volume {name!r} already exists (revision {current.revision})")
    check_expected(cmd, revision, KIND, name)
    _check_node(cmd.volume, node_known)
    return _created(cmd.volume, revision, ctx)


def decide_apply(
    cmd: rq.ApplyVolume,
    current: VolumeView | None,
    revision: int,
    ctx: Context,
    node_known: bool,
) -> Decision:
    check_expected(cmd, revision, KIND, cmd.volume.name)
    if current is None:
        _check_node(cmd.volume, node_known)
        return _created(cmd.volume, revision, ctx)
    return _updated(current, cmd.volume, revision, ctx)


def in_use_message(name: str, users: Sequence[str]) -> str:
    """``volume data is in use by task db-1, set web: delete or change them first``."""
    shown = ", ".join(u.replace("/", " ", 1) for u in users[:_USERS_SHOWN])
    more = f" and {len(users) - _USERS_SHOWN} more" if len(users) > _USERS_SHOWN else ""
    return f"volume {name} is in use by {shown}{more}: delete or change them first"


def decide_delete(
    cmd: rq.DeleteVolume,
    current: VolumeView | None,
    revision: int,
    ctx: Context,
    used_by: Sequence[str],
) -> Decision:
    """``used_by``: ``task/<name>`` and ``set/<name>`` of everything that mounts the volume."""
    require(current, KIND, cmd.name)
    check_expected(cmd, revision, KIND, cmd.name)
    if used_by:
        raise ConflictError(in_use_message(cmd.name, used_by))
    return Decision(ev.VolumeDeleted(**ctx.envelope, data=ev.VolumeRef(name=cmd.name)), revision)
