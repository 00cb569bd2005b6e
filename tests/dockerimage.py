"""The local test image ``voiyd-test/busybox:1``, built from Debian's static busybox, never pulled.

No registry is reachable on the test machines, so tests that need a Docker image use this one.
It is made with ``docker import`` from a tar holding ``/bin/busybox`` and a symlink per applet
(the recipe in ci-recipes.md); ``.ci/run`` builds the same image the same way.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

TEST_IMAGE = "voiyd-test/busybox:1"
BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh",
    "echo",
    "sleep",
    "cat",
    "ls",
    "httpd",
    "seq",
    "wc",
    "env",
    "true",
    "false",
    "printf",
)
_DOCKER_TIMEOUT_S = 120


class ImageUnavailable(Exception):
    """The test image is missing and cannot be built here (no docker CLI, no busybox...)."""


def _rootfs_tar(files: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in (files or {}).items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
        bin_dir = tarfile.TarInfo("bin")
        bin_dir.type = tarfile.DIRTYPE
        bin_dir.mode = 0o755
        tar.addfile(bin_dir)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buf.getvalue()


def _docker(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    docker = shutil.which("docker")
    if docker is None:
        raise ImageUnavailable("the docker CLI is not installed")
    return subprocess.run(
        [docker, *args], input=stdin, capture_output=True, timeout=_DOCKER_TIMEOUT_S, check=False
    )


def ensure_test_image() -> str:
    """Make sure ``TEST_IMAGE`` exists in the local engine; return its name."""
    if _docker("image", "inspect", TEST_IMAGE).returncode == 0:
        return TEST_IMAGE
    if not BUSYBOX.is_file():
        raise ImageUnavailable(f"{BUSYBOX} is missing: apt-get install busybox-static")
    done = _docker("import", "-", TEST_IMAGE, stdin=_rootfs_tar())
    if done.returncode != 0:
        raise ImageUnavailable(f"docker import failed: {done.stderr.decode(errors='replace')}")
    return TEST_IMAGE


def ensure_variant(tag: str, files: dict[str, bytes]) -> str:
    """``voiyd-test/busybox:<tag>``: the test image plus ``files`` (top-level paths), built once."""
    image = f"voiyd-test/busybox:{tag}"
    if _docker("image", "inspect", image).returncode == 0:
        return image
    done = _docker("import", "-", image, stdin=_rootfs_tar(files))
    if done.returncode != 0:
        raise ImageUnavailable(f"docker import failed: {done.stderr.decode(errors='replace')}")
    return image


def require_test_image() -> str:
    """The test image, or skip (fail when VOIYD_REQUIRE_DOCKER=1) if Docker cannot give it."""
    problem = ""
    try:
        if _docker("info").returncode != 0:
            problem = "no Docker engine answers"
        else:
            return ensure_test_image()
    except (OSError, subprocess.TimeoutExpired, ImageUnavailable) as exc:
        problem = f"Docker unavailable: {exc}"
    if os.environ.get("VOIYD_REQUIRE_DOCKER", "") not in ("", "0"):
        pytest.fail(f"Docker is required (VOIYD_REQUIRE_DOCKER=1): {problem}")
    pytest.skip(problem)


def node_containers(node: str) -> list[str]:
    """Ids of every container (running or not) an agent named ``node`` made."""
    out = _docker("ps", "-aq", "--filter", f"label=io.voiyd.node={node}")
    return out.stdout.decode().split()


def remove_node_containers(*nodes: str) -> None:
    """Remove what agents named ``nodes`` left (tests stop what they start)."""
    for node in nodes:
        ids = node_containers(node)
        if ids:
            _docker("rm", "-f", *ids)
