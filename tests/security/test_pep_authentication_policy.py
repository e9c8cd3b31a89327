"""§4.6 a PEP's AUTHENTICATION_POLICY and AUTHENTICATION_VALUES as an administrator sets
them (versioned edits of the Pep), enforced on every delivery for the PEP: with a policy
the PEP's own proof, made with values of that type, is required; None serves it on its
client's word. Refusals are faults, audited, and change nothing."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from kms_ws.client import Kek, KmsClient, KmsFault, PepSigner, PepUnwrapper
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed

from ..support import db
from ..support.server import ServerProcess
from ..support.signing import new_key
from .test_pep_proof import _denials

pytestmark = pytest.mark.e2e


class Drive:
    """A client and a PEP it registered without a credential, each with a wrapping key."""

    def __init__(self, server: ServerProcess, admin: KmsClient, validator: Any) -> None:
        name, password = f"client-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
        admin.register_endpoint("Client", name, password=password)
        self.client_name = name
        self.client_kek = Kek(f"ckek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
        self.client = KmsClient(server.url, name, password, plugins=[validator],
                                wrapping_keys=[self.client_kek])
        self.client.register_wrapping_values({self.client_kek.key_id: self.client_kek.secret})
        self.pep_kek = Kek(f"pkek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
        self.pep_id = self.client.register_endpoint(
            "Pep", f"pep-{uuid.uuid4().hex[:8]}",
            wrapping_values={self.pep_kek.key_id: self.pep_kek.secret})


@pytest.fixture()
def drive(server: ServerProcess, admin: KmsClient, validator: Any):  # type: ignore[no-untyped-def]
    made: list[Drive] = []

    def make() -> Drive:
        made.append(Drive(server, admin, validator))
        return made[-1]

    yield make
    for d in made:
        d.client.close()


def _values(value: bytes) -> dict[str, Any]:
    return {"CredentialValue": [{"Length": len(value),
                                 "Value": base64.b64encode(value).decode()}]}


def _set(admin: KmsClient, pep_id: str, **fields: Any) -> dict[str, Any]:
    return admin.admin_edit("Pep", {**admin.admin_get("Pep", pep_id), **fields})


def _certificate() -> tuple[wssecurity.SigningKey, bytes]:
    key = new_key("ec")
    cert = self_signed(key, "pep-cert")
    return wssecurity.SigningKey(key, cert), cert.public_bytes(serialization.Encoding.DER)


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(KmsFault) as err:
        call()
    return str(err.value.error_code)


def test_admin_requires_a_symmetric_proof_from_a_pep(drive, admin: KmsClient,
                                                     server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    d = drive()
    key = d.client.create_key(pep_id=d.pep_id)  # policy None: on its client's word
    shown = admin.admin_get("Pep", d.pep_id)
    assert (shown["AuthenticationPolicy"], shown["AuthenticationValuesSet"]) == ("None", False)
    # WRAPPING_VALUES are shown by id and kind, never by value
    assert [(k["WrappingKeyId"], k["Kind"]) for k in shown["WrappingKeys"]["WrappingKey"]] \
        == [(d.pep_kek.key_id, "SymmetricKey")]
    client_doc = admin.admin_get("Client", d.client_name)
    assert [k["WrappingKeyId"] for k in client_doc["WrappingKeys"]["WrappingKey"]] == \
        [d.client_kek.key_id]
    assert "WrappingValues" not in shown
    assert base64.b64encode(d.pep_kek.secret).decode() not in repr(shown)
    secret = secrets.token_bytes(32)
    edited = _set(admin, d.pep_id, AuthenticationPolicy="SymmetricKey",
                  AuthenticationValues=_values(secret))
    assert edited["Version"] == shown["Version"] + 1
    assert (edited["AuthenticationPolicy"], edited["AuthenticationValuesSet"]) == \
        ("SymmetricKey", True)
    assert "AuthenticationValues" not in edited  # never shown back
    before = db.snapshot(server.data_dir)
    assert _code(lambda: d.client.get_key(key.key_id, pep_id=d.pep_id)) == \
        "E_PEP_PROOF_REQUIRED"
    assert _code(lambda: d.client.create_key(pep_id=d.pep_id)) == "E_PEP_PROOF_REQUIRED"
    assert db.snapshot(server.data_dir) == before
    assert _denials(server, d.pep_id)[-2:] == [("E_PEP_PROOF_REQUIRED", "Denied")] * 2
    signer = PepSigner(d.pep_id, wssecurity.SigningKey(secret))
    got = d.client.get_key(key.key_id, pep_id=d.pep_id, pep_proof=signer)
    opener = PepUnwrapper([d.pep_kek])
    assert got.value is None and opener.open(got.pep_blob) == opener.open(key.pep_blob)


def test_policy_none_serves_a_pep_on_its_clients_word_again(drive, admin: KmsClient) -> None:  # type: ignore[no-untyped-def]
    d = drive()
    secret = secrets.token_bytes(32)
    _set(admin, d.pep_id, AuthenticationPolicy="SymmetricKey",
         AuthenticationValues=_values(secret))
    assert _code(lambda: d.client.create_key(pep_id=d.pep_id)) == "E_PEP_PROOF_REQUIRED"
    relaxed = _set(admin, d.pep_id, AuthenticationPolicy="None")
    assert (relaxed["AuthenticationPolicy"], relaxed["AuthenticationValuesSet"]) == \
        ("None", True)
    assert d.client.create_key(pep_id=d.pep_id).key_id  # no proof needed now
    wrong = PepSigner(d.pep_id, wssecurity.SigningKey(secrets.token_bytes(32)))
    assert _code(lambda: d.client.create_key(pep_id=d.pep_id, pep_proof=wrong)) == \
        "E_SIGNATURE_INVALID"  # a proof that is sent is still checked


def test_rotated_values_replace_the_old_ones_at_once(drive, admin: KmsClient) -> None:  # type: ignore[no-untyped-def]
    d = drive()
    old_key, old_cert = _certificate()
    _set(admin, d.pep_id, AuthenticationPolicy="AsymmetricKey",
         AuthenticationValues=_values(old_cert))
    old = PepSigner(d.pep_id, old_key)
    key = d.client.create_key(pep_id=d.pep_id, pep_proof=old)
    new_key_, new_cert = _certificate()
    _set(admin, d.pep_id, AuthenticationValues=_values(new_cert))
    assert _code(lambda: d.client.get_key(key.key_id, pep_id=d.pep_id, pep_proof=old)) == \
        "E_SIGNATURE_INVALID"
    got = d.client.get_key(key.key_id, pep_id=d.pep_id, pep_proof=PepSigner(d.pep_id, new_key_))
    assert PepUnwrapper([d.pep_kek]).open(got.pep_blob) == \
        PepUnwrapper([d.pep_kek]).open(key.pep_blob)


def test_mismatched_bad_or_stale_edits_are_refused_and_change_nothing(
        drive, admin: KmsClient) -> None:  # type: ignore[no-untyped-def]
    d = drive()
    cert_key, cert = _certificate()
    stale = _set(admin, d.pep_id, AuthenticationPolicy="AsymmetricKey",
                 AuthenticationValues=_values(cert))
    current = _set(admin, d.pep_id, Attributes={"Attribute": [
        {"Name": "pep://example.com/drive/serial", "Value": "S-1"}]})
    for fields, code in (
            ({**current, "AuthenticationPolicy": "SymmetricKey"}, "E_INVALID_PARAMETER"),
            ({**current, "AuthenticationValues": _values(b"not a certificate at all")},
             "E_INVALID_PARAMETER"),
            ({**current, "AuthenticationPolicy": "SymmetricKey",
              "AuthenticationValues": _values(secrets.token_bytes(16))}, "E_INVALID_PARAMETER"),
            ({**stale, "AuthenticationPolicy": "None"}, "E_STALE_VERSION")):
        assert _code(lambda f=fields: admin.admin_edit("Pep", f)) == code
    assert admin.admin_get("Pep", d.pep_id) == current
    assert d.client.create_key(pep_id=d.pep_id, pep_proof=PepSigner(d.pep_id, cert_key)).key_id


def test_removed_values_fail_closed(drive, admin: KmsClient, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    d = drive()
    secret = secrets.token_bytes(32)
    _set(admin, d.pep_id, AuthenticationPolicy="SymmetricKey",
         AuthenticationValues=_values(secret))
    signer = PepSigner(d.pep_id, wssecurity.SigningKey(secret))
    key = d.client.create_key(pep_id=d.pep_id, pep_proof=signer)
    removed = _set(admin, d.pep_id, AuthenticationValues={})
    assert (removed["AuthenticationPolicy"], removed["AuthenticationValuesSet"]) == \
        ("SymmetricKey", False)
    before = db.snapshot(server.data_dir)
    assert _code(lambda: d.client.get_key(key.key_id, pep_id=d.pep_id, pep_proof=signer)) == \
        "E_INVALID_CREDENTIALS"
    assert _code(lambda: d.client.get_key(key.key_id, pep_id=d.pep_id)) == \
        "E_PEP_PROOF_REQUIRED"
    assert db.snapshot(server.data_dir) == before
    assert [e for e, _ in _denials(server, d.pep_id)[-2:]] == \
        ["E_INVALID_CREDENTIALS", "E_PEP_PROOF_REQUIRED"]


def test_the_untrusted_client_cannot_lower_its_peps_policy(drive, admin: KmsClient) -> None:  # type: ignore[no-untyped-def]
    d = drive()
    secret = secrets.token_bytes(32)
    doc = _set(admin, d.pep_id, AuthenticationPolicy="SymmetricKey",
               AuthenticationValues=_values(secret))
    assert _code(lambda: d.client.admin_edit("Pep", {**doc, "AuthenticationPolicy": "None"})) \
        == "E_PERMISSION_DENIED"
    assert admin.admin_get("Pep", d.pep_id) == doc
    assert _code(lambda: d.client.create_key(pep_id=d.pep_id)) == "E_PEP_PROOF_REQUIRED"
