"""What the Docker runtime sends to the engine and how it reads the answers (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiodocker.exceptions import DockerError

from voiyd.agent.runtimes.docker import (
    _progress_line,
    _translate,
    _usage_from_stats,
    container_name,
    create_body,
    observed_from_inspect,
)
from voiyd.agent.runtimes.protocol import (
    ContainerSpec,
    InvalidSpecError,
    RuntimeFailure,
    RuntimeUnavailable,
)
from voiyd.api.specs import TaskConfig


def _spec(tmp_path: Path, **config: Any) -> ContainerSpec:
    config.setdefault("image", "voiyd-test/busybox:1")
    return ContainerSpec(
        "web", 3, "n1", TaskConfig(**config), revision=9, volumes_dir=tmp_path / "vol"
    )


def test_the_container_is_named_for_task_epoch_and_revision(tmp_path: Path) -> None:
    assert container_name(_spec(tmp_path)) == "voiyd-web-3-r9"


def test_create_body_carries_the_whole_task_config(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        args=["httpd", "-f"],
        env={"A": "1"},
        workdir="/srv",
        ports=["127.0.0.1:8080:80", "8443:443/udp", "8081:80"],
        mounts=["/host/www:/www:ro", "store:/data"],
        resources={"cpus": 1.5, "memory": "64Mi"},
        user="1000:1000",
        privileged=True,
        capabilities={"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
        stop_timeout_s=2.5,
    )
    body = create_body(spec)
    host = body["HostConfig"]
    assert body["Cmd"] == ["httpd", "-f"]
    assert (body["Env"], body["WorkingDir"], body["User"]) == (["A=1"], "/srv", "1000:1000")
    assert body["Labels"]["io.voiyd.revision"] == "9"
    assert body["StopTimeout"] == 3
    assert body["ExposedPorts"] == {"80/tcp": {}, "443/udp": {}}
    assert host["PortBindings"] == {
        "80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": "8080"},
            {"HostIp": "0.0.0.0", "HostPort": "8081"},
        ],
        "443/udp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}],
    }
    assert host["Binds"] == ["/host/www:/www:ro", f"{tmp_path}/vol/store:/data"]
    assert (host["NanoCpus"], host["Memory"]) == (1_500_000_000, 64 * 1024 * 1024)
    assert (host["Privileged"], host["CapAdd"], host["CapDrop"]) == (True, ["NET_ADMIN"], ["MKNOD"])
    assert host["RestartPolicy"] == {"Name": "no"}


def test_create_body_without_args_keeps_the_images_cmd(tmp_path: Path) -> None:
    body = create_body(_spec(tmp_path))
    assert "Cmd" not in body
    assert "User" not in body
    assert body["HostConfig"]["NanoCpus"] == 0


def _inspect(status: str, **state: Any) -> dict[str, Any]:
    return {
        "Id": "abc",
        "Config": {
            "Image": "img:1",
            "Labels": {"io.voiyd.task": "web", "io.voiyd.epoch": "3", "io.voiyd.node": "n1"},
        },
        "State": {"Status": status, **state},
        "NetworkSettings": {"IPAddress": "", "Networks": {"bridge": {"IPAddress": "172.17.0.5"}}},
    }


def test_a_running_container_is_read_with_pid_ip_and_health() -> None:
    data = _inspect(
        "running",
        Pid=1234,
        StartedAt="2026-01-02T03:04:05.123456789Z",
        FinishedAt="0001-01-01T00:00:00Z",
        Health={"Status": "healthy"},
    )
    o = observed_from_inspect(data)
    assert (o.id, o.task, o.epoch, o.node, o.image) == ("abc", "web", 3, "n1", "img:1")
    assert (o.state, o.pid, o.ip, o.health) == ("running", 1234, "172.17.0.5", "healthy")
    assert o.started_at == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert (o.finished_at, o.exit_code) == (None, None)


@pytest.mark.parametrize(
    ("status", "state"),
    [("exited", "exited"), ("dead", "exited"), ("created", "created"), ("paused", "running")],
)
def test_docker_states_map_to_three(status: str, state: str) -> None:
    assert observed_from_inspect(_inspect(status, ExitCode=3)).state == state


def test_an_exited_container_has_its_exit_code_and_no_pid() -> None:
    o = observed_from_inspect(
        _inspect("exited", Pid=0, ExitCode=3, FinishedAt="2026-01-02T03:04:06Z")
    )
    assert (o.state, o.exit_code, o.pid, o.ip, o.health) == ("exited", 3, None, None, None)
    assert o.finished_at == datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)


def test_nulls_from_the_engine_do_not_break_reading() -> None:
    o = observed_from_inspect({"Id": "x", "Config": {"Labels": None}, "State": None})
    assert (o.id, o.task, o.epoch, o.state) == ("x", "", 0, "exited")


def test_usage_is_cores_and_memory_without_the_page_cache() -> None:
    stats = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 3_000},
            "system_cpu_usage": 20_000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000},
        "memory_stats": {"usage": 5_000, "stats": {"total_inactive_file": 1_000}},
    }
    usage = _usage_from_stats(stats)
    assert usage.cpus == pytest.approx(0.4)
    assert usage.memory == 4_000


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (900, "Cannot connect to Docker Engine", RuntimeUnavailable),
        (400, "Minimum memory limit allowed is 6MB", InvalidSpecError),
        (500, "unable to find user nobody: no matching entries in passwd file", InvalidSpecError),
        (500, "something broke", RuntimeFailure),
    ],
    ids=["no-engine", "bad-request", "unknown-user", "other"],
)
def test_engine_errors_become_runtime_failures(
    status: int, message: str, kind: type[RuntimeFailure]
) -> None:
    error = _translate(DockerError(status, message), "start web")
    assert type(error) is kind
    assert message in error.reason


@pytest.mark.parametrize(
    ("item", "line"),
    [
        (
            {"status": "Pulling from library/busybox", "id": "latest"},
            "latest: Pulling from library/busybox",
        ),
        (
            {"status": "Downloading", "id": "a1", "progress": "[=>  ] 1MB/5MB"},
            "a1: Downloading [=>  ] 1MB/5MB",
        ),
        ({"status": "Digest: sha256:abc"}, "Digest: sha256:abc"),
        ({}, ""),
    ],
    ids=["pulling", "downloading", "no-id", "empty"],
)
def test_pull_progress_lines(item: dict[str, str], line: str) -> None:
    assert _progress_line(item) == line
