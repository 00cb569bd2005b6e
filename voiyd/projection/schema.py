"""The projection's tables, created with sqlite-utils, and their migrations.

One table per kind plus ``revisions`` (every aggregate's last stream sequence, deleted ones too,
so a name can be re-created with the right expected revision) and ``_projection``, the tracking
row (last applied stream sequence) that is written in the same transaction as the rows.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

SCHEMA_VERSION = 1


def open_db(path: Path | None) -> sqlite_utils.Database:
    """Open (creating) the projection database; ``None`` means in memory."""
    if path is None:
        db = sqlite_utils.Database(memory=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite_utils.Database(path)
        db.execute("PRAGMA journal_mode=WAL")
    # The log is the source of truth; a lost last transaction is replayed from it on restart.
    db.execute("PRAGMA synchronous=NORMAL")
    migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> None:
    tracking = db.table("_projection")
    if not tracking.exists():
        tracking.create(
            {"id": int, "last_seq": int, "stream_created": str, "schema_version": int}, pk="id"
        )
        tracking.insert(
            {"id": 1, "last_seq": 0, "stream_created": "", "schema_version": SCHEMA_VERSION}
        )
    if not db.table("revisions").exists():
        db.table("revisions").create({"subject": str, "revision": int}, pk="subject")
    if not db.table("tasks").exists():
        db.table("tasks").create(
            {"name": str, "phase": str, "node": str, "revision": int, "doc": str}, pk="name"
        )
        db.table("tasks").create_index(["node"])
    if not db.table("nodes").exists():
        db.table("nodes").create(
            {"name": str, "phase": str, "revision": int, "doc": str}, pk="name"
        )


def reset(db: sqlite_utils.Database) -> None:
    """Drop every projected row (for ``--rebuild``), keeping the schema."""
    with db.conn:
        for table in ("revisions", "tasks", "nodes"):
            db.execute(f"DELETE FROM [{table}]")
        db.execute("UPDATE _projection SET last_seq = 0, stream_created = '' WHERE id = 1")
