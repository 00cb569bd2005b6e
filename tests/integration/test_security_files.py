"""The auth and certs directories on disk: what `voiyd auth` / `voiyd certs` write, and refuse.

No server here (the other test_security_* files run the material against nats-server): file
modes, refusals that must leave nothing half-written, and ``voiyd up --secure``'s material
being made once and reused.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from voiyd.auth.local import LocalMaterial
from voiyd.auth.pki import CertsDir
from voiyd.auth.store import AuthDir
from voiyd.errors import AlreadyExistsError, InvalidRequestError, NotFoundError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_the_daemon_users_and_admin_with_private_files(tmp_path: Path) -> None:
    auth = AuthDir(tmp_path / "auth")
    users = auth.init()
    assert [u.name for u in users] == ["server", "scheduler", "logrelay", "admin"]
    assert mode(auth.path) == 0o700
    for user in users:
        creds = auth.creds_path(user.name)
        assert mode(creds) == 0o600
        assert user.nkey in auth.config_path.read_text()
        assert user.nkey not in creds.read_text()  # the seed, not the public key
    with pytest.raises(AlreadyExistsError):
        auth.init()


def test_nodes_and_users_come_and_go_and_the_config_follows(tmp_path: Path) -> None:
    auth = AuthDir(tmp_path / "auth")
    auth.init()
    n1 = auth.add_node("n1")
    vic = auth.add_user("vic", "viewer")
    with pytest.raises(AlreadyExistsError):
        auth.add_node("n1")
    with pytest.raises(InvalidRequestError):
        auth.add_user("node-n2", "viewer")  # would be node n2's user
    with pytest.raises(InvalidRequestError):
        auth.add_user("eve", "node")
    with pytest.raises(InvalidRequestError):
        auth.add_node("n1.*")
    assert "voiyd.agent.n1.heartbeat" in auth.config_path.read_text()
    auth.remove_node("n1")
    with pytest.raises(NotFoundError):
        auth.remove_node("n1")
    text = auth.config_path.read_text()
    assert n1.nkey not in text and "voiyd.agent.n1." not in text
    assert vic.nkey in text
    assert not auth.creds_path("node-n1").exists()


def test_a_forced_init_drops_every_old_credentials_file(tmp_path: Path) -> None:
    auth = AuthDir(tmp_path / "auth")
    auth.init()
    auth.add_node("n1")
    auth.init(force=True)
    assert not auth.creds_path("node-n1").exists()
    assert auth.find("node-n1") is None


def test_certs_name_the_hosts_and_a_bad_host_writes_nothing(tmp_path: Path) -> None:
    certs = CertsDir(tmp_path / "certs")
    with pytest.raises(InvalidRequestError):
        certs.init(["bad host"])
    assert not certs.ca.cert.exists()
    certs.init(["10.0.0.5", "nats.example.com"])
    server = x509.load_pem_x509_certificate(certs.server.cert.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.0.0.5",
    }
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "nats.example.com"}
    assert mode(certs.ca.key) == 0o600 and mode(certs.server.key) == 0o600
    with pytest.raises(AlreadyExistsError):
        certs.init([])
    with pytest.raises(InvalidRequestError):
        certs.issue_client("../evil")


def test_secure_up_material_is_made_once_and_reused(tmp_path: Path) -> None:
    material = LocalMaterial(tmp_path / "secure")
    material.prepare(port=4999, store_dir=tmp_path / "nats", node="local")
    admin = material.admin_creds.read_text()
    ca = material.ca.read_text()
    material.prepare(port=5000, store_dir=tmp_path / "nats", node="other")
    assert material.admin_creds.read_text() == admin
    assert material.ca.read_text() == ca
    assert material.creds("node", "other").exists() and material.creds("node", "local").exists()
    assert "listen: 127.0.0.1:5000" in material.config.read_text()
    assert material.client_args("server", "other")[:2] == [
        "--creds",
        str(material.creds("server", "other")),
    ]
