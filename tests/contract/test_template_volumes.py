"""Template volumes in the Runtime contract: the agent's files, mounted read-only (exec, Docker).

The agent writes a template volume's files (``voiyd.agent.templates``) and passes their directory
in ``ContainerSpec.templates``; the runtime mounts it at the mount's destination, read-only
whatever the mount says. Docker binds it ``:ro``, so even root inside the container cannot
write. The exec runtime links it like any volume; its files are read-only by mode (0444), which
binds every user but root, so the write is tried only where it must fail. A changed template
reaches the next container, never a missing directory an empty one.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from tests.contract.conftest import Kit, wait_exited
from voiyd.agent.runtimes.protocol import ContainerSpec, InvalidSpecError, Runtime
from voiyd.agent.templates import Templates

DATA = "/data"
FILES = {"app.conf": "port=8080\n", "sub/motd.txt": "hello\n"}
READ_BOTH = "cat conf/app.conf conf/sub/motd.txt > data/out"
TRY_WRITE = "if echo changed > conf/app.conf; then echo writable; else echo read-only; fi > data/ro"


def needs_processes(kit: Kit) -> None:
    if not kit.runs_processes:
        pytest.skip("the fake runtime runs no processes")


def write_must_fail(kit: Kit) -> bool:
    """Docker mounts read-only; exec files are 0444, which only binds a non-root task."""
    return kit.kind == "docker" or os.geteuid() != 0


def with_template(kit: Kit, spec: ContainerSpec, path: Path) -> ContainerSpec:
    return dataclasses.replace(spec, templates={"conf": path})


async def test_a_template_volume_shows_its_files_read_only(kit: Kit, runtime: Runtime) -> None:
    needs_processes(kit)
    data = kit.bind_dir()
    templates = Templates(kit.tmp / "templates")
    content = templates.write("web", "conf", FILES)
    script = f"{READ_BOTH}; {TRY_WRITE}" if write_must_fail(kit) else READ_BOTH
    # The mount does not say ro: a template volume is read-only anyway.
    spec = kit.spec(["sh", "-c", script], mounts=[f"{data}:{DATA}", "conf:/conf"])
    started = await runtime.start(with_template(kit, spec, content))
    assert (await wait_exited(runtime, started.id)).exit_code == 0
    assert (data / "out").read_text() == "port=8080\nhello\n"
    if write_must_fail(kit):
        assert (data / "ro").read_text() == "read-only\n"
    assert (content / "app.conf").read_text() == "port=8080\n"
    assert stat.S_IMODE((content / "app.conf").stat().st_mode) == 0o444
    await runtime.remove(started.id)
    assert (content / "app.conf").read_text() == "port=8080\n"  # removing never touches it


async def test_a_changed_template_reaches_the_next_container(kit: Kit, runtime: Runtime) -> None:
    needs_processes(kit)
    data = kit.bind_dir()
    node = kit.node()
    templates = Templates(kit.tmp / "templates")
    mounts = [f"{data}:{DATA}", "conf:/conf"]
    first = templates.write("web", "conf", FILES)
    spec = kit.spec(["sh", "-c", "cat conf/app.conf > data/first"], node=node, mounts=mounts)
    one = await runtime.start(with_template(kit, spec, first))
    assert (await wait_exited(runtime, one.id)).exit_code == 0
    await runtime.remove(one.id)

    second = templates.write("web", "conf", {**FILES, "app.conf": "port=9090\n"})
    assert second != first
    spec = kit.spec(
        ["sh", "-c", "cat conf/app.conf > data/second"], node=node, epoch=2, mounts=mounts
    )
    two = await runtime.start(with_template(kit, spec, second))
    assert (await wait_exited(runtime, two.id)).exit_code == 0
    assert (data / "first").read_text() == "port=8080\n"
    assert (data / "second").read_text() == "port=9090\n"
    assert (templates.path("web", "conf") / "app.conf").read_text() == "port=9090\n"


async def test_a_missing_template_directory_is_an_invalid_spec(kit: Kit, runtime: Runtime) -> None:
    needs_processes(kit)
    spec = kit.spec(["sh", "-c", "cat conf/app.conf"], mounts=["conf:/conf"])
    missing = kit.tmp / "templates" / "web" / "conf"
    with pytest.raises(InvalidSpecError, match="template volume 'conf'"):
        await runtime.start(with_template(kit, spec, missing))
    assert not missing.exists()
    assert await runtime.list(spec.node) == []
