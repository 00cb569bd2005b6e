"""voiyd wheels for upgrade tests, built from this checkout without network or build tools.

The test venv has no ``wheel`` package (and no registry is reachable), so ``pip wheel`` cannot
build one; a pure-Python wheel is a zip with a ``.dist-info`` (PEP 427), which this writes:
every ``.py`` file of ``voiyd/``, with ``__version__`` (and the metadata) set to the version
asked for, so an agent that installs it reports that version. And a Python environment of its
own for an agent: a venv whose own ``voiyd`` comes from a wheel and whose other dependencies are
the test venv's, reached through a ``.pth`` file and a directory of links that leaves out the
test venv's editable voiyd (and pip), so that nothing installed there ever touches it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_VERSION_RE = re.compile(r'^__version__ = "[^"]*"$', re.MULTILINE)
_HIDDEN_DEPS = ("voiyd", "__editable__", "_distutils_hack", "pip", "setuptools", "pkg_resources")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _metadata(version: str) -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [
        "Metadata-Version: 2.1",
        "Name: voiyd",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
        *(f"Requires-Dist: {dep}" for dep in project["dependencies"]),
    ]
    return "\n".join(lines) + "\n"


def _entry_points() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = ["[console_scripts]", *(f"{k} = {v}" for k, v in project["scripts"].items())]
    return "\n".join(lines) + "\n"


def build_wheel(out_dir: Path, version: str, *, with_wheel_file: bool = True) -> Path:
    """``out_dir/voiyd-<version>-py3-none-any.whl`` from this checkout's ``voiyd/``.

    ``with_wheel_file=False`` leaves out ``.dist-info/WHEEL``: a wheel whose METADATA reads
    fine but that pip refuses to install.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    dist_info = f"voiyd-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted((ROOT / "voiyd").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        data = path.read_bytes()
        if rel == "voiyd/__init__.py":
            text, count = _VERSION_RE.subn(f'__version__ = "{version}"', data.decode())
            assert count == 1, "voiyd/__init__.py has no __version__ line"
            data = text.encode()
        files[rel] = data
    files[f"{dist_info}/METADATA"] = _metadata(version).encode()
    if with_wheel_file:
        files[f"{dist_info}/WHEEL"] = (
            b"Wheel-Version: 1.0\nGenerator: tests.wheels\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        )
    files[f"{dist_info}/entry_points.txt"] = _entry_points().encode()
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    wheel = out_dir / f"voiyd-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


def make_agent_env(venv: Path, wheel: Path) -> Path:
    """A venv at ``venv`` with ``wheel`` installed (with pip, to upgrade itself); its python."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    deps = venv / "test-deps"
    deps.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if entry.suffix == ".pth" or entry.name.startswith(_HIDDEN_DEPS):
            continue
        (deps / entry.name).symlink_to(entry)
    (purelib / "voiyd-test-deps.pth").write_text(f"{deps}\n")
    install(python, wheel)
    return python


def install(python: Path, wheel: Path) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        cwd=python.parent,
    )


def installed_version(python: Path) -> tuple[str, str]:
    """``(version, file)`` of the voiyd that ``python`` imports (run outside this checkout)."""
    out = subprocess.run(
        [str(python), "-c", "import voiyd; print(voiyd.__version__); print(voiyd.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=python.parent,
    ).stdout.split()
    return out[0], out[1]
