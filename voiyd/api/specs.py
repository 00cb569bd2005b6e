"""CORE: the resource documents operators write (``version``, ``meta``, ``config``) and their rules.

A Task document is what ``voiydctl apply -f`` reads, what ``task.create`` carries, what the
``task.created`` event stores and what ``get -o yaml`` prints back, so one model serves all four.
Every validator names its field and says what would be valid; nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from voiyd.api.labels import MAX_LABELS, label_key_problem, label_value_problem
from voiyd.api.selectors import SelectorError, parse_selector, selector_from_mapping
from voiyd.api.units import MAX_MEMORY, parse_memory
from voiyd.ids import name_problem

MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses limits below 6 MiB; so do we, for every runtime.
MAX_CPUS = 1024.0
MAX_ARGS = 256
MAX_ENV = 256
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
_CAP_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_ANY_IP = "0.0.0.0"
_PORT_RE = re.compile(
    r"^(?:(?P<ip>[0-9.]+):)?(?P<host>\d+):(?P<container>\d+)(?:/(?P<proto>[A-Za-z]+))?$"
)


class Frozen(BaseModel):
    """Base of every spec model: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, val in value.items():
        if problem := label_key_problem(key):
            raise ValueError(f"label key {key!r}: {problem}")
        if problem := label_value_problem(val):
            raise ValueError(f"label {key!r} value {val!r}: {problem}")
    return dict(sorted(value.items()))


Name = Annotated[str, Field(max_length=63), AfterValidator(_check_name)]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]


class Meta(Frozen):
    name: Name
    labels: Labels = Field(default_factory=dict)


def _port_from_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    m = _PORT_RE.match(value.strip())
    if not m:
        raise ValueError(
            f"{value!r} is not a port mapping: use [host_ip:]host:container[/tcp|udp], e.g. 8080:80"
        )
    out: dict[str, Any] = {"host": int(m["host"]), "container": int(m["container"])}
    if m["ip"]:
        out["host_ip"] = m["ip"]
    if m["proto"]:
        out["protocol"] = m["proto"].lower()
    return out


class PortMapping(Frozen):
    host: int = Field(ge=1, le=65535)
    container: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = "0.0.0.0"

    @field_validator("host_ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if value == _ANY_IP:
            return value  # the common case, without parsing it
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None
        return value

    def __str__(self) -> str:
        ip = "" if self.host_ip == "0.0.0.0" else f"{self.host_ip}:"
        return f"{ip}{self.host}:{self.container}/{self.protocol}"


Port = Annotated[PortMapping, BeforeValidator(_port_from_text)]


def _mount_from_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise ValueError(
            f"{value!r} is not a mount: use VOLUME:/dest[:ro] or /host/path:/dest[:ro]"
        )
    source, dest = parts[0], parts[1]
    return {
        "type": "bind" if source.startswith("/") else "volume",
        "source": source,
        "destination": dest,
        "read_only": len(parts) == 3 and parts[2] == "ro",
    }


class Mount(Frozen):
    type: Literal["volume", "bind"]
    source: str = Field(min_length=1, max_length=4096)
    destination: str = Field(min_length=1, max_length=4096)
    read_only: bool = False

    @field_validator("destination")
    @classmethod
    def _dest(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path inside the task")
        return value

    @model_validator(mode="after")
    def _source_matches_type(self) -> Mount:
        if self.type == "bind" and not self.source.startswith("/"):
            raise ValueError(f"bind mount source {self.source!r} must be an absolute host path")
        if self.type == "volume" and (problem := name_problem(self.source)):
            raise ValueError(f"volume name: {problem}")
        return self


MountSpec = Annotated[Mount, BeforeValidator(_mount_from_text)]


def _memory(value: Any) -> Any:
    if isinstance(value, str):
        return parse_memory(value)
    return value


class Resources(Frozen):
    cpus: float | None = Field(default=None, gt=0, le=MAX_CPUS)
    memory: Annotated[int | None, BeforeValidator(_memory)] = None

    @field_validator("memory")
    @classmethod
    def _min_memory(cls, value: int | None) -> int | None:
        if value is not None and value < MIN_MEMORY:
            raise ValueError(f"must be at least 6Mi ({MIN_MEMORY} bytes), the runtimes' minimum")
        if value is not None and value > MAX_MEMORY:
            raise ValueError(f"must be at most {MAX_MEMORY} bytes")
        return value


def _restart_from_text(value: Any) -> Any:
    if isinstance(value, str):
        policy, _, count = value.partition(":")
        out: dict[str, Any] = {"policy": policy}
        if count:
            out["max_retries"] = count
        return out
    return value


class RestartPolicy(Frozen):
    policy: Literal["always", "on-failure", "never"] = "always"
    max_retries: int | None = Field(default=None, ge=0, le=1_000_000)
    backoff_s: float = Field(default=1.0, gt=0, le=3600)
    max_backoff_s: float = Field(default=60.0, gt=0, le=86400)

    @model_validator(mode="after")
    def _retries_only_on_failure(self) -> RestartPolicy:
        if self.max_retries is not None and self.policy != "on-failure":
            raise ValueError("max_retries applies only to the on-failure policy")
        return self


Restart = Annotated[RestartPolicy, BeforeValidator(_restart_from_text)]


class HealthCheck(Frozen):
    type: Literal["cmd", "http", "tcp"]
    cmd: list[str] = Field(default_factory=list, max_length=MAX_ARGS)
    port: int | None = Field(default=None, ge=1, le=65535)
    path: str = "/"
    interval_s: float = Field(default=10.0, gt=0, le=3600)
    timeout_s: float = Field(default=5.0, gt=0, le=3600)
    retries: int = Field(default=3, ge=1, le=100)
    start_period_s: float = Field(default=0.0, ge=0, le=86400)

    @model_validator(mode="after")
    def _probe_complete(self) -> HealthCheck:
        if self.type == "cmd" and not self.cmd:
            raise ValueError("a cmd probe needs cmd (the command to run)")
        if self.type in ("http", "tcp") and self.port is None:
            raise ValueError(f"an {self.type} probe needs port")
        if self.type == "http" and not self.path.startswith("/"):
            raise ValueError("path must start with '/'")
        return self


def _caps(value: list[str]) -> list[str]:
    out = []
    for cap in value:
        norm = cap.upper().removeprefix("CAP_")
        if not _CAP_RE.match(norm):
            raise ValueError(f"{cap!r} is not a Linux capability name (e.g. NET_ADMIN)")
        out.append(norm)
    return sorted(set(out))


class Capabilities(Frozen):
    add: Annotated[list[str], AfterValidator(_caps)] = Field(default_factory=list)
    drop: Annotated[list[str], AfterValidator(_caps)] = Field(default_factory=list)


def _env_from_any(value: Any) -> Any:
    """Accept ``{K: V}``, ``["K=V"]`` or upstream's ``[{name, value}]``."""
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for i, item in enumerate(value):
            if isinstance(item, str):
                key, sep, val = item.partition("=")
                if not sep:
                    raise ValueError(f"item {i}: {item!r} is not NAME=value")
                out[key] = val
            elif isinstance(item, Mapping) and set(item) <= {"name", "value"} and "name" in item:
                out[str(item["name"])] = item.get("value", "")
            else:
                raise ValueError(f"item {i}: expected NAME=value or {{name, value}}")
        return out
    return value


def _check_env(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_ENV:
        raise ValueError(f"at most {MAX_ENV} variables")
    for key in value:
        if not _ENV_NAME_RE.match(key):
            raise ValueError(
                f"{key!r} is not a valid variable name (letters, digits and '_', no leading digit)"
            )
    return dict(sorted(value.items()))


def _selector_from_any(value: Any) -> Any:
    """Accept upstream's ``{key: value}`` map or a selector string; store the canonical string."""
    try:
        if isinstance(value, Mapping):
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise ValueError("a node_selector map takes string keys and string values")
            return str(selector_from_mapping(dict(value)))
        if isinstance(value, list):
            return str(parse_selector(",".join(str(v) for v in value)))
        if isinstance(value, str):
            return str(parse_selector(value))
    except SelectorError as exc:
        raise ValueError(str(exc)) from None
    return value


def _port_clash(ports: list[PortMapping]) -> PortMapping | None:
    """The first port whose host side another one already binds (0.0.0.0 binds every address)."""
    bound: dict[tuple[int, str], set[str]] = {}
    for port in ports:
        ips = bound.setdefault((port.host, port.protocol), set())
        if port.host_ip in ips or (ips and (port.host_ip == _ANY_IP or _ANY_IP in ips)):
            return port
        ips.add(port.host_ip)
    return None


class TaskConfig(Frozen):
    runtime: Literal["docker", "exec"] = "docker"
    image: str | None = Field(default=None, max_length=512)
    args: list[Annotated[str, Field(max_length=65536)]] = Field(
        default_factory=list, max_length=MAX_ARGS
    )
    env: Annotated[dict[str, str], BeforeValidator(_env_from_any), AfterValidator(_check_env)] = (
        Field(default_factory=dict)
    )
    workdir: str | None = Field(default=None, max_length=4096)
    ports: list[Port] = Field(default_factory=list, max_length=64)
    mounts: list[MountSpec] = Field(default_factory=list, max_length=64)
    node_selector: Annotated[str, BeforeValidator(_selector_from_any)] = ""
    resources: Resources = Field(default_factory=Resources)
    restart: Restart = Field(default_factory=RestartPolicy)
    health: HealthCheck | None = None
    user: str | None = Field(default=None, max_length=256)
    privileged: bool = False
    capabilities: Capabilities = Field(default_factory=Capabilities)
    stop_timeout_s: float = Field(default=10.0, gt=0, le=3600)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE_RE.match(value):
            raise ValueError(f"{value!r} is not an image reference (e.g. nginx:alpine)")
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not _USER_RE.match(value):
            raise ValueError(f"{value!r} is not user[:group] (names or numeric ids)")
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be an absolute path")
        return value

    @model_validator(mode="after")
    def _runtime_needs(self) -> TaskConfig:
        if self.runtime == "docker" and not self.image:
            raise ValueError("image is required for the docker runtime")
        if self.runtime == "exec" and not self.args:
            raise ValueError("args (the command line) is required for the exec runtime")
        if clash := _port_clash(self.ports):
            raise ValueError(f"host port {clash.host}/{clash.protocol} is listed twice")
        dests = [m.destination for m in self.mounts]
        if len(dests) != len(set(dests)):
            raise ValueError("two mounts have the same destination")
        return self


class TaskDoc(Frozen):
    """A Task as written in a manifest: ``{version: task/v1, meta: {...}, config: {...}}``."""

    version: Literal["task/v1"] = "task/v1"
    meta: Meta
    config: TaskConfig

    @property
    def name(self) -> str:
        return self.meta.name


SET_LABEL = "voiyd.io/set"
"""Label on every member task of a Set: the Set's name."""
SET_REVISION_LABEL = "voiyd.io/set-revision"
"""Label on every member task of a Set: the Set's template revision the task runs. A member
whose config already equals a new revision's template (a rollback) only gets the new label."""
SET_RESTART_LABEL = "voiyd.io/set-restart"
"""Label on the members of a Set that was ``rollout restart``-ed: the revision of the latest
restart. A change of this label alone is a new placement (the task is replaced), like the
``restartedAt`` annotation kubectl puts in a pod template."""
_MEMBER_LABEL_KEYS = (SET_LABEL, SET_REVISION_LABEL, SET_RESTART_LABEL)
_MEMBER_LABELS = len(_MEMBER_LABEL_KEYS)
SET_NAME_MAX = 56
"""Longest Set name: its members are ``<set>-<n>`` and a task name is at most 63 characters."""
MAX_REPLICAS = 1000
MAX_TEMPLATE_BYTES = 256 * 1024
"""Total size of a template volume's files. They travel in events and in assignments, and a
NATS message is at most 1 MiB by default (``max_payload``)."""
MAX_TASK_TEMPLATE_BYTES = 512 * 1024
"""Total size of the template volumes one task mounts (its assignment carries them all)."""
_FILE_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$")


class UpdateStrategy(Frozen):
    """How a changed Set template rolls out to the Set's tasks."""

    max_parallel: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    """Tasks replaced at once: at most this many members are unavailable (stop-first) or extra
    (start-first) during a rollout, and a drain moves at most this many at a time."""
    min_healthy_s: float = Field(default=0.0, ge=0, le=3600)
    """How long a new task must run (and pass its health check) before it counts as available."""
    deadline_s: float = Field(default=600.0, gt=0, le=86400)
    """A rollout not complete this long after it started has failed."""
    order: Literal["stop-first", "start-first"] = "stop-first"
    auto_rollback: bool = False
    """On failure, roll back to the previous template by itself."""


class SetConfig(Frozen):
    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    template: TaskConfig
    update: UpdateStrategy = Field(default_factory=UpdateStrategy)


def _check_set_name(value: str) -> str:
    if len(value) > SET_NAME_MAX:
        raise ValueError(
            f"a Set name is at most {SET_NAME_MAX} characters (its tasks are <set>-<n>)"
        )
    return value


def _check_set_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS - _MEMBER_LABELS:
        raise ValueError(
            f"a Set has at most {MAX_LABELS - _MEMBER_LABELS} labels (its tasks add "
            f"{_MEMBER_LABELS} of their own)"
        )
    if reserved := sorted(k for k in value if k in _MEMBER_LABEL_KEYS):
        raise ValueError(f"{', '.join(reserved)}: set by voiyd on a Set's tasks, not by hand")
    return value


class SetMeta(Meta):
    name: Annotated[Name, AfterValidator(_check_set_name)]
    labels: Annotated[Labels, AfterValidator(_check_set_labels)] = Field(default_factory=dict)


class SetDoc(Frozen):
    """A Set: ``replicas`` tasks named ``<set>-<n>`` from one task template."""

    version: Literal["set/v1"] = "set/v1"
    meta: SetMeta
    config: SetConfig

    @property
    def name(self) -> str:
        return self.meta.name


def template_size(files: Mapping[str, str]) -> int:
    """Bytes of a template volume's files, as counted against the limits."""
    return sum(len(path) + len(content.encode()) for path, content in files.items())


def _check_files(value: dict[str, str]) -> dict[str, str]:
    for path in value:
        if not _FILE_RE.match(path) or any(part in (".", "..") for part in path.split("/")):
            raise ValueError(
                f"{path!r} is not a relative file path (letters, digits, '_', '-', '.', "
                "parts separated by '/', no '..')"
            )
    total = template_size(value)
    if total > MAX_TEMPLATE_BYTES:
        raise ValueError(f"files total {total} bytes, more than {MAX_TEMPLATE_BYTES}")
    return dict(sorted(value.items()))


class VolumeConfig(Frozen):
    type: Literal["host-local", "template"] = "host-local"
    node: Name | None = None
    """host-local: the node that holds the data (tasks mounting it are placed there).
    template: optional; without it the template is mounted on any node."""
    files: Annotated[dict[str, str], AfterValidator(_check_files)] = Field(default_factory=dict)
    """template: file path (relative) -> content, mounted read-only."""

    @model_validator(mode="after")
    def _type_needs(self) -> VolumeConfig:
        if self.type == "host-local":
            if self.node is None:
                raise ValueError("a host-local volume needs node (where its data lives)")
            if self.files:
                raise ValueError("files belong to template volumes, not host-local ones")
        if self.type == "template" and not self.files:
            raise ValueError("a template volume needs files (path: content)")
        return self


class VolumeDoc(Frozen):
    version: Literal["volume/v1"] = "volume/v1"
    meta: Meta
    config: VolumeConfig

    @property
    def name(self) -> str:
        return self.meta.name


AnyDoc = TaskDoc | SetDoc | VolumeDoc

KINDS: dict[str, str] = {"task/v1": "task", "set/v1": "set", "volume/v1": "volume"}
"""Manifest ``version`` strings this release understands, and the kind each names."""
DOC_MODELS: dict[str, type[TaskDoc] | type[SetDoc] | type[VolumeDoc]] = {
    "task": TaskDoc,
    "set": SetDoc,
    "volume": VolumeDoc,
}
