"""A small certificate authority for NATS over TLS: a CA, the server's certificate, clients'.

Layout of a certs directory (keys are owner-only)::

    <dir>/ca.pem, ca-key.pem                  the CA: clients verify the server with ca.pem
    <dir>/server-cert.pem, server-key.pem     nats-server's (and leaf/route) certificate
    <dir>/clients/<name>-cert.pem, -key.pem   client certificates, for mutual TLS

The server certificate names 127.0.0.1, ::1 and localhost plus the hosts given (IP addresses
or DNS names), so clients can verify it by the address they dial. Keys are ECDSA P-256.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from voiyd.auth.store import write_private
from voiyd.errors import AlreadyExistsError, InvalidRequestError, NotFoundError
from voiyd.ids import name_problem

DEFAULT_DAYS = 825
CA_DAYS = 3650
LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
_BACKDATE = timedelta(minutes=5)
"""Certificates start a little in the past, so a host whose clock lags still accepts them."""

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voiyd"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() or c in "/:@" for c in host):
                raise InvalidRequestError(
                    f"{host!r} is neither an IP address nor a host name"
                ) from None
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _builder(subject: str, issuer: x509.Name, key: Key, days: int) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
    )


def _key_pem(key: Key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class CertsDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def ca(self) -> CertFiles:
        return CertFiles(self.path / "ca.pem", self.path / "ca-key.pem")

    @property
    def server(self) -> CertFiles:
        return CertFiles(self.path / "server-cert.pem", self.path / "server-key.pem")

    def client(self, name: str) -> CertFiles:
        base = self.path / "clients" / name
        return CertFiles(base.with_name(f"{name}-cert.pem"), base.with_name(f"{name}-key.pem"))

    def init(self, hosts: list[str], *, days: int = DEFAULT_DAYS, force: bool = False) -> None:
        """A new CA and a server certificate for ``LOCAL_HOSTS`` and ``hosts``."""
        if self.ca.cert.exists() and not force:
            raise AlreadyExistsError(
                f"{self.path} already holds a CA (use --force to replace it: every certificate "
                "it signed stops being trusted)"
            )
        _san([*LOCAL_HOSTS, *hosts])  # refuse a bad host before anything is written
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder("voiyd CA", _name("voiyd CA"), key, CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(sign_certs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private(self.ca.key, _key_pem(key))
        write_private(self.ca.cert, _cert_pem(cert), mode=0o644)
        self.issue_server(hosts, days=days)

    def issue_server(self, hosts: list[str], *, days: int = DEFAULT_DAYS) -> CertFiles:
        """nats-server's certificate; it also serves as a client one on routes and leaf links."""
        eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        return self._issue(self.server, "voiyd nats-server", eku, [*LOCAL_HOSTS, *hosts], days)

    def issue_client(self, name: str, *, days: int = DEFAULT_DAYS) -> CertFiles:
        """A client certificate for ``name`` (mutual TLS: ``verify: true`` in the server)."""
        if problem := name_problem(name):
            raise InvalidRequestError(f"client name: {problem}")
        files = self.client(name)
        return self._issue(files, name, [ExtendedKeyUsageOID.CLIENT_AUTH], [], days)

    def _load_ca(self) -> tuple[x509.Certificate, Key]:
        try:
            cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())
            key = serialization.load_pem_private_key(self.ca.key.read_bytes(), password=None)
        except FileNotFoundError:
            raise NotFoundError(
                f"no CA in {self.path} (create one with `voiyd certs init`)"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidRequestError(f"{self.ca.key} is not an EC key written by voiyd certs")
        return cert, key

    def _issue(
        self,
        files: CertFiles,
        subject: str,
        eku: list[x509.ObjectIdentifier],
        hosts: list[str],
        days: int,
    ) -> CertFiles:
        ca_cert, ca_key = self._load_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _builder(subject, ca_cert.subject, key, days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if hosts:
            builder = builder.add_extension(_san(hosts), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        write_private(files.key, _key_pem(key))
        write_private(files.cert, _cert_pem(cert), mode=0o644)
        return files


def _usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not sign_certs,
        key_cert_sign=sign_certs,
        crl_sign=sign_certs,
        encipher_only=False,
        decipher_only=False,
    )
