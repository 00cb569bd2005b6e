"""Which wheels ``voiydctl upgrade node`` accepts (voiyd.cli.upgrade.wheel_version), locally.

Wheels are built by ``tests.wheels`` into a temp dir; nothing is installed.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from tests.wheels import build_wheel
from voiyd.cli.upgrade import read_wheel, wheel_version
from voiyd.errors import InvalidRequestError


def test_the_version_comes_from_the_wheels_metadata(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "0.1.0.post3")
    assert wheel_version(wheel) == "0.1.0.post3"
    parsed = read_wheel(wheel)
    assert parsed.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    raw = hashlib.sha256(wheel.read_bytes()).digest()
    assert parsed.digest == f"SHA-256={base64.urlsafe_b64encode(raw).decode()}"


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


META = "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"


@pytest.mark.parametrize(
    ("file_name", "files", "problem"),
    [
        pytest.param("voiyd-1.0.tar.gz", {}, "not a voiyd wheel file name", id="not-a-whl"),
        pytest.param(
            "other-1.0-py3-none-any.whl", {}, "not a voiyd wheel file name", id="other-name"
        ),
        pytest.param("voiyd-1.0-py3-none-any.whl", None, "not a readable wheel", id="not-a-zip"),
        pytest.param(
            "voiyd-1.0-py3-none-any.whl",
            {"voiyd/__init__.py": ""},
            "no .dist-info/METADATA",
            id="no-metadata",
        ),
        pytest.param(
            "voiyd-1.0-py3-none-any.whl",
            {"x-1.0.dist-info/METADATA": META.format(name="x", version="1.0")},
            "a wheel of x 1.0, not of voiyd",
            id="another-project",
        ),
        pytest.param(
            "voiyd-1.0-py3-none-any.whl",
            {"voiyd-2.0.dist-info/METADATA": META.format(name="voiyd", version="2.0")},
            "the file name says version 1.0, its METADATA 2.0",
            id="versions-disagree",
        ),
    ],
)
def test_a_file_that_is_not_a_voiyd_wheel_is_refused_with_why(
    tmp_path: Path, file_name: str, files: dict[str, str] | None, problem: str
) -> None:
    path = tmp_path / file_name
    if files is None:
        path.write_bytes(b"not a zip at all")
    else:
        _zip(path, files)
    with pytest.raises(InvalidRequestError, match=problem) as caught:
        wheel_version(path)
    assert caught.value.message.startswith(f"--wheel {path}")
