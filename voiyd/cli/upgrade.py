"""``voiydctl upgrade node NAME|-l SELECTOR --wheel PATH``: new agent code, one node at a time.

The wheel goes into the JetStream object store ``voiyd-wheels`` (created if missing; a wheel
already stored with the same content is not sent again). Then, node after node, the agent is
asked to install it (``voiyd.agent.<node>.control.upgrade``); it checks the SHA-256, runs pip and
re-executes itself, keeping its tasks running. The command waits until the node shows the new
version and is ready before it moves on. A refusal (download, checksum, pip) stops the command
at that node with the agent's reason and a non-zero exit; the node keeps its old version.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import nats.errors
import nats.js.errors
import rich_click as click
from nats.js.object_store import ObjectStore

from voiyd.api.agent import UpgradeReply, UpgradeRequest
from voiyd.api.requests import NodeListReply, NodeReply
from voiyd.api.views import NodeView
from voiyd.bus import codec, subjects
from voiyd.cli.app import App, pass_app
from voiyd.cli.client import Session, parse_reply
from voiyd.errors import InvalidRequestError, NotFoundError, UnavailableError, VoiydError

DIST_NAME = "voiyd"
POLL_S = 0.5


class UpgradeRefusedError(VoiydError):
    """An agent did not install the wheel; it keeps running its old version (exit code 1)."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    version: str
    sha256: str
    size: int

    @property
    def digest(self) -> str:
        """The object store's form of the SHA-256 (``SHA-256=<urlsafe base64>``)."""
        raw = bytes.fromhex(self.sha256)
        return f"SHA-256={base64.urlsafe_b64encode(raw).decode()}"


def wheel_version(path: Path) -> str:
    """The version a voiyd wheel carries (its ``METADATA``), or ``InvalidRequestError``."""
    where = f"--wheel {path}"
    if not path.name.endswith(".whl") or not path.name.startswith(f"{DIST_NAME}-"):
        raise InvalidRequestError(
            f"{where}: not a voiyd wheel file name ({DIST_NAME}-VERSION-….whl)"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.count("/") == 1]
            meta = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
            if meta is None:
                raise InvalidRequestError(f"{where}: the wheel has no .dist-info/METADATA")
            headers = HeaderParser().parsestr(zf.read(meta).decode("utf-8", errors="replace"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidRequestError(f"{where}: not a readable wheel: {exc}") from exc
    name, version = headers.get("Name", ""), headers.get("Version", "")
    if name.lower() != DIST_NAME or not version:
        raise InvalidRequestError(
            f"{where}: a wheel of {name or '?'} {version}, not of {DIST_NAME}"
        )
    file_version = path.name.split("-")[1]
    if file_version != version.replace("-", "_"):
        raise InvalidRequestError(
            f"{where}: the file name says version {file_version}, its METADATA {version}"
        )
    return version


def read_wheel(path: Path) -> Wheel:
    version = wheel_version(path)
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return Wheel(path=path, version=version, sha256=h.hexdigest(), size=path.stat().st_size)


async def _store(session: Session) -> ObjectStore:
    js = session.js
    try:
        return await js.object_store(subjects.WHEELS_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_object_store(
            subjects.WHEELS_BUCKET, description="voiyd agent wheels (voiydctl upgrade node)"
        )


async def put_wheel(session: Session, wheel: Wheel) -> None:
    """Store the wheel under its file name, unless the same content is stored already."""
    async with session.out.spinner(f"uploading {wheel.path.name} ({wheel.size // 1024} KiB)"):
        try:
            store = await _store(session)
            try:
                info = await store.get_info(wheel.path.name)
                if info.digest == wheel.digest:
                    return
            except nats.js.errors.ObjectNotFoundError:
                pass
            with wheel.path.open("rb") as f:
                await store.put(wheel.path.name, f)
        except (nats.errors.Error, TimeoutError) as exc:
            raise UnavailableError(
                f"cannot store {wheel.path.name} in the object store {subjects.WHEELS_BUCKET}: "
                f"{exc or type(exc).__name__}"
            ) from exc
    session.out.note(f"stored {wheel.path.name} ({wheel.size} bytes, sha256 {wheel.sha256[:12]}…)")


async def target_nodes(session: Session, name: str | None, selector: str) -> list[NodeView]:
    if name is not None:
        return [parse_reply(NodeReply, await session.query("node", "get", {"name": name})).node]
    reply = parse_reply(NodeListReply, await session.query("node", "list", {"selector": selector}))
    if not reply.nodes:
        raise NotFoundError(f"no node matches -l {selector}")
    return sorted(reply.nodes, key=lambda n: n.name)


async def ask(session: Session, node: str, wheel: Wheel, timeout: float) -> UpgradeReply:
    req = UpgradeRequest(
        bucket=subjects.WHEELS_BUCKET,
        object=wheel.path.name,
        sha256=wheel.sha256,
        version=wheel.version,
    )
    subject = subjects.agent_control(node, subjects.UPGRADE_VERB)
    try:
        msg = await session.nc.request(subject, codec.encode(req), timeout=timeout)
    except nats.errors.NoRespondersError:
        raise UnavailableError(
            f"node/{node}: its agent does not answer upgrade requests (is it running?)"
        ) from None
    except nats.errors.TimeoutError:
        raise UnavailableError(
            f"node/{node}: no answer to the upgrade within {timeout:g}s"
        ) from None
    return parse_reply(UpgradeReply, codec.decode_map(msg.data))


async def wait_upgraded(session: Session, node: str, version: str, timeout: float) -> NodeView:
    """The node once it has rejoined with ``version`` and is ready."""
    view: NodeView | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                reply = await session.query("node", "get", {"name": node})
                view = parse_reply(NodeReply, reply).node
                if view.agent_version == version and view.phase in ("ready", "draining"):
                    return view
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        seen = f"version {view.agent_version}, {view.phase}" if view else "nothing"
        raise UnavailableError(
            f"node/{node} installed {version} but did not come back with it within "
            f"{timeout:g}s (last seen: {seen})"
        ) from None


async def upgrade_one(session: Session, node: NodeView, wheel: Wheel, timeout: float) -> None:
    name = node.name
    if node.agent_version == wheel.version:
        session.out.line(f"node/{name} already runs {wheel.version} (skipped)")
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    session.quiet = True
    try:
        async with session.out.spinner(f"node/{name}: installing {wheel.version}"):
            reply = await ask(session, name, wheel, timeout)
        if not reply.accepted:
            raise UpgradeRefusedError(
                f"node/{name} refused the upgrade to {wheel.version} and keeps running "
                f"{reply.from_version or node.agent_version}: {reply.reason}"
            )
        async with session.out.spinner(f"node/{name}: restarting as {wheel.version}"):
            left = max(1.0, deadline - loop.time())
            view = await wait_upgraded(session, name, wheel.version, left)
    finally:
        session.quiet = False
    was = reply.from_version or node.agent_version or "?"
    session.out.line(f"node/{name} upgraded {was} -> {view.agent_version} ({view.phase})")


@click.group("upgrade")
def upgrade_group() -> None:
    """Upgrade the agents of nodes."""


@upgrade_group.command("node")
@click.argument("name", required=False)
@click.option("-l", "--selector", default="", help="Upgrade every node matching this selector.")
@click.option(
    "--wheel",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="The voiyd wheel to install (voiyd-VERSION-py3-none-any.whl).",
)
@click.option(
    "--timeout-per-node",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds each node has to install the wheel and come back with its version.",
)
@pass_app
def upgrade_node_cmd(
    app: App, name: str | None, selector: str, wheel: Path, timeout_per_node: float
) -> None:
    """Install a new voiyd wheel on nodes, one at a time; their tasks keep running.

    Stops at the first node that refuses (its reason is printed) and exits non-zero.
    """
    if name is not None and name.startswith("node/"):
        name = name.removeprefix("node/")
    if (name is None) == (not selector):
        raise click.UsageError("give a node NAME or -l SELECTOR (one of them)")
    parsed = read_wheel(wheel)

    async def upgrade(session: Session) -> None:
        nodes = await target_nodes(session, name, selector)
        await put_wheel(session, parsed)
        for i, node in enumerate(nodes):
            try:
                await upgrade_one(session, node, parsed, timeout_per_node)
            except VoiydError:
                rest = [n.name for n in nodes[i + 1 :]]
                if rest:
                    session.out.note(f"not attempted: {', '.join(f'node/{n}' for n in rest)}")
                raise

    app.run(upgrade)
