"""No secret crosses plain HTTP unless the operator allows it (allow_basic_over_http, for
local use): not HTTP Basic, not a UsernamePassword in the kms:Credential header or in
Authenticate's Body, not a password or HMAC secret an administrator registers or sets. The
refusal is one precise fault, checks nothing, changes nothing and counts no failure
against the account; over HTTPS the same requests work."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kms_ws.client import KmsClient, KmsFault
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed

from ..support import db
from ..support.envelopes import envelope
from ..support.pki import CA
from ..support.server import ServerProcess, kms
from ..support.signing import Signer, new_key
from ..support.validating import post

S = "{http://www.w3.org/2003/05/soap-envelope}"
K = "{urn:kms-ws:p1619.3:1}"
RANDOM = "<kms:GetRandomBytes><kms:NumberOfBytes>8</kms:NumberOfBytes></kms:GetRandomBytes>"
PASSWORD = "alice-password-1"


def _password(user: str, password: str) -> str:
    return ("<kms:Credential><kms:CredentialType>UsernamePassword</kms:CredentialType>"
            f"<kms:UsernamePassword><kms:Username>{user}</kms:Username>"
            f"<kms:Password>{password}</kms:Password></kms:UsernamePassword></kms:Credential>")


def _start(data: Path, **kw) -> tuple[ServerProcess, Signer]:  # type: ignore[no-untyped-def]
    """A server on the default security settings: an administrator that signs (bootstrapped
    offline with its certificate) and a password client, alice."""
    srv = ServerProcess(data, workers=1, security={"allow_basic_over_http": False,
                                                   "lock_after_failed_authentications": 3},
                        **kw)
    key = new_key()
    cert = self_signed(key, "signing-admin")
    (data.parent / "admin.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kms("init", "--data-dir", str(data))
    admin_id = kms("client", "add", "admin", "--admin", "--cert", str(data.parent / "admin.pem"),
                   "--data-dir", str(data)).stdout.strip()
    kms("client", "add", "alice", "--password-stdin", "--data-dir", str(data),
        stdin=PASSWORD + "\n")
    srv.start()
    return srv, Signer("admin", wssecurity.SigningKey(key, cert), admin_id, b"", b"")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Signer]]:
    srv, admin = _start(tmp_path_factory.mktemp("plain") / "data")
    yield srv, admin
    assert srv.stop() == 0, srv.stderr_text()


def check_refused(r, env) -> None:  # type: ignore[no-untyped-def]
    """The one answer to a secret sent over plain HTTP."""
    assert r.status_code == 400, r.text
    assert env.findtext(f".//{S}Subcode/{S}Value") == "wsman:AccessDenied"
    assert env.findtext(f".//{K}ErrorCode") == "E_ACCESS_DENIED"
    text = env.findtext(f".//{S}Text")
    assert "plain HTTP" in text and "allow_basic_over_http" in text, text


def _fault(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KmsFault) as err:
        call()
    assert err.value.error_code == "E_ACCESS_DENIED"
    assert "plain HTTP" in str(err.value)


def test_password_in_the_credential_header_is_refused_unchecked(plain) -> None:  # type: ignore[no-untyped-def]
    srv, _ = plain
    # the right password, and a wrong one more times than the lockout allows: the same
    # answer, and none of them is checked or counted
    for password in (PASSWORD, "wrong-pw-1", "wrong-pw-2", "wrong-pw-3", "wrong-pw-4"):
        r, env = post(srv.url, envelope(RANDOM, op="GetRandomBytes",
                                        headers=_password("alice", password)))
        check_refused(r, env)
    state, failed = db.rows(srv.data_dir, "SELECT state, failed_auth FROM endpoints "
                                          "WHERE name = 'alice'")[0]
    assert (state, failed) == ("Active", 0)


def test_password_in_authenticate_login_is_refused(plain) -> None:  # type: ignore[no-untyped-def]
    srv, _ = plain
    body = ("<kms:Authenticate><kms:RequestType>Login</kms:RequestType>"
            f"{_password('alice', PASSWORD)}</kms:Authenticate>")
    r, env = post(srv.url, envelope(body, op="Authenticate"))
    check_refused(r, env)
    assert env.find(f".//{K}SessionToken") is None
    assert db.rows(srv.data_dir, "SELECT count(*) FROM sessions")[0][0] == 0


def test_http_basic_is_refused(plain) -> None:  # type: ignore[no-untyped-def]
    srv, _ = plain
    r, env = post(srv.url, envelope(RANDOM, op="GetRandomBytes"), auth=("alice", PASSWORD))
    check_refused(r, env)


def test_an_administrator_sends_no_secret_over_plain_http(plain) -> None:  # type: ignore[no-untyped-def]
    """Signed is not private: a password or HMAC secret in a signed Body is still readable
    on the wire."""
    srv, admin = plain
    names = [f"c-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    secret = b"s" * 32
    with KmsClient(srv.url, signing_key=admin.key) as kms_admin:
        _fault(lambda: kms_admin.register_endpoint("Client", names[0],
                                                   password="a-long-password"))
        _fault(lambda: kms_admin.register_endpoint("Client", names[1], symmetric_key=secret))
        _fault(lambda: kms_admin.admin_create("Client", {"Name": names[2]},
                                              password="a-long-password"))
        alice = next(c for c in kms_admin.admin_list("Client")[0] if c["Name"] == "alice")
        raw = b"new-password-123"
        _fault(lambda: kms_admin.admin_edit("Client", {**alice, "Credentials": {
            "CredentialValue": [{"Length": len(raw), "Value": base64.b64encode(raw).decode()}]}}))
        assert kms_admin.admin_get("Client", alice["ClientId"])["Version"] == alice["Version"]
        # a certificate is no secret: registering one over plain HTTP works
        cert = self_signed(new_key(), "cert-client").public_bytes(serialization.Encoding.PEM)
        assert kms_admin.register_endpoint("Client", f"c-{uuid.uuid4().hex[:8]}",
                                           certificate=cert)
    registered = {r[0] for r in db.rows(srv.data_dir, "SELECT name FROM endpoints")}
    assert not registered & set(names)
    # refused requests are audited
    refused = db.rows(srv.data_dir, "SELECT count(*) FROM audit WHERE result = 'Denied' "
                                    "AND message LIKE '%plain HTTP%'")[0][0]
    assert refused >= 4


def test_over_https_the_same_password_works(tmp_path: Path) -> None:
    pki = CA(tmp_path / "pki")
    cert, key, _ = pki.issue("server", server=True)
    srv, admin = _start(tmp_path / "data", tls=(cert, key), tls_ca=pki.pem)
    try:
        with KmsClient(srv.url, "alice", PASSWORD, verify=str(pki.pem)) as alice:
            assert len(alice.get_random_bytes(8)) == 8
            alice.login()
            assert len(alice.get_random_bytes(8)) == 8
        with KmsClient(srv.url, signing_key=admin.key, verify=str(pki.pem)) as kms_admin:
            assert kms_admin.register_endpoint("Client", "bob", password="bob-password-1")
        with KmsClient(srv.url, "bob", "bob-password-1", verify=str(pki.pem)) as bob:
            assert bob.authenticate("Validate")
    finally:
        assert srv.stop() == 0, srv.stderr_text()
