"""The docs keep up with the code: docs/subjects.md (the bus contract) and docs/operations.md.

Every event type has a section naming each of its ``data`` fields and an example that voiyd's
own decoder accepts; every API endpoint the server registers has a section whose request
example its request model accepts; the agent messages and the assignment value are documented
field by field; every stream, bucket, service and header name, every error code with its
status, the streams' key settings and every daemon metric are on the pages. No NATS is needed:
the endpoint list comes from the real ``Handlers`` over an in-memory projection
(``endpoints()`` only builds the table; nothing touches the bus).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, cast, get_args

import pytest
from pydantic import BaseModel

from voiyd.api import agent as ag
from voiyd.api import requests as rq
from voiyd.bus import rpc, subjects
from voiyd.bus.streams import DUPLICATE_WINDOW_S, LogLimits, events_config
from voiyd.errors import ERRORS_BY_CODE
from voiyd.events.models import EVENT_TYPES, AnyEvent, decode_event
from voiyd.projection import schema
from voiyd.projection.consumer import ProjectionFollower
from voiyd.projection.store import ProjectionStore
from voiyd.server.handlers import Handlers

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "subjects.md"
OPERATIONS_PATH = ROOT / "docs" / "operations.md"

REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "task.create": rq.CreateTask,
    "task.apply": rq.ApplyTask,
    "task.update": rq.UpdateTask,
    "task.patch": rq.PatchTask,
    "task.delete": rq.DeleteTask,
    "task.start": rq.StartTask,
    "task.stop": rq.StopTask,
    "task.get": rq.GetByName,
    "task.list": rq.ListQuery,
    "set.create": rq.CreateSet,
    "set.apply": rq.ApplySet,
    "set.update": rq.UpdateSet,
    "set.delete": rq.DeleteSet,
    "set.scale": rq.ScaleSet,
    "set.undo": rq.UndoSet,
    "set.restart": rq.RestartSet,
    "set.get": rq.GetByName,
    "set.list": rq.ListQuery,
    "volume.create": rq.CreateVolume,
    "volume.apply": rq.ApplyVolume,
    "volume.delete": rq.DeleteVolume,
    "volume.get": rq.GetByName,
    "volume.list": rq.ListQuery,
    "node.get": rq.GetByName,
    "node.list": rq.ListQuery,
    "node.cordon": rq.CordonNode,
    "node.uncordon": rq.UncordonNode,
    "node.drain": rq.DrainNode,
    "node.label": rq.LabelNode,
    "node.delete": rq.DeleteNode,
    "event.list": rq.ListEvents,
    "system.info": rq.Query,
}
"""The request model of each endpoint: a new endpoint needs a line here and a section there."""

REPLY_MODELS: dict[str, type[BaseModel]] = {
    "task.create": rq.WriteReply,
    "set.create": rq.WriteReply,
    "volume.create": rq.WriteReply,
    "event.list": rq.EventListReply,
    "system.info": rq.InfoReply,
}
"""Endpoints whose section shows a complete reply (the second JSON block), checked as well."""


@cache
def doc() -> str:
    return DOC_PATH.read_text()


@cache
def sections() -> dict[str, str]:
    """``{code-span heading: body}`` of every heading that is one code span (``#### `x` ``)."""
    out: dict[str, str] = {}
    parts = re.split(r"^(#{2,4} .*)$", doc(), flags=re.MULTILINE)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        m = re.fullmatch(r"#{2,4} `([^`]+)`", heading.strip())
        if m:
            out[m.group(1)] = body
    return out


def under(heading: str) -> str:
    """The text below ``heading`` (a whole heading line) up to the next heading."""
    start = doc().index(f"\n{heading}\n") + len(heading) + 2
    m = re.compile(r"^#{2,4} ", re.MULTILINE).search(doc(), start)
    return doc()[start : m.start() if m else len(doc())]


def json_blocks(body: str) -> list[Any]:
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", body, flags=re.DOTALL)]


def endpoint_subjects() -> list[str]:
    follower = ProjectionFollower(cast(Any, None), ProjectionStore(schema.open_db(None)))
    return sorted(Handlers(cast(Any, None), follower, "docs").endpoints())


def short(subject: str) -> str:
    return subject.removeprefix(f"{subjects.API_PREFIX}.")


def data_fields(event_type: str) -> list[str]:
    for model in AnyEvent.__origin__.__args__:  # type: ignore[attr-defined]
        if model.model_fields["type"].default == event_type:
            data_model = model.model_fields["data"].annotation
            return list(data_model.model_fields)
    raise AssertionError(f"no model for {event_type}")


def table_row(body: str, first_cell: str) -> str:
    for line in body.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return line
    raise AssertionError(f"no table row for {first_cell}")


# ---- events -------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_its_own_section(event_type: str) -> None:
    assert event_type in sections(), f"docs/subjects.md has no '#### `{event_type}`' section"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_data_field_of_an_event_is_documented(event_type: str) -> None:
    body = sections()[event_type]
    missing = [f for f in data_fields(event_type) if f"| `{f}` |" not in body]
    assert missing == [], f"{event_type}: data fields not in its table: {missing}"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_example_is_a_valid_envelope_of_its_type(event_type: str) -> None:
    blocks = json_blocks(sections()[event_type])
    assert blocks, f"{event_type} has no JSON example"
    example = blocks[0]
    assert set(example) == {"id", "type", "v", "at", "actor", "data"}
    event = decode_event(example)
    assert event.type == event_type
    kind = event_type.partition(".")[0]
    assert f"`{subjects.event(kind, event.data.name)}`" in sections()[event_type]


def test_the_page_names_no_event_type_the_code_does_not_have() -> None:
    endpoints = {short(s) for s in endpoint_subjects()}
    spans = set(re.findall(r"`((?:task|node|volume|set)\.[a-z-]+)`", doc()))
    assert spans - set(EVENT_TYPES) - endpoints == set()


# ---- API ----------------------------------------------------------------------------------------


def test_the_server_registers_exactly_the_endpoints_this_test_knows() -> None:
    assert {short(s) for s in endpoint_subjects()} == set(REQUEST_MODELS)


@pytest.mark.parametrize("subject", endpoint_subjects())
def test_every_endpoint_has_its_own_section(subject: str) -> None:
    assert subject in sections(), f"docs/subjects.md has no '#### `{subject}`' section"
    assert f"| `{subject}` |" in doc(), f"{subject} is missing from the endpoint table"


@pytest.mark.parametrize("subject", endpoint_subjects())
def test_every_endpoint_request_example_is_accepted(subject: str) -> None:
    blocks = json_blocks(sections()[subject])
    assert blocks, f"{subject} has no JSON request example"
    REQUEST_MODELS[short(subject)].model_validate(blocks[0])
    if short(subject) in REPLY_MODELS:
        assert len(blocks) >= 2, f"{subject} should show a complete reply"
        REPLY_MODELS[short(subject)].model_validate(blocks[1])


@pytest.mark.parametrize("code", sorted(ERRORS_BY_CODE))
def test_every_error_code_is_documented_with_its_status(code: str) -> None:
    row = table_row(doc(), f"`{code}`")
    assert f"| {ERRORS_BY_CODE[code].status} |" in row


def test_the_error_reply_example_has_the_wire_shape() -> None:
    (example,) = [b for b in json_blocks(doc()) if isinstance(b, dict) and "error" in b]
    assert set(example["error"]) == {"code", "message", "fields"}
    assert all(set(f) == {"loc", "message"} for f in example["error"]["fields"])
    assert example["error"]["code"] in ERRORS_BY_CODE


# ---- agents and assignments ---------------------------------------------------------------------

AGENT_SECTIONS: dict[str, list[type[BaseModel]]] = {
    f"### Heartbeat: `{subjects.AGENT_PREFIX}.<node>.heartbeat`": [ag.Heartbeat],
    f"### Reports: `{subjects.AGENT_PREFIX}.<node>.report`": [ag.TaskReport, ag.ReportReply],
    f"## Assignments: `$KV.{subjects.ASSIGNMENTS_BUCKET}.<node>.<task>`": [ag.Assignment],
    f"### Upgrade: `{subjects.AGENT_PREFIX}.<node>.control.{subjects.UPGRADE_VERB}`": [
        ag.UpgradeRequest,
        ag.UpgradeReply,
    ],
}
"""Each section, and the models its JSON examples show, in order."""


@pytest.mark.parametrize("heading", sorted(AGENT_SECTIONS))
def test_agent_messages_are_documented_field_by_field(heading: str) -> None:
    body = under(heading)
    models = AGENT_SECTIONS[heading]
    if ag.TaskReport in models:
        models = [*models, ag.NodeJoin]  # the join request is documented beside task reports
    missing = [f"{m.__name__}.{f}" for m in models for f in m.model_fields if f"`{f}`" not in body]
    assert missing == []


@pytest.mark.parametrize("heading", sorted(AGENT_SECTIONS))
def test_agent_message_examples_are_accepted(heading: str) -> None:
    blocks = json_blocks(under(heading))
    models = AGENT_SECTIONS[heading]
    assert len(blocks) == len(models)
    for model, block in zip(models, blocks, strict=True):
        model.model_validate(block)


def test_every_report_state_is_documented() -> None:
    body = under(f"### Reports: `{subjects.AGENT_PREFIX}.<node>.report`")
    for state in get_args(ag.TaskReportKind):
        assert f"| `{state}` |" in body, f"report state {state!r} is not in the table"


# ---- names and stream settings ------------------------------------------------------------------

NAMES = [
    subjects.EVENTS_STREAM,
    subjects.LOGS_STREAM,
    subjects.ASSIGNMENTS_BUCKET,
    subjects.WHEELS_BUCKET,
    subjects.API_SERVICE,
    subjects.LOGS_SERVICE,
    subjects.EVENT_HEADER,
    rpc.ERROR_HEADER,
    rpc.ERROR_CODE_HEADER,
    "Nats-Msg-Id",
    "Nats-Expected-Last-Subject-Sequence",
    f"{subjects.API_PREFIX}.<kind>.<verb>",
    f"{subjects.EVENTS_PREFIX}.<kind>.<name>",
    f"$KV.{subjects.ASSIGNMENTS_BUCKET}.<node>.<task>",
    f"{subjects.AGENT_PREFIX}.<node>.heartbeat",
    f"{subjects.AGENT_PREFIX}.<node>.report",
    f"{subjects.AGENT_PREFIX}.<node>.control.<verb>",
    f"{subjects.AGENT_PREFIX}.<node>.control.{subjects.UPGRADE_VERB}",
    f"{subjects.LOGS_PREFIX}.<node>.<task>",
    f"{subjects.API_PREFIX}.logs.<verb>",
]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_is_documented_as_code(name: str) -> None:
    assert f"`{name}`" in doc()


def test_the_event_stream_settings_are_the_ones_the_code_creates() -> None:
    body = under(f"### The stream `{subjects.EVENTS_STREAM}`")
    config = events_config()
    assert f"`{subjects.EVENTS_PREFIX}.>`" in table_row(body, "subjects")
    assert config.storage is not None and config.discard is not None
    assert f"| {config.storage.value} |" in table_row(body, "storage")
    assert f"`{config.discard.value}`" in table_row(body, "discard")
    assert config.deny_delete and config.deny_purge
    assert "true" in table_row(body, "`deny_delete`, `deny_purge`")
    assert config.allow_direct and "true" in table_row(body, "`allow_direct`")
    assert f"{DUPLICATE_WINDOW_S:g} s" in table_row(body, "`duplicate_window`")
    assert (config.max_msgs, config.max_bytes, config.max_age) == (-1, -1, 0)
    assert config.max_msgs_per_subject == -1
    assert "no limits" in table_row(body, "retention")


def test_the_log_stream_limits_are_the_defaults_the_code_creates() -> None:
    limits = LogLimits()
    body = under(
        f"## Logs: `{subjects.LOGS_PREFIX}.<node>.<task>` and `{subjects.API_PREFIX}.logs.<verb>`"
    )
    assert f"{limits.max_age_s / 86400:g} days" in table_row(body, "`max_age`")
    assert f"{limits.max_bytes / 1024**3:g} GiB" in table_row(body, "`max_bytes`")
    assert f"{limits.max_msgs_per_task:,}" in table_row(body, "`max_msgs_per_subject`")


def test_the_plain_nats_py_example_compiles() -> None:
    (code,) = re.findall(r"```python\n(.*?)\n```", doc(), flags=re.DOTALL)
    compile(code, "docs/subjects.md", "exec")
    assert "import voiyd" not in code
    assert "from voiyd" not in code


# ---- operations ---------------------------------------------------------------------------------


def metric_names() -> list[str]:
    """Every metric a daemon defines, read from its ``metrics.py`` (``voiyd_<process>_...``)."""
    names: list[str] = []
    for module in sorted((ROOT / "voiyd").glob("*/metrics.py")):
        names += re.findall(r'"(voiyd_[a-z0-9_]+)"', module.read_text())
    return names


def test_every_daemon_metric_is_documented_in_operations() -> None:
    names = metric_names()
    assert names, "found no metrics.py"
    text = OPERATIONS_PATH.read_text()
    missing = [n for n in names if f"`{n}`" not in text and f"`{n}{{" not in text]
    assert missing == [], f"docs/operations.md does not list {missing}"
