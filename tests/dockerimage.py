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


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
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
