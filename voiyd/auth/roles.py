"""CORE: who may do what on NATS: the permission matrix of every voiyd role.

Each role gets the subjects it publishes and subscribes to, no more; ``docs/security.md`` shows
the same matrix in prose. A node (``node-<name>``) may only publish its own heartbeat, reports
and task logs, watch its own keys of the assignments bucket (through the one consumer-create
subject that names its filter, ``$JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>``, which
nats-server checks against the request) and answer its own control requests. Every subject is
built from ``voiyd.bus.subjects``. A node may also read (never write) the ``voiyd-wheels`` object
store, where ``voiydctl upgrade node`` puts the wheels agents upgrade themselves from; only the
admin writes there. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from voiyd.bus import subjects
from voiyd.errors import InvalidRequestError

Role = Literal["server", "scheduler", "logrelay", "node", "admin", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
CLI_ROLES: tuple[Role, ...] = ("admin", "viewer")
DAEMON_ROLES: tuple[Role, ...] = ("server", "scheduler", "logrelay")

JS_API = "$JS.API"
JS_DOMAIN_API = "$JS.*.API"
"""The JetStream API as a leaf node's clients reach the hub's (``$JS.<domain>.API``)."""
READ_VERBS = ("get", "list")
"""API verbs that only read (``voiyd.api.v1.<kind>.<verb>``); so do ``event.list`` and
``system.info``. Every other verb writes."""
NODE_PREFIX = "node-"

_EVENTS = subjects.EVENTS_STREAM
_LOGS = subjects.LOGS_STREAM
_KV_STREAM = f"KV_{subjects.ASSIGNMENTS_BUCKET}"
_KV_PREFIX = f"$KV.{subjects.ASSIGNMENTS_BUCKET}"
_OWN_STREAMS = (_EVENTS, _LOGS, _KV_STREAM)
_WHEELS_STREAM = f"OBJ_{subjects.WHEELS_BUCKET}"
_WHEELS_PREFIX = f"$O.{subjects.WHEELS_BUCKET}"
_API_KINDS = (*subjects.KINDS, "event", "system")


@dataclass(frozen=True)
class Permissions:
    """What one NATS user may publish and subscribe to (nats-server ``permissions``)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False
    """May answer requests it received (publish once to their reply subjects)."""


def node_user(node: str) -> str:
    """The user name of a node's credentials: ``node-<name>``."""
    return f"{NODE_PREFIX}{subjects.token(node, 'node')}"


def node_watch_filter(node: str) -> str:
    """The filter of the consumer a node watches its assignments with: ``$KV.<bucket>.<node>.*``."""
    return f"{_KV_PREFIX}.{subjects.token(node, 'node')}.*"


def _stream_admin(streams: tuple[str, ...]) -> tuple[str, ...]:
    """Create, update and look at voiyd's streams (``ensure_streams``); never delete, purge."""
    return tuple(
        f"{JS_API}.STREAM.{op}.{s}" for s in streams for op in ("INFO", "CREATE", "UPDATE")
    )


def _stream_reader(stream: str) -> tuple[str, ...]:
    """Read one stream: its info, push consumers of it (nats-py's ordered ones), direct gets.

    No consumer deletes and no pulls: a reader could otherwise end or drain another's consumer.
    """
    return (
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.*",
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def _direct_reader(stream: str) -> tuple[str, ...]:
    """Read one stream with direct gets only: no consumers, no state on the server."""
    return (
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
    )


def _wheels_reader(api: str) -> tuple[str, ...]:
    """What nats-py's object store ``get`` sends: the stream's info, the object's meta (last
    message by subject) and an ordered push consumer of its chunks (flow control replies)."""
    return (
        f"{api}.STREAM.INFO.{_WHEELS_STREAM}",
        f"{api}.STREAM.MSG.GET.{_WHEELS_STREAM}",
        f"{api}.CONSUMER.CREATE.{_WHEELS_STREAM}",
    )


def _wheels_writer() -> tuple[str, ...]:
    """Create the bucket and put objects (``put`` purges the chunks of the object it replaces)."""
    return (
        *_wheels_reader(JS_API),
        f"{JS_API}.STREAM.CREATE.{_WHEELS_STREAM}",
        f"{JS_API}.STREAM.PURGE.{_WHEELS_STREAM}",
        f"{_WHEELS_PREFIX}.C.>",
        f"{_WHEELS_PREFIX}.M.>",
        f"$JS.FC.{_WHEELS_STREAM}.>",
    )


def _server() -> Permissions:
    publish = (
        f"{subjects.EVENTS_PREFIX}.>",
        f"{_KV_PREFIX}.>",
        f"{subjects.AGENT_PREFIX}.*.control.>",
        *_stream_admin(_OWN_STREAMS),
        *_stream_reader(_EVENTS),
        *_stream_reader(_KV_STREAM),
    )
    subscribe = (
        "_INBOX.>",
        *(f"{subjects.API_PREFIX}.{kind}.>" for kind in _API_KINDS),
        f"{subjects.AGENT_PREFIX}.*.report",
        f"{subjects.AGENT_PREFIX}.*.heartbeat",
        "$SRV.>",
    )
    return Permissions(_unique(publish), subscribe, allow_responses=True)


def _scheduler() -> Permissions:
    publish = (
        f"{subjects.EVENTS_PREFIX}.task.*",
        # the Set controller: rollout completed / failed, automatic rollback
        f"{subjects.EVENTS_PREFIX}.set.*",
        *_stream_admin(_OWN_STREAMS),
        *_stream_reader(_EVENTS),
    )
    return Permissions(_unique(publish), ("_INBOX.>",))


def _logrelay() -> Permissions:
    publish = (
        f"{subjects.AGENT_PREFIX}.*.control.>",
        *_stream_admin(_OWN_STREAMS),
        *_direct_reader(_LOGS),
        *_direct_reader(_EVENTS),
    )
    subscribe = (
        "_INBOX.>",
        f"{subjects.API_PREFIX}.logs.>",
        "$SRV.>",
        # Woken by new lines and task events while a follow request waits (core NATS).
        f"{subjects.LOGS_PREFIX}.>",
        f"{subjects.EVENTS_PREFIX}.task.*",
    )
    return Permissions(_unique(publish), subscribe, allow_responses=True)


def _node(node: str) -> Permissions:
    watch = f"CONSUMER.CREATE.{_KV_STREAM}.*.{node_watch_filter(node)}"
    info = f"STREAM.INFO.{_KV_STREAM}"
    # The last stored batch of its own logs (the shipper checks it before re-sending).
    last_log = f"DIRECT.GET.{_LOGS}.{subjects.LOGS_PREFIX}.{node}.>"
    publish = (
        subjects.agent_heartbeat(node),
        subjects.agent_report(node),
        f"{subjects.LOGS_PREFIX}.{node}.>",
        # The same two requests as the hub sees them from a leaf node (``$JS.<domain>.API``).
        *(f"{api}.{what}" for what in (info, watch, last_log) for api in (JS_API, JS_DOMAIN_API)),
        # Download the wheel of an upgrade; never put or delete one.
        *(s for api in (JS_API, JS_DOMAIN_API) for s in _wheels_reader(api)),
        f"$JS.FC.{_WHEELS_STREAM}.>",
    )
    subscribe = (f"_INBOX.{node}.>", f"{subjects.AGENT_PREFIX}.{node}.control.>")
    return Permissions(publish, subscribe, allow_responses=True)


def _admin() -> Permissions:
    publish = (
        f"{subjects.API_PREFIX}.>",
        f"{subjects.AGENT_PREFIX}.*.control.>",
        "$SRV.>",
        f"{JS_API}.INFO",
        f"{JS_API}.STREAM.NAMES",
        f"{JS_API}.STREAM.LIST",
        *(f"{JS_API}.CONSUMER.{op}.{s}" for s in _OWN_STREAMS for op in ("NAMES", "LIST")),
        *_stream_reader(_EVENTS),
        *_stream_reader(_LOGS),
        *_stream_reader(_KV_STREAM),
        *_wheels_writer(),
    )
    return Permissions(_unique(publish), ("_INBOX.>",))


def _viewer() -> Permissions:
    reads = (
        f"{subjects.API_PREFIX}.{kind}.{verb}" for kind in subjects.KINDS for verb in READ_VERBS
    )
    publish = (
        *reads,
        f"{subjects.API_PREFIX}.event.list",
        f"{subjects.API_PREFIX}.system.info",
        f"{subjects.API_PREFIX}.logs.>",
        *_stream_reader(_EVENTS),
        *_stream_reader(_LOGS),
    )
    return Permissions(_unique(publish), ("_INBOX.>",))


def permissions(role: Role, node: str | None = None) -> Permissions:
    """The permissions of ``role``; a node's need its name."""
    if (role == "node") != (node is not None):
        raise InvalidRequestError("a node role needs the node's name, and only it does")
    if node is not None:
        return _node(subjects.token(node, "node"))
    match role:
        case "server":
            return _server()
        case "scheduler":
            return _scheduler()
        case "logrelay":
            return _logrelay()
        case "admin":
            return _admin()
        case "viewer":
            return _viewer()
    raise InvalidRequestError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def matches(pattern: str, subject: str) -> bool:
    """Whether NATS subject ``pattern`` (with ``*`` and ``>``) matches ``subject``."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or token not in ("*", have[i]):
            return False
    return len(want) == len(have)


def allows(patterns: tuple[str, ...], subject: str) -> bool:
    return any(matches(p, subject) for p in patterns)
