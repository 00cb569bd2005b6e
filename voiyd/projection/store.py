"""Apply batches of events to the SQLite projection, with the tracking row in the same transaction.

``apply_batch`` is the one writer: it folds each event with ``voiyd.events.fold`` (the same
functions the server decides with), then writes the changed rows, every aggregate's revision and
the last applied stream sequence in one transaction. Re-applying an already applied sequence is
a no-op, so redelivery after a crash is harmless. An event that does not decode is logged,
counted and skipped (its sequence still advances), never a crash loop.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlite_utils
from pydantic import ValidationError

from voiyd.api.views import NodeView, SetView, TaskView, VolumeView
from voiyd.bus import codec
from voiyd.bus.reader import RawEvent
from voiyd.bus.subjects import parse_event_subject
from voiyd.errors import InvalidRequestError
from voiyd.events import models as ev
from voiyd.events.fold import (
    NodeEvent,
    SetEvent,
    TaskEvent,
    VolumeEvent,
    evolve_node,
    evolve_set,
    evolve_task,
    evolve_volume,
)
from voiyd.projection import schema

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    applied: int = 0
    skipped: int = 0
    last_seq: int = 0
    types: dict[str, int] = field(default_factory=dict)
    changed_tasks: dict[str, str | None] = field(default_factory=dict)
    """Tasks this batch changed, with the node each was on before the batch."""
    changed_volumes: set[str] = field(default_factory=set)
    """Volumes this batch created, changed or deleted (their tasks' assignments carry them)."""


@dataclass
class _Changes:
    """The views a batch changed, by kind (None: deleted), written in its one transaction."""

    tasks: dict[str, TaskView | None] = field(default_factory=dict)
    nodes: dict[str, NodeView | None] = field(default_factory=dict)
    sets: dict[str, SetView | None] = field(default_factory=dict)
    volumes: dict[str, VolumeView | None] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)


RECENT_TASKS_MAX = 2048
"""Task views remembered from the latest commits (at least one full batch of the follower).

What was just written is read back at once: the assignment sync after each batch, a write's
decision, the next batch's fold. Remembering the committed views spares each of those a SQLite
read and a JSON validation of the whole task. The store is the projection's only writer, so what
it remembers is exactly what the rows hold."""


class ProjectionStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        row = db.execute("SELECT last_seq, stream_created FROM _projection WHERE id = 1").fetchone()
        self.last_seq: int = int(row[0])
        self.stream_created: str = str(row[1] or "")
        self._recent_tasks: dict[str, TaskView | None] = {}

    def load_task(self, name: str) -> TaskView | None:
        if name in self._recent_tasks:
            return self._recent_tasks[name]
        row = self.db.execute("SELECT doc FROM tasks WHERE name = ?", [name]).fetchone()
        return TaskView.model_validate_json(row[0]) if row else None

    def reset(self) -> None:
        """Drop every projected row (a rebuild from the start of the log follows)."""
        schema.reset(self.db)
        self.last_seq = 0
        self._recent_tasks.clear()

    def load_node(self, name: str) -> NodeView | None:
        row = self.db.execute("SELECT doc FROM nodes WHERE name = ?", [name]).fetchone()
        return NodeView.model_validate_json(row[0]) if row else None

    def load_set(self, name: str) -> SetView | None:
        row = self.db.execute("SELECT doc FROM sets WHERE name = ?", [name]).fetchone()
        return SetView.model_validate_json(row[0]) if row else None

    def load_volume(self, name: str) -> VolumeView | None:
        row = self.db.execute("SELECT doc FROM volumes WHERE name = ?", [name]).fetchone()
        return VolumeView.model_validate_json(row[0]) if row else None

    def revision(self, subject: str) -> int:
        row = self.db.execute(
            "SELECT revision FROM revisions WHERE subject = ?", [subject]
        ).fetchone()
        return int(row[0]) if row else 0

    def set_stream_created(self, created: str) -> None:
        with self.db.conn:
            self.db.execute("UPDATE _projection SET stream_created = ? WHERE id = 1", [created])
        self.stream_created = created

    def apply_batch(self, batch: Sequence[RawEvent]) -> BatchResult:
        result = BatchResult(last_seq=self.last_seq)
        changes = _Changes()
        for raw in batch:
            if raw.seq <= result.last_seq:
                continue
            result.last_seq = raw.seq
            changes.revisions[raw.subject] = raw.seq
            event = self._decode(raw)
            if event is None:
                result.skipped += 1
                continue
            result.applied += 1
            result.types[event.type] = result.types.get(event.type, 0) + 1
            self._fold(event, raw.seq, changes, result)
        if result.last_seq == self.last_seq:
            return result
        self._commit(changes, result.last_seq)
        self.last_seq = result.last_seq
        self._remember(changes.tasks)
        return result

    def _remember(self, tasks: dict[str, TaskView | None]) -> None:
        recent = self._recent_tasks
        for name, view in tasks.items():
            recent.pop(name, None)  # re-inserted last: the oldest write is evicted first
            recent[name] = view
        for name in list(itertools.islice(recent, max(0, len(recent) - RECENT_TASKS_MAX))):
            del recent[name]

    def _decode(self, raw: RawEvent) -> ev.AnyEvent | None:
        try:
            payload = codec.decode_map(raw.data, trusted=True)
            event = ev.decode_event(payload)
            kind, name = parse_event_subject(raw.subject)
        except (InvalidRequestError, ValidationError, ValueError) as exc:
            log.error("skipping undecodable event seq=%d subject=%s: %s", raw.seq, raw.subject, exc)
            return None
        if (kind, name) != (ev.event_kind(event), ev.event_name(event)):
            log.error(
                "skipping event seq=%d: subject %s does not match %s/%s",
                raw.seq,
                raw.subject,
                ev.event_kind(event),
                ev.event_name(event),
            )
            return None
        return event

    def _fold(self, event: ev.AnyEvent, seq: int, changes: _Changes, result: BatchResult) -> None:
        name = ev.event_name(event)
        if isinstance(event, TaskEvent):
            tasks = changes.tasks
            if name in tasks:
                current = tasks[name]
            else:
                current = self.load_task(name)
                result.changed_tasks[name] = current.status.node if current else None
            tasks[name] = evolve_task(current, event, seq)
        elif isinstance(event, NodeEvent):
            nodes = changes.nodes
            current_node = nodes[name] if name in nodes else self.load_node(name)
            nodes[name] = evolve_node(current_node, event, seq)
        elif isinstance(event, SetEvent):
            sets = changes.sets
            current_set = sets[name] if name in sets else self.load_set(name)
            sets[name] = evolve_set(current_set, event, seq)
        elif isinstance(event, VolumeEvent):
            volumes = changes.volumes
            current_volume = volumes[name] if name in volumes else self.load_volume(name)
            volumes[name] = evolve_volume(current_volume, event, seq)
            result.changed_volumes.add(name)
        else:  # pragma: no cover - every event type is one of the four kinds
            raise AssertionError(f"no projection for {event.type}")

    def _commit(self, changes: _Changes, last_seq: int) -> None:
        conn = self.db.conn
        tasks, nodes, sets, volumes = changes.tasks, changes.nodes, changes.sets, changes.volumes
        with conn:
            conn.executemany(
                "INSERT INTO revisions(subject, revision) VALUES (?, ?) "
                "ON CONFLICT(subject) DO UPDATE SET revision = excluded.revision",
                list(changes.revisions.items()),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO tasks(name, phase, node, revision, doc) VALUES (?,?,?,?,?)",
                [
                    (t.meta.name, t.status.phase, t.status.node, t.revision, t.model_dump_json())
                    for t in tasks.values()
                    if t is not None
                ],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO nodes(name, phase, revision, doc) VALUES (?,?,?,?)",
                [(n.name, n.phase, n.revision, n.model_dump_json()) for n in nodes.values() if n],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO sets(name, revision, doc) VALUES (?,?,?)",
                [(v.meta.name, v.revision, v.model_dump_json()) for v in sets.values() if v],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO volumes(name, type, node, revision, doc) "
                "VALUES (?,?,?,?,?)",
                [
                    (v.meta.name, v.config.type, v.config.node, v.revision, v.model_dump_json())
                    for v in volumes.values()
                    if v
                ],
            )
            for table, views in (
                ("tasks", tasks),
                ("nodes", nodes),
                ("sets", sets),
                ("volumes", volumes),
            ):
                gone = [(n,) for n, v in views.items() if v is None]
                conn.executemany(f"DELETE FROM [{table}] WHERE name = ?", gone)
            conn.execute("UPDATE _projection SET last_seq = ? WHERE id = 1", [last_seq])
