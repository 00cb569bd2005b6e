"""Random payloads at every API subject: the server always answers, stays up, refuses cleanly.

One nats-server and one in-process voiyd-server serve the whole hypothesis run. Hypothesis drives
a plain function in a worker thread (``asyncio.to_thread``), and each example hands its requests
back to the test's event loop with ``run_coroutine_threadsafe``, so the server keeps running on
that loop between examples. State carried from one example to the next (tasks that a valid
payload created) is intended: later examples then also meet ``already_exists`` and real tasks.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from tests.conftest import RunningServer
from voiyd.bus.rpc import ERROR_CODE_HEADER, call
from voiyd.errors import ERRORS_BY_CODE

pytestmark = pytest.mark.nats

T = TypeVar("T")

API = "voiyd.api.v1"
EXPECTED_SUBJECTS = {
    *(f"{API}.task.{verb}" for verb in ("create", "apply", "update", "patch", "delete")),
    *(f"{API}.task.{verb}" for verb in ("start", "stop", "get", "list")),
    *(f"{API}.node.{verb}" for verb in ("get", "list", "cordon", "uncordon", "drain")),
    *(f"{API}.node.{verb}" for verb in ("label", "delete")),
    *(f"{API}.set.{verb}" for verb in ("create", "apply", "update", "delete", "scale")),
    *(f"{API}.set.{verb}" for verb in ("undo", "restart", "get", "list")),
    *(f"{API}.volume.{verb}" for verb in ("create", "apply", "delete", "get", "list")),
    f"{API}.event.list",
    f"{API}.system.info",
}
REFUSALS = {"invalid", "not_found", "already_exists", "conflict"}
"""The codes a bad request may get; never ``internal`` and never ``unavailable``."""
REPLY_TIMEOUT_S = 10.0

VALID_CREATE: dict[str, Any] = {
    "task": {
        "version": "task/v1",
        "meta": {"name": "fz-web", "labels": {"app": "web", "example.com/tier": "front"}},
        "config": {
            "runtime": "docker",
            "image": "nginx:alpine",
            "args": ["nginx", "-g", "daemon off;"],
            "env": {"MODE": "prod", "DEBUG": ""},
            "workdir": "/srv",
            "ports": ["8080:80", {"host": 8443, "container": 443, "protocol": "tcp"}],
            "mounts": ["data:/data", "/etc/hosts:/etc/hosts:ro"],
            "node_selector": "disk in (ssd,nvme),!gpu",
            "resources": {"cpus": 0.5, "memory": "256Mi"},
            "restart": "on-failure:3",
            "health": {"type": "http", "port": 80, "path": "/healthz"},
            "user": "1000:1000",
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["cap_mknod"]},
            "stop_timeout_s": 5,
        },
    },
    "dry_run": False,
    "actor": "fuzz",
}

# Field names of the real requests, so that random maps often reach past the first check.
# ``min_revision`` is left out on purpose: an unreachable one is answered ``unavailable``
# after the bounded wait, which is correct but not a refusal of bad input.
FIELD_NAMES = [
    *("task", "meta", "config", "name", "labels", "version", "image", "args", "env", "ports"),
    *("mounts", "resources", "cpus", "memory", "restart", "policy", "max_retries", "health"),
    *("type", "port", "runtime", "node_selector", "selector", "limit", "kind", "since_seq"),
    *("expected_revision", "dry_run", "actor", "host", "container", "source", "destination"),
]
NAMES = ["fz-web", "fz-a", "fz-b", "web", "n1"]

keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=16)
    | st.sampled_from(NAMES)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in ``value``, so a mutation can pick any place."""
    out: list[tuple[Any, Any]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        out.append((value, key))
        if isinstance(item, dict | list) and item:
            out.extend(_slots(item))
    return out


@st.composite
def mutated_create(draw: st.DrawFn) -> dict[str, Any]:
    """The valid create request with up to three random edits: replace, drop or add a field."""
    body = copy.deepcopy(VALID_CREATE)
    body["task"]["meta"]["name"] = draw(st.sampled_from(NAMES))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        container, key = draw(st.sampled_from(_slots(body)))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            container[key] = draw(values)
        elif action == "drop":
            del container[key]
        elif isinstance(container, dict):
            container[draw(keys)] = draw(values)
        else:
            container.append(draw(values))
    return body


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


CONFIG_FIELDS = ["image", "args", "env", "ports", "mounts", "resources", "restart", "health"]
CONFIG_EDITS: list[dict[str, Any]] = [
    {"image": "nginx:1.27"},
    {"ports": ["9090:90/udp"]},
    {"env": {"A": "1", "MODE": None}},
    {"resources": {"memory": "64Mi", "cpus": None}},
    {"restart": "never"},
    {"health": None},
    {"mounts": []},
]
names = st.sampled_from(NAMES)
revisions = st.integers(min_value=0, max_value=60)
label_keys = st.sampled_from(["app", "tier", "example.com/team"]) | keys
label_values = st.none() | st.sampled_from(["a", "web", ""]) | st.text(max_size=8)
selector_text = st.lists(
    st.sampled_from(["app", "b", "=", "!=", "==", ",", "(", ")", " in ", " notin ", "!", " "]),
    max_size=8,
).map("".join)

named_write = st.fixed_dictionaries(
    {"name": names}, optional={"expected_revision": revisions, "dry_run": st.booleans()}
)
patch = st.fixed_dictionaries(
    {"name": names},
    optional={
        "labels": st.dictionaries(label_keys, label_values, max_size=3),
        "config": st.sampled_from(CONFIG_EDITS)
        | st.dictionaries(st.sampled_from(CONFIG_FIELDS), values, max_size=2),
        "expected_revision": revisions,
        "dry_run": st.booleans(),
    },
)
get = st.fixed_dictionaries({"name": names})
list_query = st.fixed_dictionaries(
    {}, optional={"selector": selector_text, "limit": st.integers(min_value=-1, max_value=20_000)}
)
event_query = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["task", "node", "set", "volume", "widget", "Task"]),
        "name": names,
        "since_seq": st.integers(min_value=-1, max_value=1_000),
        "limit": st.integers(min_value=-1, max_value=20_000),
    },
)
PLAUSIBLE: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    **dict.fromkeys(["task.create", "task.apply", "task.update"], mutated_create()),
    "task.patch": patch,
    **dict.fromkeys(["task.delete", "task.start", "task.stop"], named_write),
    **dict.fromkeys(["task.get", "node.get"], get),
    **dict.fromkeys(["task.list", "node.list"], list_query),
    "event.list": event_query,
    "system.info": st.just({}),
}
"""Per endpoint, requests near its real shape, so that many get past parsing to a decision."""

random_payloads = (
    st.binary(max_size=256) | values.map(_pack) | st.dictionaries(keys, values).map(_pack)
)


@st.composite
def requests(draw: st.DrawFn, subjects: list[str]) -> tuple[str, bytes]:
    """A subject and a payload: random, plausible for another endpoint, or for this one."""
    subject = draw(st.sampled_from(subjects))
    own = PLAUSIBLE.get(subject.removeprefix(f"{API}."))
    anyone = st.one_of(*PLAUSIBLE.values())
    # An endpoint added later, without an entry in PLAUSIBLE, still gets the rest.
    mine = [] if own is None else [own.map(_pack)] * 2
    chosen = st.one_of(random_payloads, anyone.map(_pack), *mine)
    return subject, draw(chosen)


async def event_count(nc: Client) -> int:
    return int((await nc.jetstream().stream_info("VOIYD_EVENTS")).state.messages)


async def served_api_subjects(nc: Client) -> list[str]:
    """The ``voiyd.api.v1.*`` subjects the ``voiyd`` micro service says it serves.

    The service also serves the agents' ``voiyd.agent.*.report``: that is the agent protocol,
    not the API, and is left out here.
    """
    reply = await nc.request("$SRV.INFO.voiyd", b"", timeout=REPLY_TIMEOUT_S)
    served = (endpoint["subject"] for endpoint in json.loads(reply.data)["endpoints"])
    return sorted(s for s in served if s.startswith(f"{API}."))


async def throw(nc: Client, subject: str, payload: bytes) -> str:
    """Send one payload and check the properties (raises on a violation); returns the outcome
    (``ok`` or the error code), which helps when exploring with a larger ``max_examples``."""
    before = await event_count(nc)
    reply = await nc.request(subject, payload, timeout=REPLY_TIMEOUT_S)
    headers = reply.headers or {}
    body = msgpack.unpackb(reply.data, raw=False)
    assert isinstance(body, dict), body
    if ERROR_CODE_HEADER not in headers:
        assert "error" not in body, body
        return "ok"
    error = body["error"]
    assert error["code"] in REFUSALS, (subject, error)
    assert headers[ERROR_CODE_HEADER] == str(ERRORS_BY_CODE[error["code"]].status)
    assert await event_count(nc) == before, f"refused request on {subject} appended events"
    return str(error["code"])


async def test_random_payloads_always_get_an_answer_and_refusals_append_nothing(
    api_server: RunningServer, nc: Client
) -> None:
    subjects = await served_api_subjects(nc)
    assert set(subjects) >= EXPECTED_SUBJECTS
    loop = asyncio.get_running_loop()

    def on_loop(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=2 * REPLY_TIMEOUT_S)

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(subjects))
    def fuzz(request: tuple[str, bytes]) -> None:
        subject, payload = request
        on_loop(throw(nc, subject, payload))

    await asyncio.to_thread(fuzz)

    # Still alive and still correct: a valid write and a read of it succeed.
    volume = {"meta": {"name": "data"}, "config": {"type": "template", "files": {"a": "b"}}}
    await call(nc, f"{API}.volume.apply", {"volume": volume})  # the task mounts it
    body = copy.deepcopy(VALID_CREATE)
    body["task"]["meta"]["name"] = "after-fuzz"
    created = await call(nc, f"{API}.task.create", body)
    got = await call(
        nc, f"{API}.task.get", {"name": "after-fuzz", "min_revision": created["revision"]}
    )
    assert got["task"]["config"]["resources"]["memory"] == 256 * 1024**2
