"""Signed requests end to end: the verified signer is the caller (certificate as a token,
certificate by name, HMAC), unknown or wrong keys, SHA-1, timestamps, replays."""

from __future__ import annotations

import base64
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from lxml import etree
from signxml import SignatureReference, XMLSigner, methods
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
)

from kms_ws.client import KmsClient, KmsFault
from kms_ws.security import wssecurity
from kms_ws.security.certificates import SERVER_CERT_FILE, self_signed
from kms_ws.xmlns import KMS

from ..support import db
from ..support.envelopes import create_key, envelope, get_key
from ..support.server import ServerProcess, kms
from ..support.signing import register_hmac, register_signer, signed, utcnow
from ..support.validating import ValidatingPlugin, post

K = f"{{{KMS}}}"


def _fault(env) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    sub = env.findtext(".//{http://www.w3.org/2003/05/soap-envelope}Subcode/"
                       "{http://www.w3.org/2003/05/soap-envelope}Value")
    return sub, env.findtext(f".//{K}ErrorCode")


@pytest.mark.parametrize("kind,by_name", [("ec", False), ("rsa", False), ("ec", True)])
def test_signed_client_is_the_caller(server: ServerProcess, admin: KmsClient, kind: str,
                                     by_name: bool) -> None:
    signer = register_signer(admin, kind, by_name=by_name)
    validator = ValidatingPlugin()
    with KmsClient(server.url, signing_key=signer.key, plugins=[validator]) as c:
        assert c.authenticate("Validate") == signer.endpoint_id
        key = c.create_key(friendly_name="signed-key")
        assert c.get_key(key.key_id).value == key.value
    assert validator.sent == 3 and validator.received == 3


def test_hmac_client_and_wrong_secret(server: ServerProcess, admin: KmsClient,
                                      validator: ValidatingPlugin) -> None:
    secret = secrets.token_bytes(32)
    name, key = register_hmac(admin, secret)
    with KmsClient(server.url, signing_key=key, plugins=[validator]) as c:
        created = c.create_key(friendly_name="hmac-key")
        assert c.get_key(created.key_id).value == created.value
    wrong = wssecurity.SigningKey(secrets.token_bytes(32), None, name)
    before = db.snapshot(server.data_dir)
    r, env = post(server.url, signed(create_key("x"), "CreateKey", wrong))
    assert r.status_code == 400 and _fault(env) == ("wsse:FailedCheck", "E_SIGNATURE_INVALID")
    assert db.snapshot(server.data_dir) == before


def test_short_hmac_secret_and_bad_certificate_are_refused(admin: KmsClient) -> None:
    with pytest.raises(KmsFault) as exc:
        admin.register_endpoint("Client", "short-secret", symmetric_key=b"x" * 16)
    assert exc.value.error_code == "E_INVALID_PARAMETER"
    with pytest.raises(KmsFault) as exc:
        admin.register_endpoint("Client", "not-a-cert", certificate=b"garbage" * 10)
    assert exc.value.error_code == "E_INVALID_PARAMETER"


def test_unregistered_certificate_is_refused(server: ServerProcess, admin: KmsClient) -> None:
    signer = register_signer(admin)
    stranger = wssecurity.SigningKey(signer.key.key, _other_cert(signer))
    before = db.snapshot(server.data_dir)
    r, env = post(server.url, signed(create_key("x"), "CreateKey", stranger))
    assert r.status_code == 400 and _fault(env)[0] == "wsse:SecurityTokenUnavailable"
    assert db.snapshot(server.data_dir) == before


def _other_cert(signer):  # type: ignore[no-untyped-def]
    return self_signed(signer.key.key, "not registered")


def test_credential_header_cannot_claim_a_signature(server: ServerProcess) -> None:
    """An AsymmetricKey credential is proven by signing, never by sending it."""
    cred = ("<kms:Credential><kms:CredentialType>AsymmetricKey</kms:CredentialType>"
            "<kms:CredentialValue><kms:Length>3</kms:Length><kms:Value>AAAA</kms:Value>"
            "</kms:CredentialValue></kms:Credential>")
    r, env = post(server.url, envelope(create_key("x"), op="CreateKey", headers=cred))
    assert r.status_code == 400
    assert _fault(env) == ("wsman:UnsupportedFeature", "E_UNSUPPORTED_AUTHENTICATION_MODE")


def test_replay_is_refused_and_audited(server: ServerProcess, admin: KmsClient) -> None:
    signer = register_signer(admin)
    msg = signed(create_key("replayed"), "CreateKey", signer.key)
    r, _ = post(server.url, msg)
    assert r.status_code == 200
    before = db.snapshot(server.data_dir)
    # Two workers share the cache through the store: every later copy is refused.
    for _ in range(4):
        r, env = post(server.url, msg)
        assert r.status_code == 400 and _fault(env) == ("wsse:InvalidSecurity", "E_REPLAY")
    assert db.snapshot(server.data_dir) == before
    rows = db.rows(server.data_dir, "SELECT actor_id, result FROM audit WHERE event = "
                   "'Replay' AND actor_id = ?", (signer.endpoint_id,))
    assert rows == [(signer.endpoint_id, "Denied")] * 4


@pytest.mark.parametrize("age,expected", [(timedelta(minutes=10), "the message has expired"),
                                          (timedelta(minutes=-5), "in the future")])
def test_timestamp_window(server: ServerProcess, admin: KmsClient, age: timedelta,
                          expected: str) -> None:
    signer = register_signer(admin)
    before = db.snapshot(server.data_dir)
    r, env = post(server.url, signed(create_key("old"), "CreateKey", signer.key,
                                     now=utcnow() - age))
    assert r.status_code == 400 and _fault(env) == ("wsse:MessageExpired", "E_MESSAGE_EXPIRED")
    assert expected in env.findtext(".//{http://www.w3.org/2003/05/soap-envelope}Text")
    assert db.snapshot(server.data_dir) == before


def test_sha1_is_never_accepted(server: ServerProcess, admin: KmsClient) -> None:

    signer = register_signer(admin, "rsa")
    env = etree.fromstring(envelope(create_key("sha1"), op="CreateKey"))
    wssecurity.sign(env, signer.key, now=utcnow(), ttl_seconds=300)
    sec = env.find(f".//{{{wssecurity.WSSE}}}Security")
    old = sec.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    exc = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
    uris = [SignatureReference(r.get("URI"), c14n_method=exc)
            for r in old.iter("{http://www.w3.org/2000/09/xmldsig#}Reference")]
    sec.remove(old)
    class Sha1Signer(XMLSigner):  # a genuinely valid SHA-1 signature, as old stacks make
        def check_deprecated_methods(self) -> None:
            pass

    new = Sha1Signer(method=methods.detached, signature_algorithm=SignatureMethod.RSA_SHA1,
                    digest_algorithm=DigestAlgorithm.SHA1, c14n_algorithm=exc).sign(
        env, key=signer.key.key, reference_uri=uris, key_info=old.find(
            "{http://www.w3.org/2000/09/xmldsig#}KeyInfo"))
    sec.append(new)
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, etree.tostring(env))
    assert r.status_code == 400 and _fault(resp)[0] == "wsse:UnsupportedAlgorithm"
    assert db.snapshot(server.data_dir) == before


def test_signed_get_key_reads_the_verified_body(server: ServerProcess, admin: KmsClient) -> None:
    signer = register_signer(admin)
    with KmsClient(server.url, signing_key=signer.key) as c:
        key = c.create_key(friendly_name="plain")
    r, env = post(server.url, signed(get_key(key.key_id), "GetKey", signer.key))
    assert r.status_code == 200 and env.findtext(f".//{K}KeyId") == key.key_id


def test_concurrent_copies_of_a_signed_get_key_deliver_once(server: ServerProcess,
                                                            admin: KmsClient) -> None:
    """GetKey reads first and enters the replay cache with its delivery record: copies of
    one signed GetKey sent at once to both workers are answered once, refused otherwise."""
    signer = register_signer(admin)
    with KmsClient(server.url, signing_key=signer.key) as c:
        key = c.create_key(friendly_name="raced")
    msg = signed(get_key(key.key_id), "GetKey", signer.key)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: post(server.url, msg), range(6)))
    statuses = sorted(r.status_code for r, _ in answers)
    assert statuses == [200] + [400] * 5
    assert all(_fault(env) == ("wsse:InvalidSecurity", "E_REPLAY")
               for r, env in answers if r.status_code == 400)
    assert db.count(server.data_dir, "audit", key_id=key.key_id, event="KeyDelivered") == 1


def test_malleated_ecdsa_signature_is_still_a_replay(server: ServerProcess,
                                                     admin: KmsClient) -> None:
    """(r, s) and (r, n - s) are both valid ECDSA signatures: the replay cache keys on
    the signed content (canonical SignedInfo), not on the signature bytes."""
    signer = register_signer(admin)
    msg = signed(create_key("malleable"), "CreateKey", signer.key)
    r, _ = post(server.url, msg)
    assert r.status_code == 200
    env = etree.fromstring(msg)
    sv = env.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    raw = base64.b64decode(sv.text)
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 order
    s = int.from_bytes(raw[32:], "big")
    sv.text = base64.b64encode(raw[:32] + (n - s).to_bytes(32, "big")).decode()
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, etree.tostring(env))
    assert r.status_code == 400 and _fault(resp) == ("wsse:InvalidSecurity", "E_REPLAY")
    assert db.snapshot(server.data_dir) == before


def test_replay_to_another_node_is_refused(server: ServerProcess, admin: KmsClient) -> None:
    """A second server process on the same store (another node) shares the cache."""
    signer = register_signer(admin)
    other = ServerProcess(server.data_dir, workers=1, log_name="node2.stderr")
    other.start()
    try:
        msg = signed(create_key("two-nodes"), "CreateKey", signer.key)
        r, _ = post(server.url, msg)
        assert r.status_code == 200
        before = db.snapshot(server.data_dir)
        r, env = post(other.url, msg)
        assert r.status_code == 400 and _fault(env) == ("wsse:InvalidSecurity", "E_REPLAY")
        assert db.snapshot(server.data_dir) == before
    finally:
        assert other.stop() == 0, other.stderr_text()


def test_cli_signs_requests_and_pins_the_server(server: ServerProcess, admin: KmsClient,
                                                tmp_path) -> None:  # type: ignore[no-untyped-def]


    signer = register_signer(admin)
    (tmp_path / "k.pem").write_bytes(signer.key_pem)
    (tmp_path / "c.pem").write_bytes(signer.cert_pem)
    common = ["--url", server.url, "--signing-key", str(tmp_path / "k.pem"),
              "--server-cert", str(server.data_dir / SERVER_CERT_FILE)]
    made = json.loads(kms("create-key", "--name", "cli-signed", "--show-value",
                          "--signing-cert", str(tmp_path / "c.pem"), *common).stdout)
    got = json.loads(kms("get-key", made["key_id"], "--show-value", "--key-name", signer.name,
                         *common).stdout)
    assert got["value_b64"] == made["value_b64"]
