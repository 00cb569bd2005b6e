"""Template volumes on a node: their files under ``<data dir>/templates/<task>/<volume>``.

The server puts the files of each template volume a task mounts into the task's assignment; the
agent writes them here before it starts the task, and the runtimes mount the directory
read-only. Each content lives in its own directory named by its digest
(``.<volume>-<digest>``); ``<volume>`` is a symlink to the current one, swapped with one
``rename``, so a reader sees the old files or the new ones, never half of each. Unchanged files
are not written again. A content replaced by a newer one is kept until the next change (a
container still stopping may have it mounted). Files are read-only by mode (0444, directories
0555). Only whole task directories are ever removed, when the task is no longer on this node;
host-local volumes (``<data dir>/volumes``) are not touched here.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

FILE_MODE = 0o444
DIR_MODE = 0o555
_WRITABLE_DIR = 0o755


def digest(files: Mapping[str, str]) -> str:
    """A short name for one content of a template volume (same files, same digest)."""
    h = hashlib.sha256()
    for path in sorted(files):
        for part in (path, files[path]):
            data = part.encode()
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)
    return h.hexdigest()[:16]


class Templates:
    """The template volume directories of one node, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, task: str, volume: str) -> Path:
        """Where ``task`` sees ``volume``: the symlink to its current content."""
        return self.root / task / volume

    def write(self, task: str, volume: str, files: Mapping[str, str]) -> Path:
        """Make ``task``'s copy of ``volume`` hold ``files``; the content directory to mount."""
        task_dir = self.root / task
        task_dir.mkdir(parents=True, exist_ok=True)
        # '@' is in no volume name: ``.conf@*`` never matches the content of ``conf-extra``.
        content = task_dir / f".{volume}@{digest(files)}"
        if not content.is_dir():
            staging = task_dir / f".{volume}.new-{secrets.token_hex(4)}"
            try:
                _write_files(staging, files)
                staging.rename(content)
            finally:
                if staging.exists():
                    _remove(staging)
        link = task_dir / volume
        previous = str(link.readlink()) if link.is_symlink() else None
        if previous != content.name:
            if link.exists() and not link.is_symlink():
                _remove(link)  # not ours: make room for the link
            swap = task_dir / f".{volume}.link-{secrets.token_hex(4)}"
            swap.symlink_to(content.name, target_is_directory=True)
            swap.replace(link)
        keep = {content.name, previous}
        for old in task_dir.glob(f".{volume}@*"):
            if old.name not in keep:
                _remove(old)
        return content

    def tasks(self) -> set[str]:
        """The tasks that have template directories on this node."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")}

    def remove(self, task: str) -> None:
        """Forget every template volume of ``task`` on this node."""
        if "/" in task or task in ("", ".", ".."):
            raise ValueError(f"{task!r} is not a task name")
        path = self.root / task
        if path.exists():
            _remove(path)


def _write_files(directory: Path, files: Mapping[str, str]) -> None:
    directory.mkdir(parents=True)
    for rel, text in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        target.chmod(FILE_MODE)
    for dirpath, dirnames, _ in os.walk(directory, topdown=False):
        for name in dirnames:
            Path(dirpath, name).chmod(DIR_MODE)
    directory.chmod(DIR_MODE)


def _remove(path: Path) -> None:
    """Remove ``path``, read-only directories too; symlinks are unlinked, never followed."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    for dirpath, _, _ in os.walk(path):  # symlinked directories are not walked into
        Path(dirpath).chmod(_WRITABLE_DIR)
    shutil.rmtree(path)
