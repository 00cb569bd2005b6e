"""The CLI's pure rendering: tables, rows from views, event summaries, describe text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voiyd.api.specs import (
    SET_LABEL,
    SET_REVISION_LABEL,
    Meta,
    SetConfig,
    SetMeta,
    TaskConfig,
    VolumeConfig,
)
from voiyd.api.views import (
    Condition,
    EventView,
    NodeCapacity,
    NodeView,
    RolloutStatus,
    SetRevision,
    SetStatus,
    SetView,
    TaskStatus,
    TaskView,
    VolumeStatus,
    VolumeView,
)
from voiyd.cli import describe, render

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CREATED = NOW - timedelta(minutes=5)


def _task(**status: Any) -> TaskView:
    return TaskView(
        meta=Meta(name="web", labels={"app": "web"}),
        config=TaskConfig.model_validate(
            {"image": "nginx:alpine", "ports": ["8080:80"], "resources": {"memory": "256m"}}
        ),
        status=TaskStatus(**status),
        revision=7,
        generation=1,
        created_at=CREATED,
        updated_at=CREATED,
    )


def test_format_table_pads_columns_and_never_the_last() -> None:
    lines = render.format_table(("NAME", "X"), [["a", "1"], ["longer", "22"]])
    assert lines == ["NAME     X", "a        1", "longer   22"]


def test_format_row_grows_past_the_minimum_widths() -> None:
    assert render.format_row(["abcdef", "x"], [3, 0]) == "abcdef   x"


def test_task_row_has_the_table_columns() -> None:
    row = render.task_row(_task(phase="running", node="n1", restarts=2), NOW)
    assert dict(zip(render.TASK_HEADERS, row, strict=True)) == {
        "NAME": "web",
        "PHASE": "running",
        "NODE": "n1",
        "IMAGE": "nginx:alpine",
        "RESTARTS": "2",
        "AGE": "5m",
        "REVISION": "7",
    }


def test_wide_task_row_adds_ports_ip_container_reason() -> None:
    task = _task(ip="10.0.0.2", container_id="0123456789abcdef", reason="pulling")
    row = render.task_row(task, NOW, wide=True)
    wide = dict(zip(render.TASK_WIDE_HEADERS, row, strict=True))
    assert wide["PORTS"] == "8080:80/tcp"
    assert wide["IP"] == "10.0.0.2"
    assert wide["CONTAINER"] == "0123456789ab"
    assert wide["REASON"] == "pulling"


def test_exec_task_shows_its_command_as_image() -> None:
    task = _task().model_copy(update={"config": TaskConfig(runtime="exec", args=["sleep", "10"])})
    assert render.task_image(task) == "exec:sleep"


def test_node_row_shows_allocated_over_capacity() -> None:
    node = NodeView(
        name="n1",
        runtimes=["docker", "exec"],
        capacity=NodeCapacity(cpus=4, memory=8 * 1024**3),
        allocated=NodeCapacity(cpus=0.5, memory=256 * 1024**2),
        agent_version="0.1.0",
        tasks=1,
        schedulable=False,
        revision=3,
        created_at=NOW - timedelta(hours=3),
        updated_at=NOW,
    )
    row = dict(zip(render.NODE_HEADERS, render.node_row(node, NOW), strict=True))
    assert row["CPU"] == "0.5/4"
    assert row["MEMORY"] == "256Mi/8Gi"
    assert row["SCHEDULABLE"] == "no"
    assert row["RUNTIMES"] == "docker,exec"
    assert row["AGE"] == "3h"


@pytest.mark.parametrize(
    ("data", "summary"),
    [
        pytest.param({"name": "web", "node": "n1", "epoch": 2}, "node=n1 epoch=2", id="placement"),
        pytest.param(
            {"name": "web", "labels": {}, "config": {"image": "nginx", "runtime": "docker"}},
            "image=nginx",
            id="spec-shows-image",
        ),
        pytest.param(
            {"name": "w", "config": {"runtime": "exec", "args": ["sleep", "1"]}},
            "cmd=sleep,1 runtime=exec",
            id="exec-spec",
        ),
        pytest.param(
            {"name": "n1", "capacity": {"cpus": 2.0, "memory": 1024**3}},
            "capacity=cpus=2,memory=1Gi",
            id="memory-is-readable",
        ),
        pytest.param({"name": "web"}, "", id="nothing-but-the-name"),
        pytest.param(
            {"name": "web", "config": {"replicas": 3, "template": {"image": "nginx"}}},
            "replicas=3 image=nginx",
            id="set-spec",
        ),
        pytest.param(
            {"name": "data", "config": {"type": "host-local", "node": "n1", "files": {}}},
            "type=host-local node=n1",
            id="volume-spec",
        ),
    ],
)
def test_event_summary(data: dict[str, Any], summary: str) -> None:
    assert render.event_summary({"type": "x", "data": data}) == summary


def test_event_row_names_the_object_and_the_time_in_utc() -> None:
    envelope = {"type": "task.created", "actor": "me", "at": "2025-01-01T11:00:00Z", "data": {}}
    row = render.event_row(5, "voiyd.events.task.web", envelope)
    assert row == ["5", "2025-01-01 11:00:00", "task/web", "task.created", "me", ""]


def test_describe_task_shows_spec_status_and_events() -> None:
    event = EventView(
        seq=7,
        subject="voiyd.events.task.web",
        event={"type": "task.created", "actor": "me", "at": CREATED.isoformat(), "data": {}},
    )
    text = describe.describe_task(_task(phase="running", node="n1", pid=42), [event], NOW)
    assert "Name:       web" in text
    assert "  Memory:        256Mi" in text
    assert re.search(r"^  Phase: +running$", text, re.M)
    assert re.search(r"^  PID: +42$", text, re.M)
    assert "  7     5m    task.created   me" in text


NGINX = TaskConfig(image="nginx:1.27")


def _set(**status: Any) -> SetView:
    history = [
        SetRevision(
            revision=r, template=NGINX, cause=c, at=CREATED + timedelta(minutes=r), seq=10 + r
        )
        for r, c in ((1, "created"), (2, "updated"), (3, "rollback to revision 1"))
    ]
    return SetView(
        meta=SetMeta(name="web", labels={"app": "web"}),
        config=SetConfig.model_validate(
            {"replicas": 4, "template": NGINX, "update": {"max_parallel": 2}}
        ),
        status=SetStatus(**status),
        history=history,
        revision=20,
        created_at=CREATED,
        updated_at=NOW,
    )


def test_set_row_has_the_table_columns() -> None:
    view = _set(
        template_revision=3,
        tasks=5,
        updated=2,
        available=3,
        rollout=RolloutStatus(state="progressing", revision=3),
    )
    assert dict(zip(render.SET_HEADERS, render.set_row(view, NOW), strict=True)) == {
        "NAME": "web",
        "REPLICAS": "4",
        "READY": "3/4",
        "UP-TO-DATE": "2",
        "REVISION": "3",
        "ROLLOUT": "progressing",
        "AGE": "5m",
    }
    wide = dict(zip(render.SET_WIDE_HEADERS, render.set_row(view, NOW, wide=True), strict=True))
    assert wide["TASKS"] == "5"
    assert wide["IMAGE"] == "nginx:1.27"
    assert wide["STRATEGY"] == "stop-first,max 2"
    assert wide["REASON"] == "<none>"


def _volume(config: VolumeConfig, used_by: list[str]) -> VolumeView:
    return VolumeView(
        meta=Meta(name="data"),
        config=config,
        status=VolumeStatus(used_by=used_by),
        revision=3,
        created_at=CREATED,
        updated_at=CREATED,
    )


@pytest.mark.parametrize(
    ("config", "used_by", "row"),
    [
        pytest.param(
            VolumeConfig(type="host-local", node="n1"),
            ["task/db", "set/web"],
            ["data", "host-local", "n1", "task/db,set/web", "5m"],
            id="host-local",
        ),
        pytest.param(
            VolumeConfig(type="template", files={"a.conf": "x"}),
            [],
            ["data", "template", "<any>", "<none>", "5m"],
            id="template-on-any-node",
        ),
    ],
)
def test_volume_row(config: VolumeConfig, used_by: list[str], row: list[str]) -> None:
    assert render.volume_row(_volume(config, used_by), NOW) == row


def test_history_rows_mark_the_current_revision() -> None:
    rows = render.history_rows(_set(template_revision=2))
    assert [r[:2] for r in rows] == [
        ["1", "created"],
        ["2*", "updated"],
        ["3", "rollback to revision 1"],
    ]
    assert rows[0][2] == "2025-01-01 11:56:00"


def _member(index: int, revision: int, phase: str, node: str) -> TaskView:
    running = [Condition(type="Running", status=True, at=CREATED)] if phase == "running" else []
    labels = {SET_LABEL: "web", SET_REVISION_LABEL: str(revision)}
    return _task(phase=phase, node=node, conditions=running).model_copy(
        update={"meta": Meta(name=f"web-{index}", labels=labels)}
    )


def test_describe_set_shows_strategy_rollout_history_and_members() -> None:
    view = _set(
        template_revision=3,
        tasks=2,
        updated=1,
        available=1,
        rollout=RolloutStatus(state="failed", revision=3, reason="web-2 failed", started_at=NOW),
    )
    tasks = [
        _member(2, 3, "failed", "n2"),
        _member(1, 2, "running", "n1"),
        _task(phase="running"),  # not a member: not listed
    ]
    text = describe.describe_set(view, tasks, [], NOW)
    assert re.search(r"^  Max parallel: +2$", text, re.M)
    assert re.search(r"^  State: +failed$", text, re.M)
    assert re.search(r"^  Reason: +web-2 failed$", text, re.M)
    assert re.search(r"^  Image: +nginx:1.27$", text, re.M)
    members = text.split("Members:\n", 1)[1].split("Events:", 1)[0].splitlines()
    assert [line.split()[:5] for line in members] == [
        ["NAME", "PHASE", "NODE", "REVISION", "AVAILABLE"],
        ["web-1", "running", "n1", "2", "yes"],
        ["web-2", "failed", "n2", "3", "no"],
    ]
    history = text.split("History:\n", 1)[1].split("Members:", 1)[0]
    assert "3*" in history


def test_describe_volume_lists_template_files_and_users() -> None:
    view = _volume(VolumeConfig(type="template", files={"a.conf": "hello"}), ["task/web"])
    text = describe.describe_volume(view, [], NOW)
    assert re.search(r"^Node: +<any>$", text, re.M)
    assert re.search(r"^Used by: +task/web$", text, re.M)
    assert re.search(r"^  a.conf: +5 bytes$", text, re.M)


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        pytest.param({}, "yes", id="schedulable"),
        pytest.param({"schedulable": False}, "no (cordoned)", id="cordoned"),
        pytest.param(
            {"schedulable": False, "draining": True, "drain_deadline": NOW},
            "no (draining, deadline 2025-01-01 12:00:00)",
            id="draining",
        ),
    ],
)
def test_describe_node_says_why_it_is_not_schedulable(changes: dict[str, Any], shown: str) -> None:
    node = NodeView(name="n1", revision=1, created_at=NOW, updated_at=NOW, **changes)
    assert re.search(
        rf"^Schedulable: +{re.escape(shown)}$", describe.describe_node(node, [], NOW), re.M
    )
