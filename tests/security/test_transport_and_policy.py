"""TLS with client certificates mapped to registered clients; signatures required
server-wide or per realm. (Passwords over plain HTTP: test_password_transport.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kms_ws.client import KmsClient, KmsFault
from kms_ws.security import wssecurity
from kms_ws.security.certificates import SERVER_KEY_FILE, self_signed

from ..support.clients import ensure_realms
from ..support.envelopes import envelope
from ..support.pki import CA
from ..support.server import ADMIN, ServerProcess, kms
from ..support.signing import Signer, new_key, register_signer, signed
from ..support.validating import post

SIGNED_REALM = "realm://test/signed"
S = "{http://www.w3.org/2003/05/soap-envelope}"
RANDOM = "<kms:GetRandomBytes><kms:NumberOfBytes>8</kms:NumberOfBytes></kms:GetRandomBytes>"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CA:
    return CA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: CA) -> Iterator[ServerProcess]:
    cert, key, _ = pki.issue("server", server=True)
    srv = ServerProcess(tmp_path_factory.mktemp("tls") / "data", workers=1, tls=(cert, key),
                        security={"allow_basic_over_http": False,
                                  "require_signature_realms": {SIGNED_REALM: True}},
                        config={"tls_client_ca": str(pki.pem)}, tls_ca=pki.pem)
    srv.bootstrap()
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.stderr_text()


def _admin(srv: ServerProcess, pki: CA) -> KmsClient:
    return KmsClient(srv.url, *ADMIN, verify=str(pki.pem))


def test_client_certificate_authenticates_registered_client(tls_server: ServerProcess,
                                                            pki: CA) -> None:
    name = f"tls-{uuid.uuid4().hex[:6]}"
    cert, key, pem = pki.issue(name)
    with _admin(tls_server, pki) as admin:
        client_id = admin.register_endpoint("Client", name, certificate=pem)
    with KmsClient(tls_server.url, verify=str(pki.pem), cert=(str(cert), str(key))) as c:
        assert c.authenticate("Validate") == client_id
        created = c.create_key(friendly_name="over-mtls")
        assert c.get_key(created.key_id).value == created.value


def test_unregistered_client_certificate_is_refused(tls_server: ServerProcess,
                                                    pki: CA) -> None:
    cert, key, _ = pki.issue(f"stranger-{uuid.uuid4().hex[:6]}")
    with (
        KmsClient(tls_server.url, verify=str(pki.pem), cert=(str(cert), str(key))) as c,
        pytest.raises(KmsFault) as exc,
    ):
        c.get_random_bytes(8)
    assert exc.value.subcode == "wsse:SecurityTokenUnavailable"


def test_no_client_certificate_still_connects_with_basic(tls_server: ServerProcess,
                                                         pki: CA) -> None:
    with _admin(tls_server, pki) as admin:
        assert len(admin.get_random_bytes(8)) == 8


def _signing_admin(srv: ServerProcess, pki: CA, tmp_path: Path) -> KmsClient:
    """An administrator that signs its requests, registered offline: one that holds rights
    in a realm requiring signatures (as granting rights there needs) must sign."""
    name = f"signing-admin-{uuid.uuid4().hex[:6]}"
    key = new_key()
    cert = self_signed(key, name)
    (tmp_path / "admin.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kms("client", "add", name, "--admin", "--cert", str(tmp_path / "admin.pem"),
        "--data-dir", str(srv.data_dir))
    return KmsClient(srv.url, signing_key=wssecurity.SigningKey(key, cert),
                     verify=str(pki.pem))


def test_realm_requiring_signatures(tls_server: ServerProcess, pki: CA, tmp_path: Path) -> None:
    with _signing_admin(tls_server, pki, tmp_path) as admin:
        ensure_realms(admin, (SIGNED_REALM, "realm://test/open"))
        pw_name = f"pw-{uuid.uuid4().hex[:6]}"
        admin.register_endpoint("Client", pw_name, password="a-long-password",
                                realms=[SIGNED_REALM])
        other = f"pw-{uuid.uuid4().hex[:6]}"
        admin.register_endpoint("Client", other, password="a-long-password",
                                realms=["realm://test/open"])
        signer = register_signer(admin, realms=(SIGNED_REALM,))
    # its right password is refused as a wrong one would be: the answer confirms no
    # password of a client that must sign (issue 12.5: no oracle)
    refused = []
    for password in ("a-long-password", "not-its-password"):
        with KmsClient(tls_server.url, pw_name, password, verify=str(pki.pem)) as c:
            with pytest.raises(KmsFault) as exc:
                c.get_random_bytes(8)
            refused.append((exc.value.subcode, exc.value.error_code, exc.value.reason))
    assert refused[0] == refused[1] == ("wsman:AccessDenied", "E_INVALID_CREDENTIALS",
                                        "unknown user name or wrong password")
    with KmsClient(tls_server.url, other, "a-long-password", verify=str(pki.pem)) as c:
        assert len(c.get_random_bytes(8)) == 8
    with KmsClient(tls_server.url, signing_key=signer.key, verify=str(pki.pem)) as c:
        assert len(c.get_random_bytes(8)) == 8


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory,
                  pki: CA) -> Iterator[tuple[ServerProcess, object]]:
    """Plain HTTP with the defaults for Basic, and every request signed; the admin is
    bootstrapped offline with a certificate."""
    data = tmp_path_factory.mktemp("strict") / "data"
    srv = ServerProcess(data, workers=1, security={"allow_basic_over_http": False,
                                                   "require_signature": True})
    key = new_key()
    cert = self_signed(key, "strict-admin")
    (data / "admin.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kms("init", "--data-dir", str(data))
    admin_id = kms("client", "add", "admin", "--admin", "--cert", str(data / "admin.pem"),
                   "--data-dir", str(data)).stdout.strip()
    srv.start()
    yield srv, Signer("admin", wssecurity.SigningKey(key, cert), admin_id, b"", b"")
    assert srv.stop() == 0, srv.stderr_text()


def test_server_wide_signature_requirement(strict_server) -> None:  # type: ignore[no-untyped-def]
    srv, admin_signer = strict_server
    with KmsClient(srv.url, signing_key=admin_signer.key) as admin:
        assert admin.authenticate("Validate") == admin_signer.endpoint_id
    # a password client (registered offline: no password crosses plain HTTP)
    kms("client", "add", "pw-user", "--password-stdin", "--data-dir", str(srv.data_dir),
        stdin="a-long-password\n")
    cred = ("<kms:Credential><kms:CredentialType>UsernamePassword</kms:CredentialType>"
            "<kms:UsernamePassword><kms:Username>pw-user</kms:Username>"
            "<kms:Password>a-long-password</kms:Password></kms:UsernamePassword></kms:Credential>")
    r, env = post(srv.url, envelope(RANDOM, op="GetRandomBytes", headers=cred))
    assert r.status_code == 400 and "must sign" in env.findtext(f".//{S}Text")
    r, env = post(srv.url, signed(RANDOM, "GetRandomBytes", admin_signer.key))
    assert r.status_code == 200


def test_server_signing_key_is_private(strict_server) -> None:  # type: ignore[no-untyped-def]
    srv, _ = strict_server
    assert (Path(srv.data_dir) / SERVER_KEY_FILE).stat().st_mode & 0o777 == 0o600
