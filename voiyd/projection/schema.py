"""The projection's tables, created with sqlite-utils, and their migrations.

One table per kind plus ``revisions`` (every aggregate's last stream sequence, deleted ones too,
so a name can be re-created with the right expected revision) and ``_projection``, the tracking
row (last applied stream sequence) that is written in the same transaction as the rows.

A projection built by an older schema is not patched row by row: its missing tables are added
and it is replayed from the log (the source of truth), which gives the same rows a rebuild would.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlite_utils

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""1: tasks and nodes. 2: sets and volumes (their events only moved revisions before)."""
TABLES = ("revisions", "tasks", "nodes", "sets", "volumes")
"""The projected tables, in the order ``dump_rows`` and ``reset`` visit them."""


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


def _create_tables(db: sqlite_utils.Database) -> None:
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
    if not db.table("sets").exists():
        db.table("sets").create({"name": str, "revision": int, "doc": str}, pk="name")
    if not db.table("volumes").exists():
        db.table("volumes").create(
            {"name": str, "type": str, "node": str, "revision": int, "doc": str}, pk="name"
        )


def migrate(db: sqlite_utils.Database) -> None:
    tracking = db.table("_projection")
    if not tracking.exists():
        tracking.create(
            {"id": int, "last_seq": int, "stream_created": str, "schema_version": int}, pk="id"
        )
        tracking.insert(
            {"id": 1, "last_seq": 0, "stream_created": "", "schema_version": SCHEMA_VERSION}
        )
    _create_tables(db)
    row = db.execute("SELECT schema_version FROM _projection WHERE id = 1").fetchone()
    version = int(row[0] or 0) if row else 0
    if version < SCHEMA_VERSION:
        log.warning(
            "projection schema %d is older than %d: replaying the event log into it",
            version,
            SCHEMA_VERSION,
        )
        reset(db)
        with db.conn:
            db.execute("UPDATE _projection SET schema_version = ? WHERE id = 1", [SCHEMA_VERSION])


def reset(db: sqlite_utils.Database) -> None:
    """Drop every projected row (for ``--rebuild``), keeping the schema."""
    with db.conn:
        for table in TABLES:
            db.execute(f"DELETE FROM [{table}]")
        db.execute("UPDATE _projection SET last_seq = 0, stream_created = '' WHERE id = 1")
