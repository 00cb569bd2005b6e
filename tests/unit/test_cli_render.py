"""The CLI's pure rendering: tables, rows from views, event summaries, describe text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voiyd.api.specs import Meta, TaskConfig
from voiyd.api.views import EventView, NodeCapacity, NodeView, TaskStatus, TaskView
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
