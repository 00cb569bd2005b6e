"""CORE: every NATS subject and stream name voiyd uses, built here and nowhere else.

Tokens are validated: a name is ``[a-z0-9][a-z0-9-]*`` so it can never add a token (``.``) or
become a wildcard (``*``, ``>``). ``docs/subjects.md`` documents each of these; keep them in step.
"""

from __future__ import annotations

import re

from voiyd.errors import InvalidRequestError
from voiyd.ids import name_problem

API_PREFIX = "voiyd.api.v1"
EVENTS_PREFIX = "voiyd.events"
AGENT_PREFIX = "voiyd.agent"
LOGS_PREFIX = "voiyd.logs"

EVENTS_STREAM = "VOIYD_EVENTS"
LOGS_STREAM = "VOIYD_LOGS"
ASSIGNMENTS_BUCKET = "voiyd-assignments"
WHEELS_BUCKET = "voiyd-wheels"
"""JetStream object store holding agent wheels for ``voiydctl upgrade node``."""
UPGRADE_VERB = "upgrade"
"""``voiyd.agent.<node>.control.upgrade``: the agent installs a wheel and restarts itself."""

API_SERVICE = "voiyd"
LOGS_SERVICE = "voiyd-logs"

EVENT_HEADER = "Voiyd-Event"
"""Header carrying the event type, so consumers can filter without decoding the payload."""

KINDS = ("task", "node", "volume", "set")
_VERB_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def token(value: str, what: str = "name") -> str:
    """``value`` if it is a safe subject token, else ``InvalidRequestError``."""
    problem = name_problem(value)
    if problem:
        raise InvalidRequestError(f"{what}: {problem}")
    return value


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidRequestError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def api(kind: str, verb: str) -> str:
    """``voiyd.api.v1.<kind>.<verb>``: request/reply served by the ``voiyd`` micro service."""
    if not _VERB_RE.match(kind) or not _VERB_RE.match(verb):
        raise InvalidRequestError(f"bad API subject parts {kind!r}.{verb!r}")
    return f"{API_PREFIX}.{kind}.{verb}"


def api_group(kind: str) -> str:
    return f"{API_PREFIX}.{kind}"


def event(kind: str, name: str) -> str:
    """``voiyd.events.<kind>.<name>``: one subject per aggregate."""
    return f"{EVENTS_PREFIX}.{_kind(kind)}.{token(name)}"


def events_filter(kind: str | None = None, name: str | None = None) -> str:
    """A filter over the event log: everything, one kind, or one aggregate."""
    if kind is None:
        if name is not None:
            raise InvalidRequestError("a name filter needs a kind")
        return f"{EVENTS_PREFIX}.>"
    if name is None:
        return f"{EVENTS_PREFIX}.{_kind(kind)}.*"
    return event(kind, name)


def parse_event_subject(subject: str) -> tuple[str, str]:
    """``(kind, name)`` of an event subject."""
    parts = subject.split(".")
    if len(parts) != 4 or f"{parts[0]}.{parts[1]}" != EVENTS_PREFIX:
        raise ValueError(f"not an event subject: {subject!r}")
    return parts[2], parts[3]


def agent_heartbeat(node: str) -> str:
    return f"{AGENT_PREFIX}.{token(node, 'node')}.heartbeat"


def agent_report(node: str) -> str:
    return f"{AGENT_PREFIX}.{token(node, 'node')}.report"


def agent_control(node: str, verb: str) -> str:
    if not _VERB_RE.match(verb):
        raise InvalidRequestError(f"bad control verb {verb!r}")
    return f"{AGENT_PREFIX}.{token(node, 'node')}.control.{verb}"


def logs(node: str, task: str) -> str:
    """``voiyd.logs.<node>.<task>``: one task's output as shipped by one node.

    The node is in the subject so that a node's NATS user can be allowed to publish the logs of
    its own tasks only (``voiyd.logs.<node>.>``); readers of a task use ``logs_filter``.
    """
    return f"{LOGS_PREFIX}.{token(node, 'node')}.{token(task, 'task')}"


def logs_filter(task: str) -> str:
    """Every node's output of one task: ``voiyd.logs.*.<task>``."""
    return f"{LOGS_PREFIX}.*.{token(task, 'task')}"


def assignment_key(node: str, task: str) -> str:
    """Key ``<node>.<task>`` in the ``voiyd-assignments`` bucket."""
    return f"{token(node, 'node')}.{token(task, 'task')}"
