"""§4.7.1 Credential tuples of a SymmetricKey client: an administrator replaces (rotates) or
removes its HMAC secret by a versioned edit. Real HMAC-signed requests show the old secret
failing at once and the new one working; the secret is never shown, logged or audited; a
stale or bad edit is refused and changes nothing."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest

from kms_ws.client import KmsClient, KmsFault, hmac_signing_key

from ..support import db
from ..support.server import ServerProcess
from ..support.signing import register_hmac

pytestmark = pytest.mark.e2e


def _tuples(*values: bytes) -> dict[str, Any]:
    return {"CredentialValue": [{"Length": len(v), "Value": base64.b64encode(v).decode()}
                                for v in values]}


def _signed(server: ServerProcess, name: str, secret: bytes, validator) -> KmsClient:  # type: ignore[no-untyped-def]
    return KmsClient(server.url, signing_key=hmac_signing_key(name, secret), plugins=[validator])


def _refused(c: KmsClient) -> KmsFault:
    with pytest.raises(KmsFault) as err:
        c.create_key()
    return err.value


def _stored(server: ServerProcess, endpoint_id: str) -> tuple[Any, ...]:
    cred = db.rows(server.data_dir, "SELECT sealed_secret FROM endpoint_credentials "
                   "WHERE endpoint_id = ?", (endpoint_id,))
    version = db.rows(server.data_dir, "SELECT version FROM endpoints WHERE id = ?",
                      (endpoint_id,))[0][0]
    return (cred[0][0] if cred else None, version)


def _everything_recorded(server: ServerProcess) -> bytes:
    audit = " ".join(str(r) for r in db.rows(server.data_dir, "SELECT * FROM audit")).encode()
    return audit + (server.data_dir / "kms-ws.log").read_bytes()


@pytest.fixture()
def hmac_client(server: ServerProcess, admin: KmsClient, validator):  # type: ignore[no-untyped-def]
    secret = secrets.token_bytes(32)
    name, _ = register_hmac(admin, secret)
    return name, admin.admin_get("Client", name)["ClientId"], secret


def test_admin_rotates_a_symmetric_secret(server: ServerProcess, admin: KmsClient, validator,
                                          hmac_client) -> None:  # type: ignore[no-untyped-def]
    name, client_id, old = hmac_client
    with _signed(server, name, old, validator) as before:
        assert before.create_key().value
    with _signed(server, name, old, validator) as signer:
        signer.login()  # a session opened with the old secret, used without signing
        session = KmsClient(server.url, plugins=[validator])
        session._addressing.session_token = signer._addressing.session_token
    assert session.create_key().value
    doc = admin.admin_get("Client", client_id)
    assert (doc["CredentialType"], doc["CredentialsSet"]) == ("SymmetricKey", True)
    new = secrets.token_bytes(48)
    edited = admin.admin_edit("Client", {**doc, "Credentials": _tuples(new)})
    assert edited["Version"] == doc["Version"] + 1 and edited["CredentialsSet"] is True
    assert "Credentials" not in edited and "Credentials" not in admin.admin_get("Client",
                                                                                client_id)
    with _signed(server, name, old, validator) as stale:
        assert _refused(stale).error_code == "E_SIGNATURE_INVALID"  # the old secret: at once
    assert _refused(session).error_code == "E_INVALID_CREDENTIALS"  # its session is revoked
    session.close()
    with _signed(server, name, new, validator) as rotated:
        assert rotated.create_key().value
    recorded = _everything_recorded(server)
    for secret in (old, new):
        for form in (secret, base64.b64encode(secret), secret.hex().encode()):
            assert form not in recorded
    sealed, _ = _stored(server, client_id)
    assert new not in sealed and old not in sealed


def test_stale_or_bad_secret_edits_are_refused_and_change_nothing(
        server: ServerProcess, admin: KmsClient, validator, hmac_client) -> None:  # type: ignore[no-untyped-def]
    name, client_id, old = hmac_client
    doc = admin.admin_get("Client", client_id)
    admin.admin_edit("Client", {**doc, "Attributes": {"Attribute": [
        {"Name": "site", "Value": "vault-2"}]}})  # someone else's edit: doc is now stale
    before = _stored(server, client_id)
    for bad, code in (
            ({**doc, "Credentials": _tuples(secrets.token_bytes(32))}, "E_STALE_VERSION"),
            ({**admin.admin_get("Client", client_id),
              "Credentials": _tuples(secrets.token_bytes(16))}, "E_INVALID_PARAMETER"),
            ({**admin.admin_get("Client", client_id),
              "Credentials": _tuples(*[secrets.token_bytes(32)] * 2)}, "E_INVALID_PARAMETER"),
            ({**admin.admin_get("Client", client_id), "Credentials": {"CredentialValue": [
                {"Length": 31, "Value": base64.b64encode(secrets.token_bytes(32)).decode()}]}},
             "E_INVALID_PARAMETER")):
        with pytest.raises(KmsFault) as err:
            admin.admin_edit("Client", bad)
        assert err.value.error_code == code
    assert _stored(server, client_id) == before
    with _signed(server, name, old, validator) as c:
        assert c.create_key().value  # the secret it had still works


def test_removed_secret_authenticates_nothing_until_a_new_one_is_set(
        server: ServerProcess, admin: KmsClient, validator, hmac_client) -> None:  # type: ignore[no-untyped-def]
    name, client_id, old = hmac_client
    doc = admin.admin_get("Client", client_id)
    removed = admin.admin_edit("Client", {**doc, "Credentials": {}})
    assert removed["CredentialsSet"] is False and removed["Version"] == doc["Version"] + 1
    assert _stored(server, client_id)[0] is None
    with _signed(server, name, old, validator) as c:
        assert _refused(c).error_code == "E_INVALID_CREDENTIALS"
    new = secrets.token_bytes(32)
    admin.admin_edit("Client", {**removed, "Credentials": _tuples(new)})
    with _signed(server, name, new, validator) as c:
        assert c.create_key().value
