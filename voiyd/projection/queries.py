"""Read the projection: tasks, nodes, Sets and volumes by name or selector. Never touches NATS.

What a view shows about other aggregates is computed here, when it is read: a node's usage, a
Set's member counts, the tasks and Sets that mount a volume. The rows stay what the events say.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlite_utils

from voiyd.api import members
from voiyd.api.selectors import parse_selector
from voiyd.api.specs import SET_LABEL
from voiyd.api.views import NodeCapacity, NodeView, SetView, TaskView, VolumeView
from voiyd.projection.schema import TABLES

_HOLDS_RESOURCES = "phase NOT IN ('stopped','exited','failed')"
"""Tasks that count against their node: everything placed that has not settled."""


def get_task(db: sqlite_utils.Database, name: str) -> TaskView | None:
    row = db.execute("SELECT doc FROM tasks WHERE name = ?", [name]).fetchone()
    return TaskView.model_validate_json(row[0]) if row else None


def list_tasks(
    db: sqlite_utils.Database, selector: str = "", limit: int = 10_000
) -> list[TaskView]:
    sel = parse_selector(selector)
    out: list[TaskView] = []
    for (doc,) in db.execute("SELECT doc FROM tasks ORDER BY name"):
        if not sel.empty and not sel.matches(json.loads(doc)["meta"]["labels"]):
            continue
        out.append(TaskView.model_validate_json(doc))
        if len(out) >= limit:
            break
    return out


def _with_usage(db: sqlite_utils.Database, node: NodeView) -> NodeView:
    """Add what is placed on the node (task count, requested CPU and memory)."""
    cpus = 0.0
    memory = 0
    count = 0
    for (doc,) in db.execute(
        f"SELECT doc FROM tasks WHERE node = ? AND {_HOLDS_RESOURCES}",
        [node.name],
    ):
        res = json.loads(doc)["config"]["resources"]
        cpus += res.get("cpus") or 0.0
        memory += res.get("memory") or 0
        count += 1
    return node.model_copy(
        update={"tasks": count, "allocated": NodeCapacity(cpus=cpus, memory=memory)}
    )


def get_node(db: sqlite_utils.Database, name: str) -> NodeView | None:
    row = db.execute("SELECT doc FROM nodes WHERE name = ?", [name]).fetchone()
    return _with_usage(db, NodeView.model_validate_json(row[0])) if row else None


def list_nodes(
    db: sqlite_utils.Database, selector: str = "", limit: int = 10_000
) -> list[NodeView]:
    sel = parse_selector(selector)
    out: list[NodeView] = []
    for (doc,) in db.execute("SELECT doc FROM nodes ORDER BY name"):
        node = NodeView.model_validate_json(doc)
        if sel.matches(node.labels):
            out.append(_with_usage(db, node))
        if len(out) >= limit:
            break
    return out


def dump_rows(db: sqlite_utils.Database) -> dict[str, list[tuple[object, ...]]]:
    """Every projected row, ordered, for comparing a resumed projection with a rebuilt one."""
    return {
        table: [tuple(r) for r in db.execute(f"SELECT * FROM [{table}] ORDER BY 1")]
        for table in TABLES
    }


def tasks_on_node(db: sqlite_utils.Database, node: str) -> list[str]:
    """Names of the tasks that hold resources on ``node`` (placed there and not settled)."""
    rows = db.execute(f"SELECT name FROM tasks WHERE node = ? AND {_HOLDS_RESOURCES}", [node])
    return [str(name) for (name,) in rows]


# ---- sets ---------------------------------------------------------------------------------------


def _member_tasks(db: sqlite_utils.Database, set_name: str | None = None) -> list[TaskView]:
    """Tasks that carry a Set label (of ``set_name`` when given)."""
    label = f'$.meta.labels."{SET_LABEL}"'
    if set_name is None:
        sql, args = f"SELECT doc FROM tasks WHERE json_extract(doc, '{label}') IS NOT NULL", []
    else:
        sql, args = f"SELECT doc FROM tasks WHERE json_extract(doc, '{label}') = ?", [set_name]
    return [TaskView.model_validate_json(doc) for (doc,) in db.execute(sql, args)]


def _with_counts(view: SetView, tasks: Iterable[TaskView], now: datetime) -> SetView:
    found, updated, available = members.counts(view, tasks, now)
    status = view.status.model_copy(
        update={"tasks": found, "updated": updated, "available": available}
    )
    return view.model_copy(update={"status": status})


def get_set(db: sqlite_utils.Database, name: str, now: datetime) -> SetView | None:
    row = db.execute("SELECT doc FROM sets WHERE name = ?", [name]).fetchone()
    if not row:
        return None
    return _with_counts(SetView.model_validate_json(row[0]), _member_tasks(db, name), now)


def list_sets(
    db: sqlite_utils.Database, now: datetime, selector: str = "", limit: int = 10_000
) -> list[SetView]:
    sel = parse_selector(selector)
    out: list[SetView] = []
    tasks = _member_tasks(db)
    for (doc,) in db.execute("SELECT doc FROM sets ORDER BY name"):
        view = SetView.model_validate_json(doc)
        if sel.matches(view.meta.labels):
            out.append(_with_counts(view, tasks, now))
        if len(out) >= limit:
            break
    return out


# ---- volumes ------------------------------------------------------------------------------------


def _mounts_volume(config: dict[str, Any], volume: str) -> bool:
    return any(m["type"] == "volume" and m["source"] == volume for m in config.get("mounts", ()))


def volume_users(db: sqlite_utils.Database, volume: str) -> list[str]:
    """``task/<name>`` and ``set/<name>`` of everything whose config mounts ``volume``."""
    pattern = f'%"{volume}"%'  # a cheap pre-filter; the JSON decides
    tasks = [
        f"task/{name}"
        for name, doc in db.execute(
            "SELECT name, doc FROM tasks WHERE doc LIKE ? ORDER BY name", [pattern]
        )
        if _mounts_volume(json.loads(doc)["config"], volume)
    ]
    sets = [
        f"set/{name}"
        for name, doc in db.execute(
            "SELECT name, doc FROM sets WHERE doc LIKE ? ORDER BY name", [pattern]
        )
        if _mounts_volume(json.loads(doc)["config"]["template"], volume)
    ]
    return tasks + sets


def tasks_mounting(db: sqlite_utils.Database, volumes: Iterable[str]) -> dict[str, str | None]:
    """``{task: node}`` of the tasks that mount any of ``volumes``."""
    wanted = set(volumes)
    out: dict[str, str | None] = {}
    for name, node, doc in db.execute("SELECT name, node, doc FROM tasks ORDER BY name"):
        mounts = json.loads(doc)["config"].get("mounts", ())
        if any(m["type"] == "volume" and m["source"] in wanted for m in mounts):
            out[str(name)] = node
    return out


def _with_users(db: sqlite_utils.Database, view: VolumeView) -> VolumeView:
    status = view.status.model_copy(update={"used_by": volume_users(db, view.meta.name)})
    return view.model_copy(update={"status": status})


def get_volume(db: sqlite_utils.Database, name: str) -> VolumeView | None:
    row = db.execute("SELECT doc FROM volumes WHERE name = ?", [name]).fetchone()
    return _with_users(db, VolumeView.model_validate_json(row[0])) if row else None


def list_volumes(
    db: sqlite_utils.Database, selector: str = "", limit: int = 10_000
) -> list[VolumeView]:
    sel = parse_selector(selector)
    out: list[VolumeView] = []
    for (doc,) in db.execute("SELECT doc FROM volumes ORDER BY name"):
        view = VolumeView.model_validate_json(doc)
        if sel.matches(view.meta.labels):
            out.append(_with_users(db, view))
        if len(out) >= limit:
            break
    return out
