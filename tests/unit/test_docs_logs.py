"""docs/subjects.md keeps up with the logs: the batch shape, the relay's endpoint, the limits.

Every field of ``LogBatch``, ``LogLine``, the ``logs.read`` request and reply (``ReadLogs``,
``ReadLogsReply``, ``LogChunk``, ``Position``) is named on the page, its examples are accepted
by the models, the relay registers exactly the endpoints the page lists, and the limits'
options are documented where operators look (docs/operations.md).
"""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from tests.unit.test_docs import OPERATIONS_PATH, doc, json_blocks, sections, under
from voiyd.api.logread import LogChunk, Position, ReadLogs, ReadLogsReply
from voiyd.api.logs import LogBatch, LogLine
from voiyd.bus import subjects
from voiyd.logrelay.runner import READ_SUBJECT

BATCH_HEADING = "### The message: `LogBatch`"
RELAY_HEADING = f"### The log relay: `{subjects.LOGS_SERVICE}`"


def fields_missing(body: str, *models: type[BaseModel]) -> list[str]:
    return [f"{m.__name__}.{f}" for m in models for f in m.model_fields if f"`{f}`" not in body]


def test_every_field_of_a_log_batch_and_its_lines_is_documented() -> None:
    body = under(BATCH_HEADING)
    assert fields_missing(body, LogBatch, LogLine) == []
    for model in (LogBatch, LogLine):
        missing = [f for f in model.model_fields if f"| `{f}` |" not in body]
        assert missing == [], f"{model.__name__}: no table row for {missing}"


def test_the_log_batch_example_is_a_batch() -> None:
    (example,) = json_blocks(under(BATCH_HEADING))
    batch = LogBatch.model_validate(example)
    assert set(example) == set(LogBatch.model_fields)
    assert all(set(line) == set(LogLine.model_fields) for line in example["lines"])
    assert batch.lines


def test_the_relay_serves_exactly_the_documented_endpoints() -> None:
    body = under(RELAY_HEADING)
    rows = re.findall(r"^\| `(voiyd\.api\.v1\.logs\.[a-z-]+)` \|", body, flags=re.MULTILINE)
    assert rows == [READ_SUBJECT]
    assert READ_SUBJECT in sections()


def test_every_field_of_logs_read_is_documented() -> None:
    body = sections()[READ_SUBJECT]
    assert fields_missing(body, ReadLogs, ReadLogsReply, LogChunk, Position) == []
    for model in (ReadLogs, ReadLogsReply):
        missing = [f for f in model.model_fields if f"| `{f}` |" not in body]
        assert missing == [], f"{model.__name__}: no table row for {missing}"


def test_the_logs_read_examples_are_a_request_and_its_reply() -> None:
    request, reply = json_blocks(sections()[READ_SUBJECT])
    ReadLogs.model_validate(request)
    parsed = ReadLogsReply.model_validate(reply)
    assert parsed.chunks and parsed.cursor


@pytest.mark.parametrize(
    "option", ["--logs-max-age", "--logs-max-bytes", "--logs-max-lines-per-task"]
)
def test_the_log_limit_options_are_documented(option: str) -> None:
    assert f"`{option}`" in doc()
    assert f"`{option}`" in OPERATIONS_PATH.read_text()


def test_no_log_subject_is_still_marked_reserved() -> None:
    for line in doc().splitlines():
        if "voiyd.logs." in line or "voiyd.api.v1.logs" in line:
            assert "reserved" not in line, line
