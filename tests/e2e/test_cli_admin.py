"""`kms-ws admin ...` as an administrator drives it, and `client add --realm --right`."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest

from kms_ws.cli_admin import KINDS
from kms_ws.client import KmsClient, KmsFault, hmac_signing_key

from ..support.server import ADMIN, ServerProcess, kms

pytestmark = pytest.mark.e2e


def _admin(server: ServerProcess, *args: str, stdin: str = ADMIN[1] + "\n", check: bool = True):  # type: ignore[no-untyped-def]
    return kms("admin", *args, "--url", server.url, "--user", ADMIN[0], "--password-stdin",
               stdin=stdin, check=check)


def test_admin_help_covers_every_object() -> None:
    out = kms("admin", "--help").stdout
    for name in (*KINDS, "audit", "bindings"):
        assert name in out
    for name, (kind, _) in KINDS.items():
        actions = kms("admin", name, "--help").stdout
        for action in ("show", "list", "edit", "delete", "associate", "disassociate"):
            assert action in actions, (name, action)
        if kind not in ("Key", "Pep"):  # keys come from CreateKey/StoreKey, PEPs register
            assert "add" in actions


def test_realm_client_rights_policy_and_stale_edit(server: ServerProcess) -> None:
    realm = f"realm://example.com/cli-{uuid.uuid4().hex[:8]}"
    assert json.loads(_admin(server, "realm", "add", realm, "--description",
                             "tapes").stdout)["RealmId"] == realm
    name = f"cli-{uuid.uuid4().hex[:8]}"
    client = json.loads(_admin(server, "client", "add", name, "--realm", realm, "--right", "Read",
                               "--client-password-stdin",
                               stdin=f"{ADMIN[1]}\nclient-password-1\n").stdout)
    assert client["RealmAssociations"]["RealmAssociation"] == [{"Realm": realm,
                                                               "Right": ["Read"]}]
    policy = json.loads(_admin(server, "retention-policy", "add", f"r-{name}",
                               "--expire-after", "P90D", "--realm", realm).stdout)
    edited = json.loads(_admin(server, "retention-policy", "edit", policy["PolicyId"],
                               "--disable-after", "P1Y").stdout)
    assert edited["Version"] == 2 and edited["TDisable"] == "P1Y"
    stale = _admin(server, "retention-policy", "edit", policy["PolicyId"], "--disable-after",
                   "P2Y", "--version", "1", check=False)
    assert stale.returncode == 1 and "E_STALE_VERSION" in stale.stderr
    shown = json.loads(_admin(server, "retention-policy", "show", f"r-{name}").stdout)
    assert shown["Version"] == 2
    bad = _admin(server, "realm", "add", "realm://-bad-.com/x", check=False)
    assert bad.returncode == 1 and "SchemaValidationError" in bad.stderr
    audit = json.loads(_admin(server, "audit", "--max", "1000").stdout)
    assert any(r.get("Message", "").startswith("RetentionPolicy") for r in audit)


def test_offline_client_add_with_rights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = str(tmp_path / "d")
    kms("init", "--data-dir", d)
    kms("client", "add", "reader", "--realm", "realm://example.com/a", "--right", "Read",
        "--right", "Reference", "--password-stdin", "--data-dir", d, stdin="reader-pass-1\n")
    bad = kms("client", "add", "x", "--realm", "realm://no/", "--password-stdin",
              "--data-dir", d, stdin="reader-pass-1\n", check=False)
    assert bad.returncode != 0 and "realm URI" in bad.stderr
    listing = kms("client", "list", "--data-dir", d).stdout
    assert "reader  realm://example.com/a(Read,Reference)" in listing


def test_cli_rotates_a_client_secret_and_sets_a_peps_authentication(
        server: ServerProcess, admin, tmp_path) -> None:  # type: ignore[no-untyped-def]


    name, old = f"cli-hmac-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32)
    admin.register_endpoint("Client", name, symmetric_key=old)
    new_file = tmp_path / "secret.bin"
    new_file.write_bytes(secrets.token_bytes(32))
    new_file.chmod(0o600)
    out = _admin(server, "client", "edit", name, "--credential-file", str(new_file)).stdout
    assert json.loads(out)["CredentialsSet"] is True
    assert new_file.read_bytes().hex() not in out and "Credentials\"" not in out
    with KmsClient(server.url, signing_key=hmac_signing_key(name, old)) as c, \
            pytest.raises(KmsFault):
        c.create_key()
    with KmsClient(server.url, signing_key=hmac_signing_key(name, new_file.read_bytes())) as c:
        assert c.create_key().value
        pep = c.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}")
    pep_doc = json.loads(_admin(server, "pep", "edit", pep, "--authentication-policy",
                                "SymmetricKey", "--authentication-values-file",
                                str(new_file)).stdout)
    assert (pep_doc["AuthenticationPolicy"], pep_doc["AuthenticationValuesSet"]) == \
        ("SymmetricKey", True)
    pep_doc = json.loads(_admin(server, "pep", "edit", pep,
                                "--remove-authentication-values").stdout)
    assert pep_doc["AuthenticationValuesSet"] is False
    removed = json.loads(_admin(server, "client", "edit", name, "--remove-credentials").stdout)
    assert removed["CredentialsSet"] is False
