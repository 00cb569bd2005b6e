"""TLS: clients verify the server, mutual TLS refuses strangers, nothing leaves in the clear.

Certificates come from ``CertsDir`` (what ``voiyd certs`` writes); a second, unrelated CA plays
the stranger. The last test stands in for an impostor server on loopback that answers in
plain text, and checks that a client with TLS configured says nothing but a TLS hello to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.secure_nats import SecureNats
from voiyd.auth.pki import CertsDir
from voiyd.bus import subjects
from voiyd.bus.connect import NatsOptions, connect
from voiyd.errors import UnavailableError

pytestmark = pytest.mark.nats

_TLS_HANDSHAKE = 0x16
"""First byte of a TLS record carrying a handshake message (the ClientHello)."""


@pytest.fixture
async def mtls(tmp_path: Path) -> AsyncIterator[SecureNats]:
    secure = SecureNats(tmp_path / "nats", verify=True)
    secure.prepare(nodes=("n1",))
    secure.start()
    try:
        yield secure
    finally:
        secure.stop()


def stranger_ca(tmp_path: Path) -> CertsDir:
    other = CertsDir(tmp_path / "other-ca")
    other.init([])
    other.issue_client("admin")
    return other


async def test_mutual_tls_accepts_a_client_certificate_of_its_ca(mtls: SecureNats) -> None:
    nc = await connect(mtls.options("admin", client_cert=True), "test-mtls", reconnect=False)
    try:
        reply = await nc.request(subjects.api("system", "info"), b"", timeout=1)
    except Exception as exc:  # no voiyd-server here: "no responders" proves the round trip
        reply = None
        assert "no responders" in str(exc).lower()
    finally:
        await nc.close()
    assert reply is None


async def logged(server: SecureNats, text: str) -> bool:
    """Whether nats-server logs ``text`` (it may write the line after the client gave up)."""
    for _ in range(100):
        if text in server.log_text():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_mutual_tls_refuses_a_client_without_a_certificate(mtls: SecureNats) -> None:
    with pytest.raises(UnavailableError):
        await connect(mtls.options("admin"), "test-no-cert", reconnect=False)
    assert await logged(mtls, "TLS handshake error")


async def test_mutual_tls_refuses_a_certificate_of_another_ca(
    mtls: SecureNats, tmp_path: Path
) -> None:
    other = stranger_ca(tmp_path).client("admin")
    opts = replace(mtls.options("admin"), tls_cert=other.cert, tls_key=other.key)
    with pytest.raises(UnavailableError):
        await connect(opts, "test-stranger", reconnect=False)
    assert await logged(mtls, "TLS handshake error")


async def test_a_client_refuses_a_server_certificate_of_another_ca(
    mtls: SecureNats, tmp_path: Path
) -> None:
    other = stranger_ca(tmp_path)
    opts = replace(mtls.options("admin", client_cert=True), tls_ca=other.ca.cert)
    with pytest.raises(UnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        await connect(opts, "test-wrong-ca", reconnect=False)


async def test_a_tls_client_says_nothing_in_the_clear_even_to_a_plain_text_impostor(
    tmp_path: Path,
) -> None:
    """The impostor speaks NATS in plain text first, as a server without TLS would."""
    secure = SecureNats(tmp_path / "material")
    secure.prepare(nodes=("n1",))  # credentials and a CA; no server needed
    received = bytearray()
    done = asyncio.Event()

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"x","version":"2.15.1","max_payload":1048576}\r\n')
        await writer.drain()
        try:
            async with asyncio.timeout(2):
                while chunk := await reader.read(4096):
                    received.extend(chunk)
        except TimeoutError:
            pass
        writer.close()
        done.set()

    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    opts = NatsOptions(
        servers=(f"tls://127.0.0.1:{port}",),
        creds_file=secure.auth.creds_path("node-n1"),
        tls_ca=secure.certs.ca.cert,
    )
    try:
        with pytest.raises(UnavailableError):
            await connect(opts, "test-impostor", reconnect=False, connect_timeout=1)
        await asyncio.wait_for(done.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
    public = secure.auth.find("node-n1")
    assert public is not None
    assert received[:1] == bytes([_TLS_HANDSHAKE])
    assert b"CONNECT" not in received
    assert public.nkey.encode() not in received
