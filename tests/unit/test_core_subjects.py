"""Subject and stream names (voiyd.bus.subjects): built in one place, tokens never wildcards."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from voiyd.bus import subjects
from voiyd.errors import InvalidRequestError

BAD_TOKENS = [
    pytest.param("a.b", id="dot-adds-a-token"),
    pytest.param("*", id="star-wildcard"),
    pytest.param(">", id="gt-wildcard"),
    pytest.param("web-*", id="trailing-star"),
    pytest.param("a b", id="space"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\r\nb", id="newline"),
    pytest.param("", id="empty"),
    pytest.param("Web", id="uppercase"),
    pytest.param("a" * 64, id="64-chars"),
]


@pytest.mark.parametrize("value", BAD_TOKENS)
def test_token_rejects_anything_that_could_change_the_subject(value: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"^node: "):
        subjects.token(value, "node")


@pytest.mark.parametrize("value", ["n1", "web-1", "0", "a" * 63])
def test_token_accepts_names(value: str) -> None:
    assert subjects.token(value) == value


BUILDERS: list[tuple[str, Callable[[str], str]]] = [
    ("event", lambda n: subjects.event("task", n)),
    ("events-filter", lambda n: subjects.events_filter("task", n)),
    ("agent-heartbeat", subjects.agent_heartbeat),
    ("agent-report", subjects.agent_report),
    ("agent-control", lambda n: subjects.agent_control(n, "logs")),
    ("logs-node", lambda n: subjects.logs(n, "web")),
    ("logs-task", lambda n: subjects.logs("n1", n)),
    ("logs-filter", subjects.logs_filter),
    ("assignment-node", lambda n: subjects.assignment_key(n, "web")),
    ("assignment-task", lambda n: subjects.assignment_key("n1", n)),
]


@pytest.mark.parametrize(
    ("build", "value"),
    [
        pytest.param(build, value.values[0], id=f"{name}-{value.id}")
        for name, build in BUILDERS
        for value in BAD_TOKENS
    ],
)
def test_every_builder_validates_its_names(build: Callable[[str], str], value: str) -> None:
    with pytest.raises(InvalidRequestError):
        build(value)


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        pytest.param(subjects.api("task", "create"), "voiyd.api.v1.task.create", id="api"),
        pytest.param(subjects.api_group("node"), "voiyd.api.v1.node", id="api-group"),
        pytest.param(subjects.event("task", "web-1"), "voiyd.events.task.web-1", id="event"),
        pytest.param(subjects.event("node", "n1"), "voiyd.events.node.n1", id="node-event"),
        pytest.param(subjects.events_filter(), "voiyd.events.>", id="filter-all"),
        pytest.param(subjects.events_filter("set"), "voiyd.events.set.*", id="filter-kind"),
        pytest.param(
            subjects.events_filter("task", "web"), "voiyd.events.task.web", id="filter-one"
        ),
        pytest.param(
            subjects.agent_heartbeat("n1"), "voiyd.agent.n1.heartbeat", id="agent-heartbeat"
        ),
        pytest.param(subjects.agent_report("n1"), "voiyd.agent.n1.report", id="agent-report"),
        pytest.param(
            subjects.agent_control("n1", "exec"), "voiyd.agent.n1.control.exec", id="control"
        ),
        pytest.param(subjects.logs("n1", "web"), "voiyd.logs.n1.web", id="logs"),
        pytest.param(subjects.logs_filter("web"), "voiyd.logs.*.web", id="logs-filter"),
        pytest.param(subjects.assignment_key("n1", "web"), "n1.web", id="assignment-key"),
    ],
)
def test_builders_make_the_documented_subjects(built: str, expected: str) -> None:
    assert built == expected


@pytest.mark.parametrize(
    ("kind", "verb"),
    [
        pytest.param("task", "a.b", id="verb-with-dot"),
        pytest.param("task", "*", id="verb-wildcard"),
        pytest.param("ta sk", "get", id="kind-with-space"),
        pytest.param(">", "get", id="kind-wildcard"),
        pytest.param("Task", "get", id="kind-uppercase"),
    ],
)
def test_api_subject_rejects_unsafe_parts(kind: str, verb: str) -> None:
    with pytest.raises(InvalidRequestError):
        subjects.api(kind, verb)


@pytest.mark.parametrize(
    "verb",
    [
        pytest.param("a.b", id="dot"),
        pytest.param("*", id="star"),
        pytest.param(">", id="gt"),
        pytest.param("Logs", id="uppercase"),
        pytest.param("", id="empty"),
    ],
)
def test_agent_control_rejects_unsafe_verbs(verb: str) -> None:
    with pytest.raises(InvalidRequestError, match="control verb"):
        subjects.agent_control("n1", verb)


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("widget", id="unknown"),
        pytest.param("tasks", id="plural"),
        pytest.param("", id="empty"),
        pytest.param("*", id="wildcard"),
    ],
)
def test_event_subject_rejects_unknown_kinds(kind: str) -> None:
    with pytest.raises(InvalidRequestError, match="unknown kind"):
        subjects.event(kind, "web")


def test_events_filter_refuses_a_name_without_a_kind() -> None:
    with pytest.raises(InvalidRequestError, match="needs a kind"):
        subjects.events_filter(None, "web")


@pytest.mark.parametrize("kind", subjects.KINDS)
def test_parse_event_subject_inverts_event(kind: str) -> None:
    assert subjects.parse_event_subject(subjects.event(kind, "x-1")) == (kind, "x-1")


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("voiyd.events.task", id="too-short"),
        pytest.param("voiyd.events.task.a.b", id="too-long"),
        pytest.param("voiyd.logs.task.web", id="other-prefix"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_event_subject_rejects_other_subjects(subject: str) -> None:
    with pytest.raises(ValueError, match="not an event subject"):
        subjects.parse_event_subject(subject)
