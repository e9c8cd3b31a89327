"""The administration the command line lacked (issue 16.6), end to end on a real server
and data directory: `admin pep add`, `admin key add`, the offline `client edit` that lets
a locked-out sole administrator back in, and `--right` offered only where it applies."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kms_ws.client import KmsClient, KmsFault
from kms_ws.config import load
from kms_ws.service.operator import OPERATOR_ID, OPERATOR_NAME
from kms_ws.store.engine import Database

from ..support.server import ADMIN, ServerProcess, kms, running_server

pytestmark = pytest.mark.e2e


def _admin(server: ServerProcess, *args: str, password: str = ADMIN[1], stdin: str = "",
           check: bool = True):  # type: ignore[no-untyped-def]
    return kms(*args, "--url", server.url, "--user", ADMIN[0], "--password-stdin",
               stdin=password + "\n" + stdin, check=check)


def _peps(admin: KmsClient) -> list[str]:
    return sorted(p["Name"] for p in admin.admin_list("Pep", max_items=1000)[0])


def test_admin_pep_add_makes_a_pep_its_client_gets_keys_for(
        server: ServerProcess, admin: KmsClient, client_factory) -> None:  # type: ignore[no-untyped-def]
    bob, bob_name, _ = client_factory()
    name = f"pep-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC) - timedelta(seconds=5)
    made = json.loads(_admin(server, "admin", "pep", "add", name, "--client", bob_name,
                             "--attribute", "pep://example.com/tapes/serial=42").stdout)
    pep_id = made["PepId"]
    bob_id = admin.admin_get("Client", bob_name)["ClientId"]
    assert made["ClientAssociations"] == {"Id": [bob_id]}
    assert made["AuthenticationPolicy"] == "None" and made["AuthenticationValuesSet"] is False
    shown = admin.admin_get("Pep", pep_id)
    assert shown["Name"] == name and shown["Attributes"]["Attribute"] == [
        {"Name": "pep://example.com/tapes/serial", "Value": "42"}]
    key = bob.create_key(friendly_name=f"for-{name}", pep_id=pep_id)  # bob acts for it
    assert bob.get_key(key.key_id, pep_id=pep_id).value == key.value
    audit = admin.admin_audit(since=since, max_records=1000)
    assert any(r["Operation"] == "AdminCreate" and r["Result"] == "Success"
               and r["ActorName"] == ADMIN[0] and pep_id in (r.get("Message") or "")
               for r in audit), audit


def test_admin_pep_add_with_a_secret_sets_its_authentication(
        server: ServerProcess, admin: KmsClient, client_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bob_name, _ = client_factory()
    secret = tmp_path / "pep-secret.bin"
    secret.write_bytes(secrets.token_bytes(32))
    name = f"pep-{uuid.uuid4().hex[:8]}"
    made = json.loads(_admin(server, "admin", "pep", "add", name, "--client", bob_name,
                             "--authentication-policy", "SymmetricKey",
                             "--authentication-values-file", str(secret)).stdout)
    assert made["AuthenticationPolicy"] == "SymmetricKey"
    assert made["AuthenticationValuesSet"] is True
    assert secret.read_bytes().hex() not in json.dumps(made)


def test_admin_pep_add_bad_input_changes_nothing(
        server: ServerProcess, admin: KmsClient, client_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bob_name, _ = client_factory()
    taken = f"pep-{uuid.uuid4().hex[:8]}"
    _admin(server, "admin", "pep", "add", taken, "--client", bob_name)
    short = tmp_path / "short.bin"
    short.write_bytes(b"too short")
    before = _peps(admin)
    for args, message in (
            (("--client", "nobody-at-all"), "kms:NotFound: no Client named 'nobody-at-all'"),
            (("--client", bob_name, "--authentication-policy", "SymmetricKey"),
             "needs its --authentication-values-file"),
            (("--client", bob_name, "--authentication-values-file", str(short)),
             "goes with --authentication-policy"),
            (("--client", bob_name, "--authentication-policy", "SymmetricKey",
              "--authentication-values-file", str(short)), "wsman:InvalidParameter"),
            (("--client", bob_name, "--attribute", "serial=42"), "SchemaValidationError")):
        r = _admin(server, "admin", "pep", "add", f"pep-{uuid.uuid4().hex[:8]}", *args,
                   check=False)
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    again = _admin(server, "admin", "pep", "add", taken, "--client", bob_name, check=False)
    assert again.returncode == 1 and "wsman:AlreadyExists" in again.stderr
    no_client = _admin(server, "admin", "pep", "add", "x", check=False)
    assert no_client.returncode == 2 and "--client" in no_client.stderr
    assert _peps(admin) == before


def test_admin_key_add_stores_a_value_the_administrator_reads_back(
        server: ServerProcess, admin: KmsClient) -> None:
    value = secrets.token_bytes(32)
    name = f"k-{uuid.uuid4().hex[:8]}"
    key_id = _admin(server, "admin", "key", "add", "--hex", value.hex(), "--name", name,
                    "--attribute", "site=lab", "--description", "escrowed by hand").stdout.strip()
    got = admin.get_key(key_id)
    assert got.value == value and got.friendly_name == name
    shown = admin.admin_get("Key", key_id)
    assert shown["Description"] == "escrowed by hand"
    assert shown["AttributeAssociations"]["Attribute"] == [{"Name": "site", "Value": "lab"}]
    assert shown["Source"]["Kind"] == "Client"
    for args, status, message in ((("--hex", "zz"), 1, "the key is not hex"),
                                  ((), 2, "one of the arguments --hex --value-stdin"),
                                  (("--hex", "00" * 3), 1, "wsman:InvalidParameter")):
        r = _admin(server, "admin", "key", "add", *args, "--name", name + "-bad", check=False)
        assert r.returncode == status and message in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    with pytest.raises(KmsFault):
        admin.get_key(friendly_name=name + "-bad")


def _audit(data: Path) -> list[dict]:  # type: ignore[type-arg]
    db = Database(load(data).db_url)
    try:
        with db.unit_of_work() as uow:
            return list(reversed(uow.audit.audit_records(limit=1000)))
    finally:
        db.dispose()


def test_offline_client_edit_lets_a_locked_out_sole_administrator_back_in(
        tmp_path: Path) -> None:
    """The only administrator locks itself out with wrong passwords; on the data directory,
    with the server running, the operator gives it a new password and unlocks it. Audited
    as the operator, the chain intact."""
    data = tmp_path / "data"
    with running_server(data, security={"lock_after_failed_authentications": 3,
                                         "lockout_seconds": 0}) as srv:
        for _ in range(3):
            with KmsClient(srv.url, ADMIN[0], "wrong-password") as c, \
                    pytest.raises(KmsFault):
                c.authenticate("Validate")
        with KmsClient(srv.url, *ADMIN) as c, pytest.raises(KmsFault):
            c.authenticate("Validate")  # locked: the right password no longer opens it
        r = kms("client", "edit", ADMIN[0], "--password-stdin", "--state", "Active",
                "--data-dir", str(data), stdin="a-new-admin-password\n")
        shown = json.loads(r.stdout)
        assert shown["State"] == "Active" and shown["Administrator"] == "true"
        with KmsClient(srv.url, ADMIN[0], "a-new-admin-password") as c:
            assert c.authenticate("Validate")
            assert c.get_random_bytes(8)
        with KmsClient(srv.url, *ADMIN) as c, pytest.raises(KmsFault):
            c.authenticate("Validate")  # the old password is gone
        granted = kms("client", "edit", ADMIN[0], "--realm", "realm://example.com/vault",
                      "--right", "Read", "--data-dir", str(data))
        assert {"Realm": "realm://example.com/vault", "Right": ["Read"]} in \
            json.loads(granted.stdout)["RealmAssociations"]["RealmAssociation"]
    records = [(r["actor_id"], r["actor_name"], r["operation"], r["result"])
               for r in _audit(data) if r["actor_id"] == OPERATOR_ID]
    assert (OPERATOR_ID, OPERATOR_NAME, "AdminEdit", "Success") in records
    assert (OPERATOR_ID, OPERATOR_NAME, "AdminAssociate", "Success") in records
    assert kms("audit", "verify", "--data-dir", str(data)).stdout.startswith(
        "audit chain intact")


def test_offline_client_edit_bad_input(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kms("client", "add", "root", "--admin", "--password-stdin", "--data-dir", str(data),
        stdin="root-password-1\n")
    before = kms("client", "list", "--data-dir", str(data)).stdout
    for args, stdin, message in (
            (("nobody", "--state", "Active"), None, "kms-ws: no client named 'nobody'"),
            (("root",), None, "kms-ws: nothing to change"),
            (("root", "--right", "Read"), None, "kms-ws: --right goes with --realm"),
            (("root", "--password-stdin"), "short\n", "at least 8 characters"),
            (("root", "--realm", "not-a-realm"), None, "realm"),
    ):
        r = kms("client", "edit", *args, "--data-dir", str(data), stdin=stdin, check=False)
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert kms("client", "list", "--data-dir", str(data)).stdout == before


@pytest.mark.parametrize(("command", "offered"), [
    ("admin client add", True), ("admin pep add", True), ("admin client associate", True),
    ("admin pep associate", True), ("client add", True), ("client edit", True),
    ("admin template add", False), ("admin realm add", False),
    ("admin retention-policy add", False), ("admin key associate", False),
    ("admin template associate", False), ("admin key add", False),
])
def test_right_is_offered_only_where_it_applies(command: str, offered: bool) -> None:
    assert ("--right" in kms(*command.split(), "--help").stdout) is offered
