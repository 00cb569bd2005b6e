"""Bad input against the real API: refused with the right code, naming its field, appending nothing.

Each case runs against its own nats-server and in-process voiyd-server, seeded with one task
``web`` at revision 2 (created, then relabelled) so that revision 1 is stale. The event log's
message count is read before and after: a refused request must leave it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from nats.aio.client import Client

from tests.conftest import RunningServer
from voiyd.bus.rpc import (
    ERROR_CODE_HEADER,
    MAX_ERROR_FIELDS,
    MAX_ERROR_TEXT,
    MAX_REQUEST_BYTES,
    call,
)
from voiyd.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    VoiydError,
)

pytestmark = pytest.mark.nats

API = "voiyd.api.v1"
CREATE = f"{API}.task.create"
APPLY = f"{API}.task.apply"
UPDATE = f"{API}.task.update"
PATCH = f"{API}.task.patch"
DELETE = f"{API}.task.delete"
START = f"{API}.task.start"
STOP = f"{API}.task.stop"
GET = f"{API}.task.get"
LIST = f"{API}.task.list"
NODE_GET = f"{API}.node.get"
EVENTS = f"{API}.event.list"
INFO = f"{API}.system.info"
SET_CREATE = f"{API}.set.create"
SET_SCALE = f"{API}.set.scale"
SET_UNDO = f"{API}.set.undo"
SET_GET = f"{API}.set.get"
SET_DELETE = f"{API}.set.delete"
VOLUME_CREATE = f"{API}.volume.create"
VOLUME_DELETE = f"{API}.volume.delete"
VOLUME_GET = f"{API}.volume.get"
NODE_CORDON = f"{API}.node.cordon"
NODE_DRAIN = f"{API}.node.drain"
NODE_LABEL = f"{API}.node.label"
NODE_DELETE = f"{API}.node.delete"

WEB = {"meta": {"name": "web", "labels": {"app": "web"}}, "config": {"image": "nginx:alpine"}}
STALE_REVISION = 1


def doc(name: str = "api", labels: Any = None, **config: Any) -> dict[str, Any]:
    """A task document; ``config`` defaults to a valid docker task."""
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"meta": meta, "config": {"image": "nginx:alpine", **config}}


def create(**kwargs: Any) -> dict[str, Any]:
    return {"task": doc(**kwargs)}


def set_create(name: str = "web", **template: Any) -> dict[str, Any]:
    """A Set create request; ``template`` defaults to a valid docker task."""
    config = {"replicas": 2, "template": {"image": "nginx:alpine", **template}}
    return {"set": {"meta": {"name": name}, "config": config}}


def volume_create(name: str = "data", **config: Any) -> dict[str, Any]:
    return {"volume": {"meta": {"name": name}, "config": config}}


async def event_count(nc: Client) -> int:
    return int((await nc.jetstream().stream_info("VOIYD_EVENTS")).state.messages)


@pytest.fixture
async def seeded(api_server: RunningServer, nc: Client) -> Client:
    """The API with task ``web`` at revision 2, so that revision 1 is stale."""
    await call(nc, CREATE, {"task": WEB})
    patched = await call(nc, PATCH, {"name": "web", "labels": {"tier": "a"}})
    assert patched["revision"] == STALE_REVISION + 1
    return nc


@dataclass(frozen=True)
class Bad:
    subject: str
    body: dict[str, Any]
    error: type[VoiydError]
    loc: str | None
    """The field the error must name (a ``fields`` loc), or None when no field is to blame."""
    says: str = ""
    """Text the message (or the named field's message) must contain."""


def case(
    case_id: str,
    subject: str,
    body: dict[str, Any],
    error: type[VoiydError],
    loc: str | None,
    says: str = "",
) -> Any:
    return pytest.param(Bad(subject, body, error, loc, says), id=case_id)


INVALID = InvalidRequestError
CASES = [
    # ---- names ---------------------------------------------------------------------------------
    case("name-with-dot", CREATE, create(name="web.1"), INVALID, "task.meta.name", "'.'"),
    case("name-with-star", CREATE, create(name="web-*"), INVALID, "task.meta.name", "'*'"),
    case("name-with-gt", CREATE, create(name="web>"), INVALID, "task.meta.name", "'>'"),
    case("name-with-space", CREATE, create(name="my web"), INVALID, "task.meta.name", "spaces"),
    case("name-uppercase", CREATE, create(name="Web"), INVALID, "task.meta.name", "lowercase"),
    case("name-64-chars", CREATE, create(name="a" * 64), INVALID, "task.meta.name", "63"),
    case("name-empty", CREATE, create(name=""), INVALID, "task.meta.name", "empty"),
    case("get-name-with-dot", GET, {"name": "a.b"}, INVALID, "name", "'.'"),
    case("delete-name-wildcard", DELETE, {"name": ">"}, INVALID, "name", "'>'"),
    # ---- unknown fields and wrong types --------------------------------------------------------
    case("unknown-top-level-field", CREATE, {"task": WEB, "colour": "red"}, INVALID, "colour"),
    case(
        "unknown-document-field",
        CREATE,
        {"task": {**doc(), "spec": {}}},
        INVALID,
        "task.spec",
        "unknown field",
    ),
    case("unknown-config-field", CREATE, create(cpu=2), INVALID, "task.config.cpu", "unknown"),
    case(
        "wrong-version", CREATE, {"task": {**doc(), "version": "task/v9"}}, INVALID, "task.version"
    ),
    case("image-as-int", CREATE, create(image=42), INVALID, "task.config.image", "string"),
    case("image-with-space", CREATE, create(image="ngi nx"), INVALID, "task.config.image", "image"),
    case("ports-as-string", CREATE, create(ports="abc"), INVALID, "task.config.ports", "list"),
    case("args-as-string", CREATE, create(args="echo hi"), INVALID, "task.config.args", "list"),
    case(
        "labels-as-list",
        CREATE,
        create(labels=["app=web"]),
        INVALID,
        "task.meta.labels",
        "dictionary",
    ),
    case(
        "cpus-as-word",
        CREATE,
        create(resources={"cpus": "lots"}),
        INVALID,
        "task.config.resources.cpus",
    ),
    case("cpus-zero", CREATE, create(resources={"cpus": 0}), INVALID, "task.config.resources.cpus"),
    case(
        "privileged-as-word", CREATE, create(privileged="maybe"), INVALID, "task.config.privileged"
    ),
    case("list-limit-as-word", LIST, {"limit": "many"}, INVALID, "limit", "integer"),
    case("list-limit-zero", LIST, {"limit": 0}, INVALID, "limit"),
    case("events-since-as-list", EVENTS, {"since_seq": [1]}, INVALID, "since_seq"),
    case("task-missing", CREATE, {"dry_run": True}, INVALID, "task", "missing"),
    # ---- ports ---------------------------------------------------------------------------------
    case("port-zero", CREATE, create(ports=["0:80"]), INVALID, "task.config.ports.0.host"),
    case("port-70000", CREATE, create(ports=["70000:80"]), INVALID, "task.config.ports.0.host"),
    case(
        "container-port-65536",
        CREATE,
        create(ports=["8080:65536"]),
        INVALID,
        "task.config.ports.0.container",
    ),
    case(
        "port-one-number", CREATE, create(ports=["80"]), INVALID, "task.config.ports.0", "8080:80"
    ),
    case(
        "port-bad-protocol",
        CREATE,
        create(ports=["80:80/sctp"]),
        INVALID,
        "task.config.ports.0.protocol",
    ),
    case(
        "port-bad-host-ip",
        CREATE,
        create(ports=["1.2.3.999:80:80"]),
        INVALID,
        "task.config.ports.0.host_ip",
    ),
    case(
        "port-listed-twice",
        CREATE,
        create(ports=["8080:80", "8080:81"]),
        INVALID,
        "task.config",
        "8080/tcp is listed twice",
    ),
    # ---- resources, restart, env, labels, mounts, health, runtime ------------------------------
    case(
        "memory-below-6mi",
        CREATE,
        create(resources={"memory": "5Mi"}),
        INVALID,
        "task.config.resources.memory",
        "6Mi",
    ),
    case(
        "memory-garbage-unit",
        CREATE,
        create(resources={"memory": "12parsecs"}),
        INVALID,
        "task.config.resources.memory",
        "not a memory size",
    ),
    case(
        "memory-hundreds-of-digits",
        CREATE,
        create(resources={"memory": "9" * 400 + "Gi"}),
        INVALID,
        "task.config.resources.memory",
        "at most",
    ),
    case(
        "restart-always-with-count",
        CREATE,
        create(restart="always:3"),
        INVALID,
        "task.config.restart",
        "on-failure",
    ),
    case(
        "restart-unknown-policy",
        CREATE,
        create(restart="sometimes"),
        INVALID,
        "task.config.restart.policy",
    ),
    case(
        "restart-count-not-a-number",
        CREATE,
        create(restart="on-failure:x"),
        INVALID,
        "task.config.restart.max_retries",
    ),
    case(
        "env-name-leading-digit",
        CREATE,
        create(env={"1BAD": "x"}),
        INVALID,
        "task.config.env",
        "'1BAD'",
    ),
    case(
        "env-item-without-equals",
        CREATE,
        create(env=["JUSTNAME"]),
        INVALID,
        "task.config.env",
        "NAME=value",
    ),
    case(
        "label-key-with-space",
        CREATE,
        create(labels={"bad key": "x"}),
        INVALID,
        "task.meta.labels",
        "'bad key'",
    ),
    case(
        "label-value-too-long",
        CREATE,
        create(labels={"app": "v" * 64}),
        INVALID,
        "task.meta.labels",
        "63",
    ),
    case(
        "bind-mount-relative-source",
        CREATE,
        create(mounts=[{"type": "bind", "source": "data", "destination": "/data"}]),
        INVALID,
        "task.config.mounts.0",
        "absolute",
    ),
    case(
        "mount-bad-syntax",
        CREATE,
        create(mounts=["data"]),
        INVALID,
        "task.config.mounts.0",
        "mount",
    ),
    case(
        "http-probe-without-port",
        CREATE,
        create(health={"type": "http"}),
        INVALID,
        "task.config.health",
        "port",
    ),
    case(
        "docker-without-image",
        CREATE,
        create(image=None),
        INVALID,
        "task.config",
        "image is required",
    ),
    case("exec-without-args", CREATE, create(runtime="exec"), INVALID, "task.config", "args"),
    case("unknown-runtime", CREATE, create(runtime="podman"), INVALID, "task.config.runtime"),
    case(
        "node-selector-unbalanced",
        CREATE,
        create(node_selector="disk in (ssd"),
        INVALID,
        "task.config.node_selector",
        "unbalanced",
    ),
    # ---- queries -------------------------------------------------------------------------------
    case(
        "list-selector-unbalanced",
        LIST,
        {"selector": "app in (web"},
        INVALID,
        "selector",
        "unbalanced",
    ),
    case("list-selector-bad-key", LIST, {"selector": "bad key=x"}, INVALID, "selector"),
    case(
        "get-negative-min-revision",
        GET,
        {"name": "web", "min_revision": -1},
        INVALID,
        "min_revision",
    ),
    case("list-negative-min-revision", LIST, {"min_revision": -5}, INVALID, "min_revision"),
    case("events-bad-kind", EVENTS, {"kind": "Task!"}, INVALID, "kind"),
    case("events-unknown-kind", EVENTS, {"kind": "widget"}, INVALID, None, "unknown kind 'widget'"),
    case("events-name-without-kind", EVENTS, {"name": "web"}, INVALID, None, "needs a kind"),
    case("info-unknown-field", INFO, {"verbose": True}, INVALID, "verbose", "unknown field"),
    # ---- write options -------------------------------------------------------------------------
    case(
        "negative-expected-revision",
        CREATE,
        {**create(), "expected_revision": -1},
        INVALID,
        "expected_revision",
    ),
    case("actor-too-long", DELETE, {"name": "web", "actor": "x" * 129}, INVALID, "actor"),
    # ---- existence -----------------------------------------------------------------------------
    case(
        "duplicate-create", CREATE, {"task": WEB}, AlreadyExistsError, None, "'web' already exists"
    ),
    case("get-unknown", GET, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case("update-unknown", UPDATE, create(name="ghost"), NotFoundError, None, "'ghost'"),
    case(
        "patch-unknown",
        PATCH,
        {"name": "ghost", "labels": {"a": "b"}},
        NotFoundError,
        None,
        "'ghost'",
    ),
    case("delete-unknown", DELETE, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case("start-unknown", START, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case("stop-unknown", STOP, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case("node-get-unknown", NODE_GET, {"name": "n9"}, NotFoundError, None, "'n9'"),
    # ---- optimistic concurrency ----------------------------------------------------------------
    case(
        "update-stale-revision",
        UPDATE,
        {"task": doc(name="web", image="nginx:1"), "expected_revision": STALE_REVISION},
        ConflictError,
        None,
        "not 1",
    ),
    case(
        "apply-stale-revision",
        APPLY,
        {"task": doc(name="web", image="nginx:1"), "expected_revision": STALE_REVISION},
        ConflictError,
        None,
        "not 1",
    ),
    case(
        "delete-stale-revision",
        DELETE,
        {"name": "web", "expected_revision": STALE_REVISION},
        ConflictError,
        None,
        "not 1",
    ),
    case(
        "patch-stale-revision",
        PATCH,
        {"name": "web", "labels": {"tier": "b"}, "expected_revision": STALE_REVISION},
        ConflictError,
        None,
        "not 1",
    ),
    case(
        "stop-stale-revision",
        STOP,
        {"name": "web", "expected_revision": STALE_REVISION},
        ConflictError,
        None,
        "not 1",
    ),
    case(
        "create-new-task-expecting-a-revision",
        CREATE,
        {**create(name="fresh"), "expected_revision": 5},
        ConflictError,
        None,
        "not 5",
    ),
    # ---- patches -------------------------------------------------------------------------------
    case("patch-nothing", PATCH, {"name": "web"}, INVALID, None, "changes nothing"),
    case(
        "patch-bad-label-key",
        PATCH,
        {"name": "web", "labels": {"-x": "y"}},
        INVALID,
        "labels",
        "'-x'",
    ),
    case(
        "patch-port-out-of-range",
        PATCH,
        {"name": "web", "config": {"ports": ["0:80"]}},
        INVALID,
        "config.ports.0.host",
    ),
    case(
        "patch-removes-image",
        PATCH,
        {"name": "web", "config": {"image": None}},
        INVALID,
        "config",
        "image is required",
    ),
    case(
        "patch-unknown-config-field",
        PATCH,
        {"name": "web", "config": {"cpu": 1}},
        INVALID,
        "config.cpu",
    ),
    case("patch-labels-as-list", PATCH, {"name": "web", "labels": ["a"]}, INVALID, "labels"),
    # ---- sets ----------------------------------------------------------------------------------
    case("set-name-57-chars", SET_CREATE, set_create("a" * 57), INVALID, "set.meta.name", "56"),
    case(
        "set-replicas-negative",
        SET_CREATE,
        {"set": {"meta": {"name": "s"}, "config": {"replicas": -1, "template": {"image": "x"}}}},
        INVALID,
        "set.config.replicas",
    ),
    case(
        "set-without-template",
        SET_CREATE,
        {"set": {"meta": {"name": "s"}, "config": {}}},
        INVALID,
        "set.config.template",
        "missing",
    ),
    case(
        "set-template-port-zero",
        SET_CREATE,
        set_create(ports=["0:80"]),
        INVALID,
        "set.config.template.ports.0.host",
    ),
    case(
        "set-mounts-missing-volume",
        SET_CREATE,
        set_create(mounts=["ghost:/g"]),
        INVALID,
        "set.config.template.mounts.0.source",
        "'ghost' does not exist",
    ),
    case("set-scale-negative", SET_SCALE, {"name": "web", "replicas": -1}, INVALID, "replicas"),
    case(
        "set-scale-unknown",
        SET_SCALE,
        {"name": "ghost", "replicas": 1},
        NotFoundError,
        None,
        "'ghost'",
    ),
    case(
        "set-undo-revision-zero",
        SET_UNDO,
        {"name": "web", "to_revision": 0},
        INVALID,
        "to_revision",
    ),
    case("set-undo-unknown", SET_UNDO, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case("set-get-unknown", SET_GET, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case("set-delete-unknown", SET_DELETE, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    # ---- volumes -------------------------------------------------------------------------------
    case(
        "volume-host-local-without-node",
        VOLUME_CREATE,
        volume_create(type="host-local"),
        INVALID,
        "volume.config",
        "needs node",
    ),
    case(
        "volume-template-parent-path",
        VOLUME_CREATE,
        volume_create(type="template", files={"../etc/passwd": "x"}),
        INVALID,
        "volume.config.files",
        "'..'",
    ),
    case(
        "volume-unknown-type",
        VOLUME_CREATE,
        volume_create(type="nfs", node="n1"),
        INVALID,
        "volume.config.type",
    ),
    case(
        "volume-on-unknown-node",
        VOLUME_CREATE,
        volume_create(type="host-local", node="n9"),
        INVALID,
        "volume.config.node",
        "'n9' is unknown",
    ),
    case("volume-delete-unknown", VOLUME_DELETE, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case("volume-get-unknown", VOLUME_GET, {"name": "ghost"}, NotFoundError, None, "'ghost'"),
    case(
        "task-mounts-missing-volume",
        CREATE,
        create(mounts=["ghost:/g"]),
        INVALID,
        "task.config.mounts.0.source",
        "'ghost' does not exist",
    ),
    case(
        "patch-mounts-missing-volume",
        PATCH,
        {"name": "web", "config": {"mounts": ["ghost:/g"]}},
        INVALID,
        "config.mounts.0.source",
        "'ghost' does not exist",
    ),
    # ---- nodes ---------------------------------------------------------------------------------
    case("node-cordon-unknown", NODE_CORDON, {"name": "n9"}, NotFoundError, None, "'n9'"),
    case("node-delete-unknown", NODE_DELETE, {"name": "n9"}, NotFoundError, None, "'n9'"),
    case(
        "node-drain-deadline-zero",
        NODE_DRAIN,
        {"name": "n9", "deadline_s": 0},
        INVALID,
        "deadline_s",
    ),
    case("node-label-without-labels", NODE_LABEL, {"name": "n9"}, INVALID, "labels", "missing"),
    case(
        "node-label-unknown",
        NODE_LABEL,
        {"name": "n9", "labels": {"a": "b"}},
        NotFoundError,
        None,
        "'n9'",
    ),
    # ---- size ----------------------------------------------------------------------------------
    case(
        "payload-over-256kib",
        CREATE,
        create(env=[f"V{i}={'x' * 1024}" for i in range(300)]),
        INVALID,
        None,
        f"the limit is {MAX_REQUEST_BYTES}",
    ),
]


def _assert_names(err: VoiydError, bad: Bad) -> None:
    locs = [f.loc for f in err.fields]
    if bad.loc is None:
        assert locs == [], f"no field is to blame, yet the error names {locs}"
        assert bad.says in err.message
        return
    assert bad.loc in locs, f"{bad.loc!r} not among {locs} ({err.message})"
    named = next(f for f in err.fields if f.loc == bad.loc)
    assert bad.says in named.message or bad.says in err.message, (named, err.message)
    assert err.message.startswith(locs[0]), "the one-line message leads with the first field"


@pytest.mark.parametrize("bad", CASES)
async def test_bad_request_is_refused_naming_its_field_and_appends_nothing(
    seeded: Client, bad: Bad
) -> None:
    before = await event_count(seeded)
    with pytest.raises(VoiydError) as caught:
        await call(seeded, bad.subject, bad.body)
    assert type(caught.value) is bad.error, caught.value.to_wire()
    _assert_names(caught.value, bad)
    assert await event_count(seeded) == before


@pytest.mark.parametrize(
    ("subject", "payload", "says"),
    [
        pytest.param(CREATE, b"\xc1\xff garbage", "not valid msgpack", id="garbage-bytes"),
        pytest.param(CREATE, b"\x82\xa1a", "not valid msgpack", id="truncated-map"),
        pytest.param(CREATE, msgpack.packb([1, 2, 3]), "must be a msgpack map", id="list"),
        pytest.param(GET, msgpack.packb("web"), "must be a msgpack map", id="string"),
        pytest.param(LIST, msgpack.packb(7), "must be a msgpack map", id="int"),
        pytest.param(INFO, msgpack.packb(None), "must be a msgpack map", id="nil"),
        pytest.param(EVENTS, msgpack.packb({1: "a"}), "not valid msgpack", id="int-map-key"),
        pytest.param(PATCH, b"\xc1", "not valid msgpack", id="reserved-byte"),
    ],
)
async def test_undecodable_payload_gets_an_invalid_error_reply(
    seeded: Client, subject: str, payload: bytes, says: str
) -> None:
    before = await event_count(seeded)
    reply = await seeded.request(subject, payload, timeout=5)
    assert reply.headers is not None
    assert reply.headers[ERROR_CODE_HEADER] == "400"
    error = msgpack.unpackb(reply.data)["error"]
    assert error["code"] == "invalid"
    assert says in error["message"]
    assert await event_count(seeded) == before


@pytest.mark.parametrize(
    ("subject", "field_name"),
    [
        pytest.param(CREATE, "task", id="create"),
        pytest.param(APPLY, "task", id="apply"),
        pytest.param(GET, "name", id="get"),
        pytest.param(DELETE, "name", id="delete"),
    ],
)
async def test_empty_payload_is_invalid_naming_the_required_field(
    seeded: Client, subject: str, field_name: str
) -> None:
    before = await event_count(seeded)
    reply = await seeded.request(subject, b"", timeout=5)
    assert reply.headers is not None
    assert reply.headers[ERROR_CODE_HEADER] == "400"
    error = msgpack.unpackb(reply.data)["error"]
    assert error["code"] == "invalid"
    assert [f["loc"] for f in error["fields"]] == [field_name]
    assert await event_count(seeded) == before


async def test_deeply_nested_payload_is_invalid(seeded: Client) -> None:
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(200):
        inner["a"] = {}
        inner = inner["a"]
    before = await event_count(seeded)
    with pytest.raises(InvalidRequestError, match="nests deeper"):
        await call(seeded, PATCH, {"name": "web", "config": nested})
    assert await event_count(seeded) == before


async def test_thousands_of_bad_fields_get_one_bounded_error_reply(seeded: Client) -> None:
    labels = {f"k{i}": i for i in range(20_000)}  # every value of the wrong type
    before = await event_count(seeded)
    with pytest.raises(InvalidRequestError) as caught:
        await call(seeded, CREATE, create(labels=labels))
    err = caught.value
    assert err.fields[0].loc == "task.meta.labels.k0"
    assert len(err.fields) == MAX_ERROR_FIELDS
    assert "(and 19999 more)" in err.message
    assert await event_count(seeded) == before


async def test_error_reply_clips_a_huge_field_name(seeded: Client) -> None:
    key = "k" * 200_000
    before = await event_count(seeded)
    with pytest.raises(InvalidRequestError) as caught:
        await call(seeded, CREATE, create(labels={key: 1}))
    (named,) = caught.value.fields
    assert named.loc.startswith("task.meta.labels.kkk")
    assert len(named.loc) == len(caught.value.message) == MAX_ERROR_TEXT
    assert named.loc.endswith("...")
    assert await event_count(seeded) == before


async def test_server_still_serves_after_bad_input(seeded: Client) -> None:
    await seeded.request(CREATE, b"\xc1\xff garbage", timeout=5)
    with pytest.raises(InvalidRequestError):
        await call(seeded, CREATE, create(name="Bad.Name"))
    created = await call(seeded, CREATE, create(name="good"))
    assert created["changed"] is True
