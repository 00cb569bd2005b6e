"""``voiyd.agent.<node>.control.upgrade``: install a new voiyd wheel into the agent's own Python.

The wheel comes from the JetStream object store the request names (``voiydctl upgrade node``
put it there). The agent downloads it, checks its SHA-256 against the request's, and runs
``<python> -m pip install --no-index --no-deps --force-reinstall <wheel>`` with a deadline. Any
failure is the reply (``accepted: false`` and why, with pip's last lines) and the old version
goes on running; on success the reply says so and the runner stops and re-executes itself.
One upgrade at a time: a request that arrives while one is under way is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE
from pydantic import ValidationError

from voiyd import __version__
from voiyd.api.agent import UpgradeReply, UpgradeRequest
from voiyd.bus import codec, subjects
from voiyd.errors import InvalidRequestError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0
PIP_LINES = 15
"""How many of pip's last output lines a refusal carries."""
_REASON_MAX = 3000
_CHUNK = 1024 * 1024
_CHUNK_WAIT_S = 30.0


class UpgradeFailed(Exception):
    """The wheel could not be installed; ``reason`` goes back to the operator as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Installer:
    """Downloads, checks and installs one wheel; no NATS subscription of its own."""

    work_dir: Path
    """Where the wheel is downloaded to (and removed from afterwards)."""
    python: str
    """The interpreter whose environment the wheel goes into (the agent's own)."""
    timeout_s: float = DEFAULT_TIMEOUT_S

    async def install(self, nc: Client, req: UpgradeRequest) -> None:
        path = self.work_dir / _wheel_file(req.object)
        try:
            await self._download(nc, req, path)
            actual = await asyncio.to_thread(_sha256, path)
            if actual != req.sha256:
                raise UpgradeFailed(
                    f"checksum mismatch: {req.object} has SHA-256 {actual}, "
                    f"the request says {req.sha256}"
                )
            log.info("upgrade: %s has the expected SHA-256; installing it", req.object)
            await self._pip(path)
        finally:
            with contextlib.suppress(OSError):
                path.unlink()

    async def _download(self, nc: Client, req: UpgradeRequest, path: Path) -> None:
        where = f"{req.bucket}/{req.object}"
        log.info("upgrade: downloading %s from the object store", where)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        try:
            async with asyncio.timeout(self.timeout_s):
                await fetch_object(nc.jetstream(), req.bucket, req.object, path)
        except nats.js.errors.BucketNotFoundError:
            raise UpgradeFailed(f"cannot download {where}: no object store {req.bucket}") from None
        except nats.js.errors.ObjectNotFoundError:
            raise UpgradeFailed(f"cannot download {where}: no such object") from None
        except nats.js.errors.DigestMismatchError:
            raise UpgradeFailed(f"cannot download {where}: its content is corrupt") from None
        except TimeoutError:
            raise UpgradeFailed(
                f"cannot download {where}: no answer within {self.timeout_s:g} s"
            ) from None
        except (nats.errors.Error, OSError) as exc:
            raise UpgradeFailed(f"cannot download {where}: {exc or type(exc).__name__}") from exc

    async def _pip(self, wheel: Path) -> None:
        argv = [
            self.python,
            *("-m", "pip", "install", "--no-index", "--no-deps", "--force-reinstall"),
            *("--disable-pip-version-check", "--no-input", str(wheel)),
        ]
        log.info("upgrade: running %s", " ".join(argv))
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                output, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise UpgradeFailed(f"pip install did not finish within {self.timeout_s:g} s") from None
        text = output.decode(errors="replace")
        for line in text.splitlines():
            log.info("upgrade: pip: %s", line)
        if proc.returncode != 0:
            tail = "\n".join(text.strip().splitlines()[-PIP_LINES:])
            raise UpgradeFailed(f"pip install failed (exit code {proc.returncode}):\n{tail}")


async def fetch_object(js: JetStreamContext, bucket: str, name: str, path: Path) -> None:
    """Object ``name`` of ``bucket`` into ``path``.

    nats-py's ``ObjectStore.get`` finds the chunks' stream by asking ``STREAM.NAMES``; naming
    the stream here keeps a node's credentials to the stream info, the meta message and one
    ordered consumer of the wheels' stream (voiyd.auth.roles).
    """
    info = await (await js.object_store(bucket)).get_info(name)
    if info.is_link() or not info.nuid:
        raise UpgradeFailed(f"{bucket}/{name} is a link, not a wheel")
    with path.open("wb") as out:
        if not info.size:
            return
        sub = await js.subscribe(
            OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=info.nuid),
            stream=OBJ_STREAM_TEMPLATE.format(bucket=bucket),
            ordered_consumer=True,
        )
        try:
            while True:
                msg = await sub.next_msg(timeout=_CHUNK_WAIT_S)
                out.write(msg.data)
                if msg.metadata.num_pending == 0:
                    return
        finally:
            await sub.unsubscribe()


class UpgradeService:
    """Answers this node's upgrade requests, one at a time."""

    def __init__(
        self, node: str, installer: Installer, on_installed: Callable[[str], None]
    ) -> None:
        self.node = node
        self.installer = installer
        self.on_installed = on_installed
        """Called once a wheel is installed and the reply sent: the runner restarts."""
        self.busy = False
        self._nc: Client | None = None
        self._tg: asyncio.TaskGroup | None = None

    async def serve(self, nc: Client, tg: asyncio.TaskGroup) -> Subscription:
        self._nc, self._tg = nc, tg
        subject = subjects.agent_control(self.node, subjects.UPGRADE_VERB)
        return await nc.subscribe(subject, cb=self._on_request)

    async def _on_request(self, msg: Msg) -> None:
        if self.busy:
            log.warning("upgrade refused: another upgrade of node %s is under way", self.node)
            await _respond(msg, _refused("another upgrade of this node is under way"))
            return
        assert self._tg is not None
        self.busy = True
        self._tg.create_task(self._handle(msg))

    async def _handle(self, msg: Msg) -> None:
        installed = False
        try:
            installed = await self._upgrade(msg)
        finally:
            if not installed:
                self.busy = False  # a refused upgrade leaves the node as it was

    async def _upgrade(self, msg: Msg) -> bool:
        assert self._nc is not None
        try:
            req = UpgradeRequest.model_validate(codec.decode_map(msg.data))
        except (InvalidRequestError, ValidationError, ValueError) as exc:
            await _respond(msg, _refused(f"bad upgrade request: {exc}"))
            return False
        log.info("upgrade of node %s from %s to %s requested", self.node, __version__, req.version)
        try:
            await self.installer.install(self._nc, req)
        except UpgradeFailed as exc:
            log.warning(
                "upgrade to %s refused; %s keeps running: %s", req.version, __version__, exc
            )
            await _respond(msg, _refused(exc.reason))
            return False
        log.info("upgrade: installed %s; restarting (tasks keep running)", req.version)
        await _respond(
            msg, UpgradeReply(accepted=True, from_version=__version__, to_version=req.version)
        )
        with contextlib.suppress(Exception):
            await self._nc.flush(timeout=5)
        self.on_installed(req.version)
        return True


def _refused(reason: str) -> UpgradeReply:
    if len(reason) > _REASON_MAX:
        reason = "…" + reason[-_REASON_MAX:]
    return UpgradeReply(accepted=False, from_version=__version__, reason=reason)


async def _respond(msg: Msg, reply: UpgradeReply) -> None:
    if not msg.reply:
        return
    with contextlib.suppress(Exception):
        await msg.respond(codec.encode(reply))


def _wheel_file(name: str) -> str:
    """The object's name as a file name pip accepts, or ``UpgradeFailed``."""
    if "/" in name or name.startswith(".") or not name.endswith(".whl"):
        raise UpgradeFailed(f"{name!r} is not a wheel file name (NAME-VERSION-TAGS.whl)")
    if not name.startswith("voiyd-"):
        raise UpgradeFailed(f"{name!r} is not a voiyd wheel")
    return name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
