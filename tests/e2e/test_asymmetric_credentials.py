"""§4.7.1 Credential tuples of an AsymmetricKey client: an administrator replaces its
X.509 certificate (a certificate nearing expiry, a key that leaked) or removes it by a
versioned edit. Real signed requests show the old certificate refused at once by every
worker, although each worker remembers certificates it has verified, and the new one
working; a stale edit, or a certificate registered to another endpoint, changes nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kms_ws.client import KmsClient, KmsFault
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed

from ..support import db
from ..support.server import ServerProcess
from ..support.signing import Signer, new_key, register_signer

pytestmark = pytest.mark.e2e
TRIES = 6  # more requests than the server has workers: each worker's memory is tried


def _tuples(cert_der: bytes) -> dict[str, Any]:
    return {"CredentialValue": [{"Length": len(cert_der),
                                 "Value": base64.b64encode(cert_der).decode()}]}


def _fresh(name: str) -> tuple[wssecurity.SigningKey, bytes]:
    key = new_key()
    cert = self_signed(key, name)
    return wssecurity.SigningKey(key, cert), cert.public_bytes(serialization.Encoding.DER)


def _works(server: ServerProcess, key: wssecurity.SigningKey, validator) -> None:  # type: ignore[no-untyped-def]
    with KmsClient(server.url, signing_key=key, plugins=[validator]) as c:
        for _ in range(TRIES):
            assert c.create_key().value


def _refused(server: ServerProcess, key: wssecurity.SigningKey, validator) -> set[str]:  # type: ignore[no-untyped-def]
    codes = set()
    with KmsClient(server.url, signing_key=key, plugins=[validator]) as c:
        for _ in range(TRIES):
            with pytest.raises(KmsFault) as err:
                c.create_key()
            codes.add(err.value.error_code)
    return codes


def _stored(server: ServerProcess, endpoint_id: str) -> tuple[Any, ...]:
    certs = db.rows(server.data_dir, "SELECT certificate FROM endpoint_credentials "
                    "WHERE endpoint_id = ?", (endpoint_id,))
    version = db.rows(server.data_dir, "SELECT version FROM endpoints WHERE id = ?",
                      (endpoint_id,))[0][0]
    return tuple(certs), version, db.count(server.data_dir, "keys")


def test_admin_replaces_a_clients_certificate(server: ServerProcess, admin: KmsClient,
                                              validator) -> None:  # type: ignore[no-untyped-def]
    signer: Signer = register_signer(admin)
    _works(server, signer.key, validator)  # every worker has now verified the old one
    doc = admin.admin_get("Client", signer.endpoint_id)
    assert (doc["CredentialType"], doc["CredentialsSet"]) == ("AsymmetricKey", True)
    new_key, new_der = _fresh(signer.name)
    edited = admin.admin_edit("Client", {**doc, "Credentials": _tuples(new_der)})
    assert edited["Version"] == doc["Version"] + 1 and "Credentials" not in edited
    assert _refused(server, signer.key, validator) == {"E_INVALID_CREDENTIALS"}
    _works(server, new_key, validator)
    assert _stored(server, signer.endpoint_id)[0] == ((new_der,),)


def test_bad_or_stale_certificate_edits_change_nothing(server: ServerProcess, admin: KmsClient,
                                                       validator) -> None:  # type: ignore[no-untyped-def]
    signer, other = register_signer(admin), register_signer(admin)
    doc = admin.admin_get("Client", signer.endpoint_id)
    admin.admin_edit("Client", {**doc, "Attributes": {"Attribute": [
        {"Name": "site", "Value": "vault-2"}]}})  # someone else's edit: doc is now stale
    before = _stored(server, signer.endpoint_id)
    other_der = x509.load_pem_x509_certificate(other.cert_pem).public_bytes(
        serialization.Encoding.DER)
    current = admin.admin_get("Client", signer.endpoint_id)
    for bad, code in (
            ({**doc, "Credentials": _tuples(_fresh("x")[1])}, "E_STALE_VERSION"),
            ({**current, "Credentials": _tuples(b"not a certificate")}, "E_INVALID_PARAMETER"),
            ({**current, "Credentials": _tuples(other_der)}, "E_ALREADY_EXISTS")):
        with pytest.raises(KmsFault) as err:
            admin.admin_edit("Client", bad)
        assert err.value.error_code == code
    assert _stored(server, signer.endpoint_id) == before
    _works(server, signer.key, validator)  # the certificate it had still works
    _works(server, other.key, validator)


def test_removed_certificate_signs_for_nothing(server: ServerProcess, admin: KmsClient,
                                               validator) -> None:  # type: ignore[no-untyped-def]
    signer = register_signer(admin)
    _works(server, signer.key, validator)
    doc = admin.admin_get("Client", signer.endpoint_id)
    removed = admin.admin_edit("Client", {**doc, "Credentials": {}})
    assert removed["CredentialsSet"] is False
    assert _refused(server, signer.key, validator) == {"E_INVALID_CREDENTIALS"}
