"""Read the projection: tasks and nodes by name or selector. Queries never touch NATS."""

from __future__ import annotations

import json

import sqlite_utils

from voiyd.api.selectors import parse_selector
from voiyd.api.views import NodeCapacity, NodeView, TaskView


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
        "SELECT doc FROM tasks WHERE node = ? AND phase NOT IN ('stopped','exited','failed')",
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
        for table in ("revisions", "tasks", "nodes")
    }
