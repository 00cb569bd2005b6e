"""The projection of Sets and volumes (voiyd.projection.store and queries), in SQLite memory.

Events are encoded as the log stores them and applied in batches; a Set's counts and a volume's
users are computed when read; replaying event by event gives the same rows as one big batch;
a projection of the older schema (no sets and volumes tables) is replayed into the new one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from voiyd.api.specs import SET_LABEL, SET_REVISION_LABEL, SetDoc, TaskDoc, VolumeDoc
from voiyd.bus import codec, subjects
from voiyd.bus.reader import RawEvent
from voiyd.events import models as ev
from voiyd.projection import queries, schema
from voiyd.projection.store import ProjectionStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_ids = iter(range(1, 1_000_000))


def env(minutes: int = 0) -> dict[str, Any]:
    return {"id": f"e{next(_ids)}", "at": T0 + timedelta(minutes=minutes), "actor": "t"}


def set_doc(image: str = "nginx:1", replicas: int = 2, mounts: list[str] | None = None) -> SetDoc:
    template = {"image": image, "mounts": mounts or []}
    return SetDoc.model_validate(
        {"meta": {"name": "web"}, "config": {"replicas": replicas, "template": template}}
    )


def member(index: int, revision: int, running: bool) -> list[ev.AnyEvent]:
    """Events of member ``web-<index>`` at template ``revision``, running on n1 or pending."""
    name = f"web-{index}"
    labels = {SET_LABEL: "web", SET_REVISION_LABEL: str(revision)}
    doc = TaskDoc.model_validate(
        {"meta": {"name": name, "labels": labels}, "config": {"image": "nginx:1"}}
    )
    events: list[ev.AnyEvent] = [ev.TaskCreated(**env(), data=ev.TaskSpecData.from_doc(doc))]
    if running:
        place = {"name": name, "node": "n1", "epoch": 1}
        events.append(ev.TaskScheduled(**env(), data=ev.PlacementData(**place)))
        events.append(ev.TaskStarted(**env(), data=ev.StartedData(**place, container_id="c")))
    return events


def volume(name: str = "data") -> ev.VolumeCreated:
    doc = VolumeDoc.model_validate(
        {"meta": {"name": name}, "config": {"type": "host-local", "node": "n1"}}
    )
    return ev.VolumeCreated(**env(), data=ev.VolumeSpecData.from_doc(doc))


def task_mounting(name: str, source: str) -> ev.TaskCreated:
    doc = TaskDoc.model_validate(
        {"meta": {"name": name}, "config": {"image": "pg:16", "mounts": [f"{source}:/d"]}}
    )
    return ev.TaskCreated(**env(), data=ev.TaskSpecData.from_doc(doc))


def raw(events: list[ev.AnyEvent]) -> list[RawEvent]:
    return [
        RawEvent(seq, subjects.event(ev.event_kind(e), ev.event_name(e)), codec.encode(e))
        for seq, e in enumerate(events, start=1)
    ]


def history() -> list[ev.AnyEvent]:
    """A Set updated once (revision 2), two members at 2 (one running), one at 1; volumes."""
    return [
        ev.SetCreated(**env(), data=ev.SetSpecData.from_doc(set_doc(mounts=["data:/d"]))),
        volume("data"),
        volume("logs"),
        ev.SetUpdated(**env(), data=ev.SetSpecData.from_doc(set_doc("nginx:2", 3, ["data:/d"]))),
        *member(1, 2, running=True),
        *member(2, 2, running=False),
        *member(3, 1, running=True),
        task_mounting("db", "data"),
        ev.SetScaled(**env(), data=ev.SetScaledData(name="web", replicas=3)),
        ev.VolumeDeleted(**env(), data=ev.VolumeRef(name="logs")),
    ]


def projected(batch_size: int) -> ProjectionStore:
    store = ProjectionStore(schema.open_db(None))
    events = raw(history())
    for i in range(0, len(events), batch_size):
        store.apply_batch(events[i : i + batch_size])
    return store


def test_sets_and_volumes_are_projected_from_their_events() -> None:
    store = projected(batch_size=1000)
    web = store.load_set("web")
    assert web is not None
    assert (web.status.template_revision, web.config.replicas) == (2, 3)
    assert [h.revision for h in web.history] == [1, 2]
    assert store.load_volume("data") is not None
    assert store.load_volume("logs") is None
    assert store.revision(subjects.event("volume", "logs")) > 0


def test_set_counts_are_computed_from_its_members_when_read() -> None:
    store = projected(batch_size=1000)
    now = T0 + timedelta(hours=1)
    web = queries.get_set(store.db, "web", now)
    assert web is not None
    assert (web.status.tasks, web.status.updated, web.status.available) == (3, 2, 2)
    (listed,) = queries.list_sets(store.db, now)
    assert listed == web
    assert queries.list_sets(store.db, now, selector="app=other") == []
    assert queries.get_set(store.db, "nope", now) is None


def test_volume_users_are_the_tasks_and_sets_that_mount_it() -> None:
    store = projected(batch_size=1000)
    data = queries.get_volume(store.db, "data")
    assert data is not None
    assert data.status.used_by == ["task/db", "set/web"]
    assert [v.meta.name for v in queries.list_volumes(store.db)] == ["data"]
    assert queries.tasks_mounting(store.db, ["data"]) == {"db": None}


def test_replaying_event_by_event_gives_the_same_rows_as_one_batch() -> None:
    assert queries.dump_rows(projected(1).db) == queries.dump_rows(projected(1000).db)
    assert queries.dump_rows(projected(1).db)["sets"]


def test_a_projection_of_schema_1_is_replayed_into_the_new_tables(tmp_path: Path) -> None:
    path = tmp_path / "projection.sqlite"
    old = sqlite_utils.Database(path)
    old.table("_projection").insert(
        {"id": 1, "last_seq": 42, "stream_created": "x", "schema_version": 1}, pk="id"
    )
    old.table("tasks").create(
        {"name": str, "phase": str, "node": str, "revision": int, "doc": str}, pk="name"
    )
    old.table("tasks").insert({"name": "a", "phase": "p", "node": "", "revision": 1, "doc": "{}"})
    old.close()
    db = schema.open_db(path)
    store = ProjectionStore(db)
    assert store.last_seq == 0
    assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0
    assert db.table("sets").exists() and db.table("volumes").exists()
    version = db.execute("SELECT schema_version FROM _projection").fetchone()[0]
    assert version == schema.SCHEMA_VERSION
    store.apply_batch(raw(history()))
    db.close()
    again = ProjectionStore(schema.open_db(path))  # the current schema is resumed, not replayed
    assert again.last_seq == len(history())
    assert again.load_set("web") is not None
