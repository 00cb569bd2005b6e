"""The exec runtime's on-disk records and /proc reading: pid reuse is caught, bad mounts refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voiyd.agent.runtimes.exec import _link_mounts, _resolve_user
from voiyd.agent.runtimes.exec_shim import (
    ProcRecord,
    boot_id,
    exit_status,
    is_alive,
    read_record,
    read_stat,
    record_of,
    write_record,
)
from voiyd.agent.runtimes.protocol import ContainerSpec, InvalidSpecError
from voiyd.api.specs import Mount, TaskConfig


def test_read_stat_of_this_process_has_its_start_time_and_group() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None
    assert stat.state in "RS"
    assert stat.pgrp == os.getpgrp()
    assert stat.start_ticks > 0


def test_read_stat_of_a_missing_pid_is_none() -> None:
    assert read_stat(2**22 + 1) is None  # above pid_max's ceiling on Linux


def test_a_live_process_with_its_recorded_start_time_is_alive() -> None:
    assert is_alive(record_of(os.getpid()))


@pytest.mark.parametrize(
    ("shift_ticks", "other_boot"),
    [(1, False), (-1, False), (0, True)],
    ids=["started-later", "started-earlier", "other-boot"],
)
def test_a_reused_pid_is_not_alive(shift_ticks: int, other_boot: bool) -> None:
    own = record_of(os.getpid())
    record = ProcRecord(
        pid=own.pid,
        start_ticks=own.start_ticks + shift_ticks,
        boot_id="another-boot" if other_boot else boot_id(),
    )
    assert not is_alive(record)


def test_no_record_is_not_alive() -> None:
    assert not is_alive(None)


def test_records_round_trip_and_a_torn_record_reads_as_none(tmp_path: Path) -> None:
    record = ProcRecord(pid=42, start_ticks=7, boot_id="b", started_at="2026-01-01T00:00:00+00:00")
    write_record(tmp_path / "shim.json", record)
    assert read_record(tmp_path / "shim.json") == record
    (tmp_path / "torn.json").write_text('{"pid": 4')
    assert read_record(tmp_path / "torn.json") is None
    assert read_record(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    ("returncode", "status"),
    [(0, 0), (3, 3), (-15, 143), (-9, 137)],
    ids=["ok", "exit-3", "sigterm", "sigkill"],
)
def test_exit_status_is_shell_style(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status


def _spec(tmp_path: Path, *mounts: Mount) -> ContainerSpec:
    config = TaskConfig(runtime="exec", args=["true"], mounts=list(mounts))
    return ContainerSpec("web", 1, "n1", config, volumes_dir=tmp_path / "volumes")


@pytest.mark.parametrize(
    "destination",
    ["/", "/spec.json", "/exit_code/x", "/a/../../etc"],
    ids=["root", "state-file", "under-state-file", "dot-dot"],
)
def test_exec_refuses_mount_destinations_outside_or_over_its_files(
    tmp_path: Path, destination: str
) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    mount = Mount.model_construct(
        type="bind", source=str(tmp_path), destination=destination, read_only=False
    )
    with pytest.raises(InvalidSpecError):
        _link_mounts(directory, _spec(tmp_path, mount))


def test_exec_links_a_named_volume_into_the_container_dir(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    mount = Mount(type="volume", source="store", destination="/var/lib/store")
    _link_mounts(directory, _spec(tmp_path, mount))
    link = directory / "var" / "lib" / "store"
    assert link.is_symlink()
    assert link.resolve() == (tmp_path / "volumes" / "store").resolve()


def test_a_named_volume_without_a_volumes_dir_is_an_invalid_spec(tmp_path: Path) -> None:
    config = TaskConfig(runtime="exec", args=["true"], mounts=["store:/data"])
    with pytest.raises(InvalidSpecError, match="volumes directory"):
        _link_mounts(tmp_path, ContainerSpec("web", 1, "n1", config))


def test_an_unknown_user_name_is_an_invalid_spec() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root may switch users; as non-root any user is refused earlier")
    with pytest.raises(InvalidSpecError, match="unknown user"):
        _resolve_user("voiyd-no-such-user")


def test_a_numeric_user_without_a_passwd_entry_is_accepted_as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root may switch users")
    assert _resolve_user("54321:54322") == (54321, 54322, "/")
