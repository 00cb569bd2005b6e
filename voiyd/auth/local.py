"""The credentials, certificates and nats-server config of a secure ``voiyd up`` (``--secure``).

Under ``<data-dir>/secure``: an auth directory (users server, scheduler, logrelay, admin and
the local node), a CA with a certificate for 127.0.0.1/localhost, and ``nats.conf``: the
single-host server with TLS (handshake first) and those users. Made once, then reused, so
contexts and credentials handed out stay valid across restarts; a new ``--node-name`` gets its
user added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from voiyd.auth.pki import CertsDir
from voiyd.auth.roles import node_user
from voiyd.auth.store import ADMIN_USER, AuthDir, write_private

SERVER_NAME = "voiyd-local"


@dataclass(frozen=True)
class LocalMaterial:
    path: Path

    @property
    def auth(self) -> AuthDir:
        return AuthDir(self.path / "auth")

    @property
    def certs(self) -> CertsDir:
        return CertsDir(self.path / "certs")

    @property
    def config(self) -> Path:
        return self.path / "nats.conf"

    @property
    def ca(self) -> Path:
        return self.certs.ca.cert

    @property
    def admin_creds(self) -> Path:
        return self.auth.creds_path(ADMIN_USER)

    def creds(self, daemon: str, node: str) -> Path:
        """The credentials of a daemon: ``server``, ``scheduler``, ``logrelay`` or ``node``."""
        return self.auth.creds_path(node_user(node) if daemon == "node" else daemon)

    def client_args(self, daemon: str, node: str) -> list[str]:
        """A daemon's command-line options for its credentials and the CA."""
        return ["--creds", str(self.creds(daemon, node)), "--tls-ca", str(self.ca)]

    def prepare(self, *, port: int, store_dir: Path, node: str) -> None:
        """Make what is missing (users, the node's user, the CA) and write ``nats.conf``."""
        auth = self.auth
        if not auth.exists():
            auth.init()
        if auth.find(node_user(node)) is None:
            auth.add_node(node)
        if not self.certs.ca.cert.exists():
            self.certs.init([])
        write_private(self.config, self._config_text(port, store_dir), mode=0o640)

    def _config_text(self, port: int, store_dir: Path) -> str:
        server = self.certs.server
        return "\n".join(
            [
                "# Written by `voiyd up --secure` at every start; edits are lost.",
                f"server_name: {SERVER_NAME}",
                f"listen: 127.0.0.1:{port}",
                f"jetstream {{ store_dir: {json.dumps(str(store_dir))} }}",
                "tls {",
                f"  cert_file: {json.dumps(str(server.cert))}",
                f"  key_file: {json.dumps(str(server.key))}",
                f"  ca_file: {json.dumps(str(self.ca))}",
                "  handshake_first: true",
                "  timeout: 2",
                "}",
                'include "auth/auth.conf"',
                "",
            ]
        )
