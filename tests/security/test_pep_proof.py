"""§4.6 a PEP authenticated through an untrusted client, against a real server: the PEP's
own proof (kms:PepCredential) gets it its keys, double wrapped so only it opens them;
every missing, wrong, moved, replayed or tampered proof is refused, audited, and changes
nothing. Every message is schema-validated."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import timedelta

import pytest
from lxml import etree

from kms_ws.client import (
    Kek,
    KeyUnwrapError,
    KmsClient,
    KmsFault,
    PepSigner,
    PepUnwrapper,
)
from kms_ws.security import wssecurity

from ..support import db
from ..support.pep import Forged
from ..support.pep import credential as _credential
from ..support.pep import denials as _denials
from ..support.signing import utcnow
from ..support.validating import answers, post, with_new_message_id

pytestmark = pytest.mark.e2e
K = "{urn:kms-ws:p1619.3:1}"


@pytest.mark.parametrize("kind", ["ec", "rsa", "hmac"])
def test_pep_proof_through_a_client_delivers_a_key_only_the_pep_opens(pep, admin,
                                                                      kind) -> None:
    s = pep(kind)
    policy = "SymmetricKey" if kind == "hmac" else "AsymmetricKey"
    assert admin.admin_get("Pep", s.pep_id)["AuthenticationPolicy"] == policy
    created = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    assert b"PepCredential" in s.capture.sent
    assert created.value is None and created.pep_blob is not None  # the client never sees it
    value = PepUnwrapper([s.pep_kek]).open(created.pep_blob)
    assert len(value) == 32
    with pytest.raises(KeyUnwrapError):  # the client's own KEK does not open the PEP's layer
        PepUnwrapper([Kek(s.pep_kek.key_id, s.client_kek.secret)]).open(created.pep_blob)
    again = s.client.get_key(created.key_id, pep_id=s.pep_id, pep_proof=s.signer)
    assert again.value is None and PepUnwrapper([s.pep_kek]).open(again.pep_blob) == value


def test_missing_proof_is_refused_when_the_pep_authenticates_itself(pep, server) -> None:
    s = pep("ec")
    key = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    before = db.snapshot(server.data_dir)
    with pytest.raises(KmsFault) as e:
        s.client.get_key(key.key_id, pep_id=s.pep_id)
    assert (e.value.subcode, e.value.error_code) == ("wsman:AccessDenied",
                                                     "E_PEP_PROOF_REQUIRED")
    with pytest.raises(KmsFault) as e:
        s.client.create_key(pep_id=s.pep_id)
    assert e.value.error_code == "E_PEP_PROOF_REQUIRED"
    assert db.snapshot(server.data_dir) == before
    assert _denials(server, s.pep_id) == [("E_PEP_PROOF_REQUIRED", "Denied")] * 2


def test_a_pep_without_a_credential_is_served_on_its_clients_word(client: KmsClient,
                                                                  admin: KmsClient) -> None:
    pep_id = client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    shown = admin.admin_get("Pep", pep_id)
    assert (shown["AuthenticationPolicy"], shown["AuthenticationValuesSet"]) == ("None", False)
    assert client.create_key(pep_id=pep_id).key_id
    forged = Forged(_credential("ec")[0])  # nothing registered could verify a proof
    with pytest.raises(KmsFault) as e:
        client.create_key(pep_id=pep_id, pep_proof=forged)
    assert (e.value.subcode, e.value.error_code) == ("wsse:SecurityTokenUnavailable",
                                                     "E_INVALID_CREDENTIALS")
    assert "no registered credential" in e.value.reason


def test_a_self_authenticating_pep_gets_no_key_without_its_own_wrapping_key(
        server, client: KmsClient) -> None:
    key, cred = _credential("ec")
    pep_id = client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}", **cred)
    before = db.snapshot(server.data_dir)
    with pytest.raises(KmsFault) as e:  # its key would pass through the client's hands
        client.create_key(pep_id=pep_id, pep_proof=PepSigner(pep_id, key))
    assert (e.value.subcode, e.value.error_code) == ("wsman:UnsupportedFeature",
                                                     "E_WRAPPING_UNAVAILABLE")
    assert db.snapshot(server.data_dir) == before


@pytest.mark.parametrize("case", ["wrong-key", "other-pep", "other-key", "other-operation",
                                  "expired", "hmac-with-wrong-secret"])
def test_wrong_or_moved_proofs_are_refused(pep, server, case) -> None:
    s = pep("hmac" if case == "hmac-with-wrong-secret" else "ec")
    other = pep("ec")
    key = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    prover = {
        "wrong-key": Forged(_credential("ec")[0]),
        "other-pep": Forged(other.key, pep_id=other.pep_id),
        "other-key": Forged(s.key, key_id=str(uuid.uuid4())),
        "other-operation": Forged(s.key, operation="CreateKey"),
        "expired": Forged(s.key, age=timedelta(minutes=10)),
        "hmac-with-wrong-secret": Forged(wssecurity.SigningKey(secrets.token_bytes(32))),
    }[case]
    before = db.snapshot(server.data_dir)
    with pytest.raises(KmsFault) as e:
        s.client.get_key(key.key_id, pep_id=s.pep_id, pep_proof=prover)
    expected = ("wsse:MessageExpired", "E_MESSAGE_EXPIRED") if case == "expired" \
        else ("wsse:FailedCheck", "E_SIGNATURE_INVALID")
    assert (e.value.subcode, e.value.error_code) == expected
    if case == "other-pep":
        assert other.pep_id in e.value.reason
    assert db.snapshot(server.data_dir) == before
    assert _denials(server, s.pep_id)[-1] == (expected[1], "Denied")


def test_replayed_proof_is_refused_and_audited(pep, server) -> None:
    s = pep("ec")
    key = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    s.client.get_key(key.key_id, pep_id=s.pep_id, pep_proof=s.signer)
    captured = s.capture.sent
    before = db.snapshot(server.data_dir)
    assert answers(server.url, captured, 2, auth=(s.name, s.password)) == [
        (400, "E_REPLAY")] * 2
    # The same proof in a new message (fresh MessageID): it was made for another request.
    moved = with_new_message_id(captured)
    r, env = post(server.url, moved, auth=(s.name, s.password))
    assert r.status_code == 400
    assert env is not None and env.findtext(f".//{K}ErrorCode") == "E_SIGNATURE_INVALID"
    assert db.snapshot(server.data_dir) == before
    assert _denials(server, s.pep_id)[-3:] == [("E_REPLAY", "Denied")] * 2 + [
        ("E_SIGNATURE_INVALID", "Denied")]


@pytest.mark.parametrize("part", ["SignatureValue", "Created", "PepId"])
def test_tampered_proof_is_refused(pep, server, part) -> None:
    s = pep("ec")
    key = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    signer = s.signer

    class Tampering:
        def prove(self, operation: str, pep_id: str, key_id: str | None,
                  message_id: str) -> etree._Element:
            el = signer.prove(operation, pep_id, key_id, message_id)
            node = el.find(K + part)
            if part == "SignatureValue":
                raw = bytearray(base64.b64decode(node.text))
                raw[5] ^= 0x01
                node.text = base64.b64encode(bytes(raw)).decode()
            elif part == "Created":
                node.text = (utcnow() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            else:
                node.text = str(uuid.uuid4())
            return el

    before = db.snapshot(server.data_dir)
    with pytest.raises(KmsFault) as e:
        s.client.get_key(key.key_id, pep_id=s.pep_id, pep_proof=Tampering())
    assert (e.value.subcode, e.value.error_code) == ("wsse:FailedCheck", "E_SIGNATURE_INVALID")
    assert db.snapshot(server.data_dir) == before
    assert _denials(server, s.pep_id)[-1] == ("E_SIGNATURE_INVALID", "Denied")
