"""``create volume``: a host-local volume on one node, or a template volume from local files.

``--from-file PATH[=NAME]`` reads a file (or every file under a directory) into a template
volume's ``files``; NAME is its path inside the volume (default: the file's own name). What
the document means (a valid name, a node for host-local volumes, 256 KiB of files at most) is the
server's to judge, as for ``run``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rich_click as click

from voiyd.cli.app import App, pass_app, usage
from voiyd.cli.parse import parse_file_spec, parse_pairs
from voiyd.cli.tasks import report


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text (template volumes hold text files)") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None


def read_files(specs: Iterable[str]) -> dict[str, str]:
    """``{name in the volume: content}`` for every ``PATH[=NAME]`` (directories recursively)."""
    out: dict[str, str] = {}
    for spec in specs:
        raw, name = parse_file_spec(spec)
        path = Path(raw)
        if path.is_dir():
            prefix = f"{name}/" if name else ""
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                out[prefix + item.relative_to(path).as_posix()] = _read_text(item)
        else:
            out[name or path.name] = _read_text(path)
    return out


def volume_document(name: str, opts: dict[str, Any]) -> dict[str, Any]:
    files = usage(lambda: read_files(opts["files"]), "--from-file")
    kind = opts["type"] or ("template" if files else "host-local")
    config: dict[str, Any] = {"type": kind, "node": opts["node"], "files": files}
    return {
        "version": "volume/v1",
        "meta": {"name": name, "labels": usage(lambda: parse_pairs(opts["labels"]), "--label")},
        "config": {k: v for k, v in config.items() if v not in (None, {})},
    }


@click.group("create")
def create_group() -> None:
    """Create an object from flags (tasks: `run`; anything: `apply -f`)."""


@create_group.command("volume")
@click.argument("name")
@click.option("--node", help="The node that holds the data (required for host-local).")
@click.option(
    "--type",
    "type",
    type=click.Choice(["host-local", "template"]),
    help="Default: template with --from-file, host-local otherwise.",
)
@click.option(
    "--from-file",
    "files",
    multiple=True,
    metavar="PATH[=NAME]",
    help="A file or directory for a template volume; NAME is its path inside the volume.",
)
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Volume label.")
@click.option("--dry-run", is_flag=True, help="Validate on the server; create nothing.")
@pass_app
def create_volume_cmd(app: App, /, name: str, **opts: Any) -> None:
    """Create a volume: `create volume data --node n1` (host-local, kept across task restarts).

    A task mounts it with `run ... --mount data:/var/lib/data[:ro]` and is placed on its node.
    """
    doc = volume_document(name, opts)
    body = {"volume": doc, "dry_run": opts["dry_run"]}
    reply = app.run(lambda session: session.write("volume", "create", body))
    assert reply is not None
    report(app.out, f"volume/{name}", "created", reply, dry_run=opts["dry_run"])
