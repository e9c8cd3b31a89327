"""§4.7.1 Client Credentials: {CREDENTIAL_LENGTH, CREDENTIAL_VALUE} tuples an administrator
sets. A UsernamePassword client's password changes (stored hashed, never returned, old
sessions revoked); anything else is refused precisely and changes nothing."""

from __future__ import annotations

import base64
import uuid

import pytest

from kms_ws.client import KmsClient, KmsFault

from ..conftest import make_client
from ..support import db
from ..support.server import ServerProcess

pytestmark = pytest.mark.e2e


def _tuple(password: str, length: int | None = None) -> dict:
    raw = password.encode("utf-8")
    return {"CredentialValue": [{"Length": len(raw) if length is None else length,
                                 "Value": base64.b64encode(raw).decode()}]}


def _fault(call, code: str = "E_INVALID_PARAMETER") -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KmsFault) as err:
        call()
    assert err.value.error_code == code


def test_admin_changes_a_password_by_credential_tuple(admin: KmsClient, server: ServerProcess,
                                                     principal, validator) -> None:  # type: ignore[no-untyped-def]
    old, cid = principal({"realm://localhost/default": ()})
    name = admin.admin_get("Client", cid)["Name"]
    old.login()  # a session opened with the old password
    assert old.create_key().value
    new_password = f"new-password-{uuid.uuid4().hex}"
    doc = admin.admin_get("Client", cid)
    edited = admin.admin_edit("Client", {**doc, "Credentials": _tuple(new_password)})
    assert "Credentials" not in edited and "Credentials" not in admin.admin_get("Client", cid)
    _fault(old.create_key, "E_INVALID_CREDENTIALS")  # the session is revoked
    with make_client(server.url, name, new_password, validator) as c:
        assert c.create_key().value
    stored = db.rows(server.data_dir, "SELECT password_hash FROM endpoints WHERE id = ?",
                     (cid,))[0][0]
    audit = " ".join(str(r) for r in db.rows(server.data_dir, "SELECT * FROM audit"))
    assert stored.startswith("scrypt$") and new_password not in stored
    assert new_password not in audit
    assert base64.b64encode(new_password.encode()).decode() not in audit


def test_bad_credential_tuples_are_refused_and_change_nothing(
        admin: KmsClient, principal) -> None:  # type: ignore[no-untyped-def]
    original, cid = principal({"realm://localhost/default": ()})
    doc = admin.admin_get("Client", cid)
    for creds in (_tuple("new-secret", length=3),  # CREDENTIAL_LENGTH disagrees
                  {"CredentialValue": _tuple("long-enough")["CredentialValue"] * 2},
                  _tuple("short")):  # below the 8 characters a Password needs
        _fault(lambda c=creds: admin.admin_edit("Client", {**doc, "Credentials": c}))
    _fault(lambda: admin.admin_edit("Client", {**doc, "CredentialType": "SymmetricKey",
                                               "Credentials": _tuple("new-secret")}))
    assert admin.admin_get("Client", cid)["Version"] == doc["Version"]
    _fault(lambda: admin.admin_create("Client", {
        "Name": f"c-{uuid.uuid4().hex[:8]}", "Credentials": _tuple("long-enough")},
        password="pw-long-enough"))
    assert original.create_key().value  # its password was never replaced
