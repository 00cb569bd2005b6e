"""The Task document's rules (voiyd.api.specs): what is accepted, how it is normalised, and which
field a refusal names."""

from __future__ import annotations

from typing import Any

import pytest

from voiyd.api.specs import MIN_MEMORY, PortMapping, TaskDoc
from voiyd.api.units import MAX_MEMORY
from voiyd.api.validation import parse_model
from voiyd.errors import InvalidRequestError

Mi = 1024**2


def doc(name: str = "web", labels: Any = None, **config: Any) -> dict[str, Any]:
    """A task document; ``config`` is merged over a valid docker config."""
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"meta": meta, "config": {"image": "nginx:alpine", **config}}


def valid(data: dict[str, Any]) -> TaskDoc:
    return parse_model(TaskDoc, data)


def refusal(data: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse_model(TaskDoc, data)
    return caught.value


def assert_refused(data: dict[str, Any], loc: str, says: str = "") -> None:
    err = refusal(data)
    locs = [f.loc for f in err.fields]
    assert loc in locs, f"{loc!r} not among {locs}: {err.message}"
    assert says in next(f.message for f in err.fields if f.loc == loc)


# ---- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("a", id="one-char"),
        pytest.param("web-1", id="dash"),
        pytest.param("0web", id="leading-digit"),
        pytest.param("a" * 63, id="63-chars"),
    ],
)
def test_task_name_is_accepted_when_lowercase_digits_and_dashes(name: str) -> None:
    assert valid(doc(name=name)).name == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        pytest.param("web.1", "'.'", id="dot"),
        pytest.param("web-*", "'*'", id="star-wildcard"),
        pytest.param("web>", "'>'", id="gt-wildcard"),
        pytest.param("my web", "spaces", id="space"),
        pytest.param("web\t1", "not a valid name", id="tab"),
        pytest.param("Web", "lowercase", id="uppercase"),
        pytest.param("web_1", "not a valid name", id="underscore"),
        pytest.param("-web", "starting with a letter or digit", id="leading-dash"),
        pytest.param("wéb", "not a valid name", id="non-ascii"),
        pytest.param("a" * 64, "at most 63", id="64-chars"),
        pytest.param("", "empty", id="empty"),
    ],
)
def test_task_name_is_refused_when_it_could_break_a_subject(name: str, says: str) -> None:
    assert_refused(doc(name=name), "meta.name", says)


# ---- unknown fields and versions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        pytest.param({**doc(), "spec": {}}, "spec", id="top-level"),
        pytest.param(
            {**doc(), "meta": {"name": "web", "annotations": {}}}, "meta.annotations", id="meta"
        ),
        pytest.param(doc(cpu=2), "config.cpu", id="config"),
        pytest.param(doc(resources={"gpus": 1}), "config.resources.gpus", id="resources"),
        pytest.param(
            doc(restart={"policy": "never", "delay": 1}), "config.restart.delay", id="restart"
        ),
        pytest.param(
            doc(health={"type": "tcp", "port": 1, "x": 1}), "config.health.x", id="health"
        ),
    ],
)
def test_unknown_field_is_refused_by_its_path(data: dict[str, Any], loc: str) -> None:
    assert_refused(data, loc, "unknown field")


def test_version_other_than_task_v1_is_refused() -> None:
    assert_refused({**doc(), "version": "task/v2"}, "version")


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        pytest.param({"meta": {"name": "web"}}, "config", id="no-config"),
        pytest.param({"config": {"image": "x"}}, "meta", id="no-meta"),
        pytest.param({"meta": {}, "config": {"image": "x"}}, "meta.name", id="no-name"),
    ],
)
def test_missing_required_part_is_named(data: dict[str, Any], loc: str) -> None:
    assert_refused(data, loc, "required field is missing")


# ---- ports ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        pytest.param("8080:80", PortMapping(host=8080, container=80), id="host-container"),
        pytest.param(" 8080:80 ", PortMapping(host=8080, container=80), id="surrounding-spaces"),
        pytest.param("1:65535", PortMapping(host=1, container=65535), id="range-ends"),
        pytest.param(
            "127.0.0.1:53:53/UDP",
            PortMapping(host=53, container=53, protocol="udp", host_ip="127.0.0.1"),
            id="ip-and-protocol",
        ),
        pytest.param(
            {"host": 8443, "container": 443}, PortMapping(host=8443, container=443), id="mapping"
        ),
    ],
)
def test_port_is_parsed_from_text_or_mapping(port: Any, expected: PortMapping) -> None:
    assert valid(doc(ports=[port])).config.ports == [expected]


@pytest.mark.parametrize(
    ("port", "loc", "says"),
    [
        pytest.param("0:80", "config.ports.0.host", "greater than or equal to 1", id="host-0"),
        pytest.param("65536:80", "config.ports.0.host", "65535", id="host-65536"),
        pytest.param("70000:80", "config.ports.0.host", "65535", id="host-70000"),
        pytest.param(
            "80:0", "config.ports.0.container", "greater than or equal to 1", id="container-0"
        ),
        pytest.param("80:65536", "config.ports.0.container", "65535", id="container-65536"),
        pytest.param("80", "config.ports.0", "host:container", id="single-number"),
        pytest.param("abc", "config.ports.0", "not a port mapping", id="word"),
        pytest.param("-1:80", "config.ports.0", "not a port mapping", id="negative"),
        pytest.param("80:80/sctp", "config.ports.0.protocol", "", id="protocol-sctp"),
        pytest.param("1.2.3.999:80:80", "config.ports.0.host_ip", "IPv4", id="bad-ip"),
        pytest.param(
            {"host": 80}, "config.ports.0.container", "missing", id="mapping-no-container"
        ),
        pytest.param(80, "config.ports.0", "", id="bare-int"),
    ],
)
def test_port_is_refused_when_out_of_range_or_malformed(port: Any, loc: str, says: str) -> None:
    assert_refused(doc(ports=[port]), loc, says)


def test_ports_as_a_string_instead_of_a_list_is_refused() -> None:
    assert_refused(doc(ports="8080:80"), "config.ports", "valid list")


@pytest.mark.parametrize(
    "ports",
    [
        pytest.param(["8080:80", "8080:81"], id="same-port"),
        pytest.param(["127.0.0.1:8080:80", "127.0.0.1:8080:81"], id="same-ip-and-port"),
        pytest.param(["8080:80", "127.0.0.1:8080:81"], id="any-address-then-one-address"),
        pytest.param(["127.0.0.1:8080:80", "8080:81"], id="one-address-then-any-address"),
    ],
)
def test_host_port_bound_twice_is_refused(ports: list[str]) -> None:
    assert_refused(doc(ports=ports), "config", "8080/tcp is listed twice")


@pytest.mark.parametrize(
    "ports",
    [
        pytest.param(["8080:80", "8080:80/udp"], id="tcp-and-udp"),
        pytest.param(["127.0.0.1:8080:80", "127.0.0.2:8080:80"], id="two-addresses"),
        pytest.param(["8080:80", "8081:80"], id="same-container-port"),
    ],
)
def test_host_port_is_accepted_twice_when_protocol_or_address_differ(ports: list[str]) -> None:
    assert len(valid(doc(ports=ports)).config.ports) == 2


def test_port_prints_in_the_syntax_it_is_written_in() -> None:
    ports = valid(doc(ports=["8080:80", "127.0.0.1:53:53/udp"])).config.ports
    assert [str(p) for p in ports] == ["8080:80/tcp", "127.0.0.1:53:53/udp"]


# ---- resources --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        pytest.param("256m", 256 * Mi, id="m"),
        pytest.param("256Mi", 256 * Mi, id="Mi"),
        pytest.param("1Gi", 1024 * Mi, id="Gi"),
        pytest.param("1.5g", 1536 * Mi, id="fraction"),
        pytest.param("6Mi", MIN_MEMORY, id="exactly-the-minimum"),
        pytest.param(MIN_MEMORY, MIN_MEMORY, id="minimum-as-int"),
        pytest.param(str(MIN_MEMORY), MIN_MEMORY, id="minimum-as-digits"),
        pytest.param(None, None, id="unlimited"),
    ],
)
def test_memory_is_read_in_binary_units(memory: Any, expected: int | None) -> None:
    assert valid(doc(resources={"memory": memory})).config.resources.memory == expected


@pytest.mark.parametrize(
    ("memory", "says"),
    [
        pytest.param("5Mi", "at least 6Mi", id="5Mi"),
        pytest.param(MIN_MEMORY - 1, "at least 6Mi", id="one-byte-short"),
        pytest.param("1k", "at least 6Mi", id="1k"),
        pytest.param(0, "at least 6Mi", id="zero"),
        pytest.param("12parsecs", "not a memory size", id="garbage-unit"),
        pytest.param("lots", "not a memory size", id="word"),
        pytest.param("", "not a memory size", id="empty"),
        pytest.param("-1m", "not a memory size", id="negative"),
        pytest.param("9" * 400 + "Gi", "at most", id="hundreds-of-digits"),
        pytest.param(MAX_MEMORY + 1, "at most", id="over-int64"),
        pytest.param([256], "", id="list"),
    ],
)
def test_memory_is_refused_below_6mi_or_unreadable(memory: Any, says: str) -> None:
    assert_refused(doc(resources={"memory": memory}), "config.resources.memory", says)


@pytest.mark.parametrize(
    "cpus",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(1025, id="over-1024"),
        pytest.param("lots", id="word"),
    ],
)
def test_cpus_is_refused_outside_0_to_1024(cpus: Any) -> None:
    assert_refused(doc(resources={"cpus": cpus}), "config.resources.cpus")


# ---- restart policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "policy", "max_retries"),
    [
        pytest.param("always", "always", None, id="always"),
        pytest.param("never", "never", None, id="never"),
        pytest.param("on-failure", "on-failure", None, id="on-failure"),
        pytest.param("on-failure:3", "on-failure", 3, id="on-failure-3"),
        pytest.param("on-failure:0", "on-failure", 0, id="on-failure-0"),
        pytest.param("on-failure:", "on-failure", None, id="on-failure-empty-count"),
        pytest.param({"policy": "on-failure", "max_retries": 2}, "on-failure", 2, id="mapping"),
    ],
)
def test_restart_policy_is_parsed(restart: Any, policy: str, max_retries: int | None) -> None:
    parsed = valid(doc(restart=restart)).config.restart
    assert (parsed.policy, parsed.max_retries) == (policy, max_retries)


def test_restart_policy_defaults_to_always_with_backoff() -> None:
    restart = valid(doc()).config.restart
    assert (restart.policy, restart.backoff_s, restart.max_backoff_s) == ("always", 1.0, 60.0)


@pytest.mark.parametrize(
    ("restart", "loc", "says"),
    [
        pytest.param("always:3", "config.restart", "only to the on-failure", id="always-3"),
        pytest.param("never:1", "config.restart", "only to the on-failure", id="never-1"),
        pytest.param("sometimes", "config.restart.policy", "", id="unknown-policy"),
        pytest.param("on-failure:x", "config.restart.max_retries", "integer", id="count-word"),
        pytest.param(
            "on-failure:-1",
            "config.restart.max_retries",
            "greater than or equal to 0",
            id="count-negative",
        ),
        pytest.param({"backoff_s": 0}, "config.restart.backoff_s", "", id="zero-backoff"),
    ],
)
def test_restart_policy_is_refused(restart: Any, loc: str, says: str) -> None:
    assert_refused(doc(restart=restart), loc, says)


# ---- env --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({"B": "2", "A": "1"}, {"A": "1", "B": "2"}, id="mapping-sorted"),
        pytest.param(["A=1", "B="], {"A": "1", "B": ""}, id="list-of-assignments"),
        pytest.param(["A=b=c"], {"A": "b=c"}, id="value-with-equals"),
        pytest.param(
            [{"name": "A", "value": "x"}, {"name": "_B"}],
            {"A": "x", "_B": ""},
            id="name-value-items",
        ),
    ],
)
def test_env_is_read_from_map_or_list(env: Any, expected: dict[str, str]) -> None:
    assert valid(doc(env=env)).config.env == expected


@pytest.mark.parametrize(
    ("env", "loc", "says"),
    [
        pytest.param({"1BAD": "x"}, "config.env", "'1BAD'", id="leading-digit"),
        pytest.param({"A-B": "x"}, "config.env", "'A-B'", id="dash"),
        pytest.param({"": "x"}, "config.env", "''", id="empty-name"),
        pytest.param(["NOEQUALS"], "config.env", "NAME=value", id="item-without-equals"),
        pytest.param([{"value": "x"}], "config.env", "{name, value}", id="item-without-name"),
        pytest.param([7], "config.env", "item 0", id="item-int"),
        pytest.param({"A": 1}, "config.env.A", "string", id="value-int"),
        pytest.param(
            {f"V{i}": "" for i in range(257)}, "config.env", "at most 256", id="257-variables"
        ),
    ],
)
def test_env_is_refused_for_bad_names_and_items(env: Any, loc: str, says: str) -> None:
    assert_refused(doc(env=env), loc, says)


# ---- labels -----------------------------------------------------------------------------------


def test_labels_are_kept_sorted_by_key() -> None:
    labels = valid(doc(labels={"b": "2", "a": "1", "example.com/c": ""})).meta.labels
    assert list(labels) == ["a", "b", "example.com/c"]


@pytest.mark.parametrize(
    ("labels", "says"),
    [
        pytest.param({"bad key": "x"}, "'bad key'", id="key-with-space"),
        pytest.param({"-app": "x"}, "starting and ending", id="key-leading-dash"),
        pytest.param({"Example.com/app": "x"}, "DNS subdomain", id="prefix-uppercase"),
        pytest.param({"/app": "x"}, "DNS subdomain", id="empty-prefix"),
        pytest.param({"a" * 64: "x"}, "at most 63", id="key-64-chars"),
        pytest.param({"app": "v 1"}, "value 'v 1'", id="value-with-space"),
        pytest.param({"app": "v" * 64}, "at most 63", id="value-64-chars"),
        pytest.param({f"k{i}": "" for i in range(65)}, "at most 64 labels", id="65-labels"),
    ],
)
def test_labels_are_refused_when_key_or_value_breaks_the_rules(
    labels: dict[str, str], says: str
) -> None:
    assert_refused(doc(labels=labels), "meta.labels", says)


def test_labels_as_a_list_are_refused() -> None:
    assert_refused(doc(labels=["app=web"]), "meta.labels", "valid dictionary")


# ---- mounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mount", "expected"),
    [
        pytest.param("data:/data", ("volume", "data", "/data", False), id="volume"),
        pytest.param("/srv:/srv:ro", ("bind", "/srv", "/srv", True), id="bind-read-only"),
        pytest.param("/srv:/srv:rw", ("bind", "/srv", "/srv", False), id="bind-read-write"),
        pytest.param(
            {"type": "bind", "source": "/a", "destination": "/b"},
            ("bind", "/a", "/b", False),
            id="mapping",
        ),
    ],
)
def test_mount_is_a_volume_by_name_or_a_bind_by_absolute_path(
    mount: Any, expected: tuple[str, str, str, bool]
) -> None:
    (m,) = valid(doc(mounts=[mount])).config.mounts
    assert (m.type, m.source, m.destination, m.read_only) == expected


@pytest.mark.parametrize(
    ("mounts", "loc", "says"),
    [
        pytest.param(["data"], "config.mounts.0", "not a mount", id="no-destination"),
        pytest.param(["data:/d:xx"], "config.mounts.0", "not a mount", id="bad-mode"),
        pytest.param(["data:rel"], "config.mounts.0.destination", "absolute", id="relative-dest"),
        pytest.param(["Data:/d"], "config.mounts.0", "volume name", id="bad-volume-name"),
        pytest.param(
            [{"type": "bind", "source": "rel", "destination": "/d"}],
            "config.mounts.0",
            "absolute host path",
            id="bind-relative-source",
        ),
        pytest.param(
            [{"type": "tmpfs", "source": "x", "destination": "/d"}],
            "config.mounts.0.type",
            "",
            id="unknown-type",
        ),
        pytest.param(["a:/d", "b:/d"], "config", "same destination", id="same-destination"),
    ],
)
def test_mount_is_refused(mounts: list[Any], loc: str, says: str) -> None:
    assert_refused(doc(mounts=mounts), loc, says)


# ---- health probes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "health",
    [
        pytest.param({"type": "cmd", "cmd": ["true"]}, id="cmd"),
        pytest.param({"type": "http", "port": 80, "path": "/healthz"}, id="http"),
        pytest.param({"type": "tcp", "port": 5432}, id="tcp"),
    ],
)
def test_health_probe_is_accepted_when_complete(health: dict[str, Any]) -> None:
    probe = valid(doc(health=health)).config.health
    assert probe is not None
    assert probe.type == health["type"]


@pytest.mark.parametrize(
    ("health", "loc", "says"),
    [
        pytest.param({"type": "cmd"}, "config.health", "needs cmd", id="cmd-without-cmd"),
        pytest.param({"type": "http"}, "config.health", "needs port", id="http-without-port"),
        pytest.param({"type": "tcp"}, "config.health", "needs port", id="tcp-without-port"),
        pytest.param(
            {"type": "http", "port": 80, "path": "x"},
            "config.health",
            "'/'",
            id="http-relative-path",
        ),
        pytest.param({"type": "tcp", "port": 0}, "config.health.port", "", id="port-0"),
        pytest.param({"type": "grpc", "port": 1}, "config.health.type", "", id="unknown-type"),
        pytest.param(
            {"type": "tcp", "port": 1, "retries": 0}, "config.health.retries", "", id="zero-retries"
        ),
    ],
)
def test_health_probe_is_refused_when_incomplete(
    health: dict[str, Any], loc: str, says: str
) -> None:
    assert_refused(doc(health=health), loc, says)


# ---- runtime, image and the rest of the config ------------------------------------------------


def test_exec_runtime_needs_no_image_but_args() -> None:
    data = {"meta": {"name": "job"}, "config": {"runtime": "exec", "args": ["sleep", "1"]}}
    config = valid(data).config
    assert (config.runtime, config.image, config.args) == ("exec", None, ["sleep", "1"])


@pytest.mark.parametrize(
    ("config", "loc", "says"),
    [
        pytest.param({"runtime": "exec"}, "config", "args", id="exec-without-args"),
        pytest.param({}, "config", "image is required", id="docker-without-image"),
        pytest.param({"runtime": "podman", "image": "x"}, "config.runtime", "", id="runtime"),
        pytest.param({"image": 42}, "config.image", "string", id="image-int"),
        pytest.param({"image": "ngi nx"}, "config.image", "image reference", id="image-space"),
        pytest.param({"image": ""}, "config.image", "image reference", id="image-empty"),
        pytest.param({"image": "x", "user": "a b"}, "config.user", "user[:group]", id="user"),
        pytest.param(
            {"image": "x", "workdir": "srv"}, "config.workdir", "absolute", id="relative-workdir"
        ),
        pytest.param({"image": "x", "args": "echo hi"}, "config.args", "list", id="args-str"),
        pytest.param({"image": "x", "args": ["a"] * 257}, "config.args", "256", id="args-257"),
        pytest.param(
            {"image": "x", "privileged": "maybe"}, "config.privileged", "", id="privileged-word"
        ),
        pytest.param(
            {"image": "x", "stop_timeout_s": 0}, "config.stop_timeout_s", "", id="zero-stop-timeout"
        ),
        pytest.param(
            {"image": "x", "capabilities": {"add": ["bad-cap"]}},
            "config.capabilities.add",
            "capability",
            id="capability",
        ),
        pytest.param(
            {"image": "x", "node_selector": "disk in (ssd"},
            "config.node_selector",
            "unbalanced",
            id="node-selector",
        ),
    ],
)
def test_config_is_refused(config: dict[str, Any], loc: str, says: str) -> None:
    assert_refused({"meta": {"name": "web"}, "config": config}, loc, says)


@pytest.mark.parametrize(
    "image",
    ["nginx", "nginx:alpine", "registry.example.com:5000/team/app:1.2", "app@sha256:abc123"],
)
def test_image_reference_is_accepted(image: str) -> None:
    assert valid(doc(image=image)).config.image == image


def test_capabilities_are_uppercased_without_prefix_deduplicated_and_sorted() -> None:
    caps = valid(doc(capabilities={"add": ["net_admin", "CAP_SYS_TIME", "NET_ADMIN"]}))
    assert caps.config.capabilities.add == ["NET_ADMIN", "SYS_TIME"]


@pytest.mark.parametrize(
    ("selector", "canonical"),
    [
        pytest.param({"disk": "ssd", "arch": "arm64"}, "arch=arm64,disk=ssd", id="mapping"),
        pytest.param(["disk=ssd", "!gpu"], "disk=ssd,!gpu", id="list"),
        pytest.param("disk in (b, a) ,  gpu", "disk in (a,b),gpu", id="string"),
        pytest.param("", "", id="empty"),
    ],
)
def test_node_selector_is_stored_in_canonical_form(selector: Any, canonical: str) -> None:
    assert valid(doc(node_selector=selector)).config.node_selector == canonical


def test_document_survives_a_round_trip_through_its_wire_form() -> None:
    full = doc(
        labels={"app": "web"},
        ports=["127.0.0.1:8080:80/udp"],
        mounts=["data:/data", "/etc:/etc:ro"],
        env=["A=1"],
        restart="on-failure:3",
        resources={"memory": "64Mi", "cpus": 0.5},
        health={"type": "http", "port": 80},
        node_selector={"disk": "ssd"},
    )
    once = valid(full)
    assert valid(once.model_dump(mode="json")) == once


def test_document_is_frozen() -> None:
    task = valid(doc())
    with pytest.raises(ValueError, match="frozen"):
        task.meta.name = "other"  # type: ignore[misc]
