"""CORE: commands + the current view -> the event to append (or none), or a ``VoiydError``.

Pure: the clock (``now``), the event id and the actor come in as parameters. A decision also
says which revision the append must expect, so a stale decision is refused by the log
(optimistic concurrency) instead of overwriting a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from voiyd.api import requests as rq
from voiyd.api.specs import MAX_TASK_TEMPLATE_BYTES, Meta, TaskConfig, TaskDoc, template_size
from voiyd.api.validation import parse_model
from voiyd.api.views import TaskView, VolumeView
from voiyd.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldError,
    InvalidRequestError,
    NotFoundError,
)
from voiyd.events import models as ev

V = TypeVar("V")
Volumes = Callable[[str], VolumeView | None]
"""Looks a volume up by name (None: no such volume); a ``dict``'s ``get`` will do. A decision
given ``None`` instead does not check mounts (the agents' paths, which never change configs)."""


@dataclass(frozen=True)
class Context:
    """What a decision may know besides the command and the view."""

    now: datetime
    event_id: str
    actor: str

    @property
    def envelope(self) -> dict[str, object]:
        """The envelope fields of the event a decision makes: ``Event(**ctx.envelope, ...)``."""
        return {"id": self.event_id, "at": self.now, "actor": self.actor}


@dataclass(frozen=True)
class Decision:
    event: ev.AnyEvent | None
    """None: nothing to change (the reply says ``changed: false``)."""
    expected_revision: int


def check_expected(cmd: rq.WriteOptions, revision: int, kind: str, name: str) -> None:
    """A pinned ``expected_revision`` must be the aggregate's revision (0: never existed)."""
    if cmd.expected_revision is not None and cmd.expected_revision != revision:
        raise ConflictError(
            f"{kind} {name!r} is at revision {revision}, not {cmd.expected_revision}: "
            "read it again and retry",
            actual_revision=revision,
        )


def require(current: V | None, kind: str, name: str) -> V:
    if current is None:
        raise NotFoundError(f"{kind} {name!r} not found")
    return current


def mounted_volumes(config: TaskConfig) -> list[str]:
    """Names of the volumes ``config`` mounts (bind mounts are host paths, not volumes)."""
    return [m.source for m in config.mounts if m.type == "volume"]


def check_mounts(config: TaskConfig, volumes: Volumes | None, loc: str) -> None:
    """Every volume ``config`` mounts must exist; host-local ones must all be on one node.

    ``loc`` is where ``config`` sits in the request (``task.config``), so each problem names its
    mount (``task.config.mounts.0.source``).
    """
    if volumes is None:
        return
    problems: list[FieldError] = []
    nodes: dict[str, str] = {}
    template_bytes = 0
    for i, mount in enumerate(config.mounts):
        if mount.type != "volume":
            continue
        volume = volumes(mount.source)
        if volume is None:
            problems.append(
                FieldError(
                    f"{loc}.mounts.{i}.source",
                    f"volume {mount.source!r} does not exist: create it first "
                    f"(voiydctl create volume {mount.source} --node NODE)",
                )
            )
        else:
            if volume.config.node is not None:  # pins the task, as placement reads it
                nodes.setdefault(volume.config.node, mount.source)
            template_bytes += template_size(volume.config.files)
    if len(nodes) > 1:
        pinned = ", ".join(f"{v} on {n}" for n, v in sorted(nodes.items()))
        problems.append(
            FieldError(
                f"{loc}.mounts",
                f"volumes on different nodes cannot be mounted together ({pinned})",
            )
        )
    if template_bytes > MAX_TASK_TEMPLATE_BYTES:
        problems.append(
            FieldError(
                f"{loc}.mounts",
                f"the template volumes mounted hold {template_bytes} bytes, more than "
                f"{MAX_TASK_TEMPLATE_BYTES} (they travel in the task's assignment)",
            )
        )
    if problems:
        raise InvalidRequestError(f"{problems[0].loc}: {problems[0].message}", problems)


def _check_expected(cmd: rq.WriteOptions, revision: int, name: str) -> None:
    check_expected(cmd, revision, "task", name)


def _require(current: TaskView | None, name: str) -> TaskView:
    return require(current, "task", name)


def _spec(doc: TaskDoc) -> ev.TaskSpecData:
    return ev.TaskSpecData.from_doc(doc)


def decide_create(
    cmd: rq.CreateTask,
    current: TaskView | None,
    revision: int,
    ctx: Context,
    volumes: Volumes | None = None,
) -> Decision:
    name = cmd.task.name
    if current is not None:
        raise AlreadyExistsError(f"task {name!r} already exists (revision {current.revision})")
    _check_expected(cmd, revision, name)
    check_mounts(cmd.task.config, volumes, "task.config")
    event = ev.TaskCreated(id=ctx.event_id, at=ctx.now, actor=ctx.actor, data=_spec(cmd.task))
    return Decision(event, revision)


def _same(current: TaskView, doc: TaskDoc) -> bool:
    return current.meta == doc.meta and current.config == doc.config


def _update(current: TaskView, doc: TaskDoc, revision: int, ctx: Context) -> Decision:
    if _same(current, doc):
        return Decision(None, revision)
    event = ev.TaskUpdated(id=ctx.event_id, at=ctx.now, actor=ctx.actor, data=_spec(doc))
    return Decision(event, revision)


def decide_apply(
    cmd: rq.ApplyTask,
    current: TaskView | None,
    revision: int,
    ctx: Context,
    volumes: Volumes | None = None,
) -> Decision:
    _check_expected(cmd, revision, cmd.task.name)
    check_mounts(cmd.task.config, volumes, "task.config")
    if current is None:
        event = ev.TaskCreated(id=ctx.event_id, at=ctx.now, actor=ctx.actor, data=_spec(cmd.task))
        return Decision(event, revision)
    return _update(current, cmd.task, revision, ctx)


def decide_update(
    cmd: rq.UpdateTask,
    current: TaskView | None,
    revision: int,
    ctx: Context,
    volumes: Volumes | None = None,
) -> Decision:
    task = _require(current, cmd.task.name)
    _check_expected(cmd, revision, cmd.task.name)
    check_mounts(cmd.task.config, volumes, "task.config")
    return _update(task, cmd.task, revision, ctx)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch: maps merge recursively, ``None`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def decide_patch(
    cmd: rq.PatchTask,
    current: TaskView | None,
    revision: int,
    ctx: Context,
    volumes: Volumes | None = None,
) -> Decision:
    task = _require(current, cmd.name)
    _check_expected(cmd, revision, cmd.name)
    labels = dict(task.meta.labels)
    for key, value in cmd.labels.items():
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
    # No prefix: Meta's own loc is already ``labels``, the patch request's field of that name.
    meta = parse_model(Meta, {"name": cmd.name, "labels": labels})
    config_doc = merge_patch(task.config.model_dump(mode="json"), cmd.config)
    config = parse_model(TaskConfig, config_doc, prefix="config")
    if not cmd.labels and not cmd.config:
        raise InvalidRequestError("patch changes nothing: give labels and/or config")
    if config.mounts != task.config.mounts:
        check_mounts(config, volumes, "config")
    return _update(task, TaskDoc(meta=meta, config=config), revision, ctx)


def decide_delete(
    cmd: rq.DeleteTask, current: TaskView | None, revision: int, ctx: Context
) -> Decision:
    _require(current, cmd.name)
    _check_expected(cmd, revision, cmd.name)
    event = ev.TaskDeleted(
        id=ctx.event_id, at=ctx.now, actor=ctx.actor, data=ev.TaskRef(name=cmd.name)
    )
    return Decision(event, revision)


def decide_start(
    cmd: rq.StartTask, current: TaskView | None, revision: int, ctx: Context
) -> Decision:
    task = _require(current, cmd.name)
    _check_expected(cmd, revision, cmd.name)
    settled = task.status.phase in ("stopped", "exited", "failed", "stopping")
    if task.status.desired == "running" and not settled:
        return Decision(None, revision)
    event = ev.TaskStartRequested(
        id=ctx.event_id, at=ctx.now, actor=ctx.actor, data=ev.TaskRef(name=cmd.name)
    )
    return Decision(event, revision)


def decide_stop(
    cmd: rq.StopTask, current: TaskView | None, revision: int, ctx: Context
) -> Decision:
    task = _require(current, cmd.name)
    _check_expected(cmd, revision, cmd.name)
    if task.status.desired == "stopped":
        return Decision(None, revision)
    event = ev.TaskStopRequested(
        id=ctx.event_id, at=ctx.now, actor=ctx.actor, data=ev.TaskRef(name=cmd.name)
    )
    return Decision(event, revision)
