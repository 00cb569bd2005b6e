"""The permission matrix (voiyd.auth.roles) and the config text it becomes (voiyd.auth.render).

Pure tables: which subjects each role may publish and subscribe to, checked with NATS's own
matching rules (``matches``), and every API endpoint the server serves sorted into what the
viewer may call (reads) and what only the admin may (writes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest

from voiyd.auth.render import User, render_authorization, render_creds
from voiyd.auth.roles import ROLES, Role, allows, matches, permissions
from voiyd.bus import subjects
from voiyd.errors import InvalidRequestError
from voiyd.projection import schema
from voiyd.projection.consumer import ProjectionFollower
from voiyd.projection.store import ProjectionStore
from voiyd.server.handlers import Handlers

KV = f"KV_{subjects.ASSIGNMENTS_BUCKET}"


def endpoints() -> list[str]:
    follower = ProjectionFollower(cast(Any, None), ProjectionStore(schema.open_db(None)))
    return sorted(Handlers(cast(Any, None), follower, "roles").endpoints())


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        pytest.param("a.b", "a.b", True, id="literal"),
        pytest.param("a.*", "a.b", True, id="star-one-token"),
        pytest.param("a.*", "a.b.c", False, id="star-not-two"),
        pytest.param("a.>", "a.b.c", True, id="gt-the-rest"),
        pytest.param("a.>", "a", False, id="gt-needs-one"),
        pytest.param("a.b", "a.b.c", False, id="longer"),
        pytest.param("a.b.c", "a.b", False, id="shorter"),
    ],
)
def test_matches_follows_nats_wildcards(pattern: str, subject: str, expected: bool) -> None:
    assert matches(pattern, subject) is expected


NODE_MAY = [
    subjects.agent_heartbeat("n1"),
    subjects.agent_report("n1"),
    subjects.logs("n1", "web"),
    f"$JS.API.STREAM.INFO.{KV}",
    f"$JS.API.CONSUMER.CREATE.{KV}.w123.$KV.voiyd-assignments.n1.*",
    f"$JS.hub.API.CONSUMER.CREATE.{KV}.w123.$KV.voiyd-assignments.n1.*",
]
NODE_MAY_NOT = [
    subjects.agent_heartbeat("n2"),
    subjects.agent_report("n2"),
    subjects.logs("n2", "web"),
    subjects.agent_control("n2", "logs"),
    subjects.event("node", "n1"),
    subjects.event("task", "web"),
    "$KV.voiyd-assignments.n1.web",
    f"$JS.API.CONSUMER.CREATE.{KV}",
    f"$JS.API.CONSUMER.CREATE.{KV}.w123.$KV.voiyd-assignments.n2.*",
    f"$JS.API.CONSUMER.CREATE.{KV}.w123.$KV.voiyd-assignments.>",
    f"$JS.API.DIRECT.GET.{KV}.$KV.voiyd-assignments.n1.web",
    f"$JS.API.CONSUMER.CREATE.{subjects.EVENTS_STREAM}",
    f"$JS.API.STREAM.INFO.{subjects.EVENTS_STREAM}",
    f"$JS.API.STREAM.CREATE.{subjects.EVENTS_STREAM}",
    f"$JS.API.STREAM.DELETE.{subjects.EVENTS_STREAM}",
    f"$JS.API.STREAM.PURGE.{subjects.LOGS_STREAM}",
    f"$JS.API.CONSUMER.DELETE.{KV}.w123",
    subjects.api("task", "create"),
    subjects.api("task", "get"),
    "$SRV.PING",
]


@pytest.mark.parametrize("subject", NODE_MAY)
def test_a_node_may_publish_its_own_subjects(subject: str) -> None:
    assert allows(permissions("node", "n1").publish, subject)


@pytest.mark.parametrize("subject", NODE_MAY_NOT)
def test_a_node_may_publish_nothing_else(subject: str) -> None:
    assert not allows(permissions("node", "n1").publish, subject)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("_INBOX.n1.abc.1", True),
        (subjects.agent_control("n1", "logs"), True),
        ("_INBOX.n2.abc.1", False),
        ("_INBOX.abc", False),
        (subjects.agent_control("n2", "logs"), False),
        (subjects.agent_heartbeat("n2"), False),
        (subjects.event("task", "web"), False),
    ],
)
def test_a_node_subscribes_to_its_inbox_and_control_subjects_only(
    subject: str, expected: bool
) -> None:
    assert allows(permissions("node", "n1").subscribe, subject) is expected


WHEELS = f"OBJ_{subjects.WHEELS_BUCKET}"
WHEEL_READS = [
    f"$JS.API.STREAM.INFO.{WHEELS}",
    f"$JS.API.STREAM.MSG.GET.{WHEELS}",
    f"$JS.API.CONSUMER.CREATE.{WHEELS}",
    f"$JS.FC.{WHEELS}.abc.1",
]
WHEEL_WRITES = [
    f"$O.{subjects.WHEELS_BUCKET}.C.nuid1",
    f"$O.{subjects.WHEELS_BUCKET}.M.dm9peWQtMC4xLjAtcHkzLW5vbmUtYW55LndobA==",
    f"$JS.API.STREAM.CREATE.{WHEELS}",
    f"$JS.API.STREAM.PURGE.{WHEELS}",
]


@pytest.mark.parametrize("subject", WHEEL_READS)
def test_a_node_and_the_admin_may_read_the_wheels_store(subject: str) -> None:
    assert allows(permissions("node", "n1").publish, subject)
    assert allows(permissions("admin").publish, subject)
    assert not allows(permissions("viewer").publish, subject)


@pytest.mark.parametrize(
    "subject", [*WHEEL_WRITES, f"$JS.API.STREAM.DELETE.{WHEELS}", f"$JS.API.STREAM.UPDATE.{WHEELS}"]
)
def test_a_node_may_not_write_the_wheels_store(subject: str) -> None:
    assert not allows(permissions("node", "n1").publish, subject)
    assert not allows(permissions("viewer").publish, subject)


@pytest.mark.parametrize("subject", WHEEL_WRITES)
def test_the_admin_may_create_the_wheels_store_and_put_wheels(subject: str) -> None:
    assert allows(permissions("admin").publish, subject)


def test_a_node_may_answer_upgrade_requests_for_itself_only() -> None:
    perms = permissions("node", "n1")
    assert allows(perms.subscribe, subjects.agent_control("n1", subjects.UPGRADE_VERB))
    assert not allows(perms.subscribe, subjects.agent_control("n2", subjects.UPGRADE_VERB))
    assert perms.allow_responses
    assert allows(permissions("admin").publish, subjects.agent_control("n2", "upgrade"))


@pytest.mark.parametrize("endpoint", endpoints())
def test_the_viewer_may_call_reads_and_the_admin_everything(endpoint: str) -> None:
    verb = endpoint.rsplit(".", 1)[1]
    reads = verb in ("get", "list", "info")
    assert allows(permissions("viewer").publish, endpoint) is reads
    assert allows(permissions("admin").publish, endpoint)
    assert not allows(permissions("node", "n1").publish, endpoint)
    assert allows(permissions("server").subscribe, endpoint)


def test_there_are_write_endpoints_for_the_viewer_to_be_refused() -> None:
    writes = [e for e in endpoints() if not allows(permissions("viewer").publish, e)]
    assert subjects.api("task", "create") in writes
    assert subjects.api("task", "delete") in writes


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_cli_roles_never_write_the_event_log_or_the_bucket_directly(role: Role) -> None:
    perms = permissions(role)
    for subject in (subjects.event("task", "web"), "$KV.voiyd-assignments.n1.web"):
        assert not allows(perms.publish, subject)
    for op in ("DELETE", "PURGE", "CREATE", "UPDATE"):
        assert not allows(perms.publish, f"$JS.API.STREAM.{op}.{subjects.EVENTS_STREAM}")


@pytest.mark.parametrize("role", ROLES)
def test_no_role_may_delete_or_purge_voiyds_streams(role: Role) -> None:
    perms = permissions(role, "n1" if role == "node" else None)
    for stream in (subjects.EVENTS_STREAM, subjects.LOGS_STREAM, KV):
        for op in ("DELETE", "PURGE"):
            assert not allows(perms.publish, f"$JS.API.STREAM.{op}.{stream}")


def test_the_scheduler_appends_task_events_only() -> None:
    perms = permissions("scheduler")
    assert allows(perms.publish, subjects.event("task", "web"))
    assert not allows(perms.publish, subjects.event("node", "n1"))
    assert not allows(perms.publish, "$KV.voiyd-assignments.n1.web")


@pytest.mark.parametrize(
    ("role", "node"),
    [
        pytest.param("node", None, id="node-without-name"),
        pytest.param("viewer", "n1", id="name-for-non-node"),
        pytest.param("node", "n1.*", id="wildcard-name"),
        pytest.param("node", "N1", id="uppercase-name"),
    ],
)
def test_permissions_refuse_a_missing_extra_or_unsafe_node_name(
    role: Role, node: str | None
) -> None:
    with pytest.raises(InvalidRequestError):
        permissions(role, node)


def test_rendered_config_has_every_user_with_its_permissions_quoted() -> None:
    users = [
        User(name="node-n1", role="node", nkey="UNODE", node="n1"),
        User(name="vic", role="viewer", nkey="UVIEW"),
    ]
    text = render_authorization(users, generated_by="a test")
    assert text.index('"UNODE"') < text.index('"UVIEW"')  # sorted by name
    assert '"$JS.API.STREAM.INFO.KV_voiyd-assignments"' in text
    assert "$JS" not in text.replace('"$JS', "")  # never an unquoted $ (a variable)
    assert text.count("allow_responses: true") == 1  # the node answers control requests
    assert render_authorization(list(reversed(users)), generated_by="a test") == text


def test_a_credentials_file_holds_the_seed_between_markers() -> None:
    user = User(name="node-n1", role="node", nkey="UNODE", node="n1")
    text = render_creds(user, "SUSEED")
    assert "-----BEGIN USER NKEY SEED-----\nSUSEED\n------END USER NKEY SEED------" in text


DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
_ELIDED = ("$JS.API.STREAM.CREATE.", "$JS.API.STREAM.UPDATE.", "$JS.API.CONSUMER.NAMES.",
           "$JS.API.CONSUMER.LIST.")  # fmt: skip
"""Subjects the page names as a family ("the nine STREAM.INFO|CREATE|UPDATE subjects")."""


@pytest.mark.parametrize("role", ROLES)
def test_docs_security_names_every_subject_of_every_role(role: Role) -> None:
    text = DOC.read_text()
    perms = permissions(role, "zz9" if role == "node" else None)
    for subject in (*perms.publish, *perms.subscribe):
        shown = subject.replace("zz9", "<node>")
        if shown.startswith(_ELIDED) and role != "server":
            continue
        stream_generic = re.sub(
            r"(VOIYD_EVENTS|VOIYD_LOGS|KV_voiyd-assignments)", "<stream>", shown
        )
        assert f"`{shown}`" in text or f"`{stream_generic}`" in text, shown
