"""Issue 12.4: administrators stay inside their realms.

An administrator acts on an endpoint (edit, credentials, state, delete, associations,
wrapping values) only with Edit in every realm the endpoint belongs to (Delete to delete
it), grants only rights it holds itself, and never creates a realm by naming it. Every
path that makes or changes an endpoint is tried: RegisterEndpoint, AdminCreate / Edit /
Delete / Associate / Disassociate of Client and Pep, WS-Transfer Create / Put / Delete,
RegisterWrappingValues and the online CLI. Each refusal is a precise fault, changes
nothing and is audited."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from kms_ws.client import KmsClient, KmsFault
from kms_ws.xmlns import KMS, WXF

from ..support import db
from ..support import wsman as W
from ..support.server import ServerProcess, kms
from ..support.validating import post

pytestmark = pytest.mark.e2e

DEFAULT = "realm://localhost/default"
Principal = Callable[..., tuple[KmsClient, str]]


def _name(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _refused(err: pytest.ExceptionInfo[KmsFault], code: str = "E_PERMISSION_DENIED") -> None:
    assert err.value.error_code == code, (err.value.error_code, err.value.reason)
    assert err.value.subcode == {"E_PERMISSION_DENIED": "wsman:AccessDenied",
                                 "E_NOT_FOUND": "kms:NotFound"}[code]


def _audited(admin: KmsClient, actor_id: str, operation: str, code: str) -> None:
    records = admin.admin_audit(client_id=actor_id, max_records=1000)
    assert any(r["Operation"] == operation and r["Event"] == code
               and r["Result"] in ("Denied", "Failed") for r in records), \
        [(r["Operation"], r["Event"]) for r in records]


@dataclass
class Scene:
    """Realm B (the bootstrap administrator's), and in the default realm: administrator D
    (every right in the default realm only) and administrator E (every right in the
    default realm and in B)."""
    b: str
    d: KmsClient
    d_id: str
    e_name: str
    e_password: str
    e_id: str


@pytest.fixture()
def scene(admin: KmsClient, server: ServerProcess, new_realm: Callable[[], str],
          principal: Principal) -> Iterator[Scene]:
    b = new_realm()
    d, d_id = principal({DEFAULT: ()}, administrator=True)
    e_name, e_pw = _name("e"), f"pw-{uuid.uuid4().hex}"
    created = admin.admin_create("Client", {
        "Name": e_name, "Administrator": True, "RealmAssociations": {"RealmAssociation": [
            {"Realm": DEFAULT}, {"Realm": b}]}}, password=e_pw)
    yield Scene(b, d, d_id, e_name, e_pw, created["ClientId"])


def _store(server: ServerProcess) -> dict[str, int]:
    """Row counts of what a refused request must not change (the audit trail grows)."""
    return {**db.snapshot(server.data_dir), "objects": db.count(server.data_dir, "objects"),
            "grants": db.count(server.data_dir, "realm_grants")}


def check_still_works(server: ServerProcess, name: str, password: str) -> None:
    with KmsClient(server.url, name, password) as c:
        assert len(c.get_random_bytes(4)) == 4


# ---- RegisterEndpoint ----------------------------------------------------------------------

def test_register_endpoint_refuses_a_realm_the_administrator_holds_no_right_in(
        admin: KmsClient, server: ServerProcess, scene: Scene) -> None:
    name = _name()
    before = _store(server)
    with pytest.raises(KmsFault) as err:  # on main: registered into B with every right
        scene.d.register_endpoint("Client", name, password="a-long-password", realms=[scene.b])
    _refused(err)
    with pytest.raises(KmsFault) as err:
        scene.d.register_endpoint("Pep", name, realms=[scene.b])
    _refused(err)
    assert _store(server) == before
    with pytest.raises(KmsFault) as gone:
        admin.admin_get("Client", name)
    _refused(gone, "E_NOT_FOUND")
    _audited(admin, scene.d_id, "RegisterEndpoint", "E_PERMISSION_DENIED")


def test_register_endpoint_never_creates_a_realm(admin: KmsClient, scene: Scene) -> None:
    uri = f"realm://example.com/{_name('new')}"
    for kind in ("Client", "Pep"):
        with pytest.raises(KmsFault) as err:  # on main: the realm was created
            scene.d.register_endpoint(kind, _name(), password="a-long-password"
                                      if kind == "Client" else None, realms=[uri])
        _refused(err, "E_NOT_FOUND")
    with pytest.raises(KmsFault) as missing:
        admin.admin_get("Realm", uri)
    _refused(missing, "E_NOT_FOUND")
    _audited(admin, scene.d_id, "RegisterEndpoint", "E_NOT_FOUND")


def test_register_endpoint_grants_only_rights_the_administrator_holds(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    realm = new_realm()
    reader_admin, reader_id = principal({DEFAULT: (), realm: ("Read",)}, administrator=True)
    with pytest.raises(KmsFault) as err:  # on main: the rights named were ignored
        reader_admin.register_endpoint("Pep", _name("pep"), realms={realm: ["Create"]})
    _refused(err)
    with pytest.raises(KmsFault) as err:  # a client: Create needed to put it in the realm
        reader_admin.register_endpoint("Client", _name(), password="a-long-password",
                                       realms={realm: ["Reference"]})
    _refused(err)
    pep = reader_admin.register_endpoint("Pep", _name("pep"), realms=[realm])
    assert admin.admin_get("Pep", pep)["RealmAssociations"] == {"RealmAssociation": [
        {"Realm": realm, "Right": ["Read"]}]}  # its registering administrator's own
    _audited(admin, reader_id, "RegisterEndpoint", "E_PERMISSION_DENIED")
    # with rights of its own it registers, and the rights named are the ones granted
    made = admin.register_endpoint("Client", _name(), password="a-long-password",
                                   realms={realm: ["Reference"]})
    assert admin.admin_get("Client", made)["RealmAssociations"] == {"RealmAssociation": [
        {"Realm": realm, "Right": ["Reference"]}]}


def test_a_client_registers_a_pep_only_where_it_holds_rights(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    mine, other = new_realm(), new_realm()
    client, client_id = principal({mine: ("Reference",)})
    with pytest.raises(KmsFault) as err:
        client.register_endpoint("Pep", _name("pep"), realms=[other])
    _refused(err)
    pep = client.register_endpoint("Pep", _name("pep"), realms=[mine])
    assert admin.admin_get("Pep", pep)["RealmAssociations"] == {"RealmAssociation": [
        {"Realm": mine, "Right": ["Reference"]}]}
    with pytest.raises(KmsFault) as err:  # a PEP gets no more than its client holds
        client.register_endpoint("Pep", _name("pep"), realms={mine: ["Read"]})
    _refused(err)
    _audited(admin, client_id, "RegisterEndpoint", "E_PERMISSION_DENIED")


# ---- acting on an endpoint that is also in a realm the administrator does not hold ------

def test_a_default_realm_administrator_cannot_reset_the_password_of_an_administrator_of_b(
        admin: KmsClient, server: ServerProcess, scene: Scene) -> None:
    doc = scene.d.admin_get("Client", scene.e_id)  # it may read E: they share a realm
    new = b"attacker-chosen-password"
    with pytest.raises(KmsFault) as err:  # on main: E's password was replaced
        scene.d.admin_edit("Client", {**doc, "Credentials": {"CredentialValue": [
            {"Length": len(new), "Value": base64.b64encode(new).decode()}]}})
    _refused(err)
    check_still_works(server, scene.e_name, scene.e_password)
    with pytest.raises(KmsFault):
        KmsClient(server.url, scene.e_name, new.decode()).get_random_bytes(4)
    assert admin.admin_get("Client", scene.e_id)["Version"] == doc["Version"]
    _audited(admin, scene.d_id, "AdminEdit", "E_PERMISSION_DENIED")


@pytest.mark.parametrize("change", ["state", "administrator", "attributes", "remove-credentials"])
def test_no_edit_of_an_endpoint_in_a_realm_the_administrator_cannot_edit(
        admin: KmsClient, server: ServerProcess, scene: Scene, change: str) -> None:
    doc = scene.d.admin_get("Client", scene.e_id)
    before = admin.admin_get("Client", scene.e_id)
    edited = {"state": {"State": "Disabled"}, "administrator": {"Administrator": False},
              "attributes": {"Attributes": {"Attribute": [{"Name": "x", "Value": "y"}]}},
              "remove-credentials": {"Credentials": {}}}[change]
    with pytest.raises(KmsFault) as err:
        scene.d.admin_edit("Client", {**doc, **edited})
    _refused(err)
    assert admin.admin_get("Client", scene.e_id) == before
    check_still_works(server, scene.e_name, scene.e_password)


def test_no_delete_or_association_of_an_endpoint_in_a_realm_the_administrator_lacks(
        admin: KmsClient, server: ServerProcess, scene: Scene,
        new_realm: Callable[[], str]) -> None:
    before = admin.admin_get("Client", scene.e_id)
    with pytest.raises(KmsFault) as err:
        scene.d.admin_delete("Client", scene.e_id)
    _refused(err)
    with pytest.raises(KmsFault) as err:  # not even its rights in D's own realm
        scene.d.admin_associate("Client", scene.e_id, "Realm", DEFAULT, ["Reference"])
    _refused(err)
    with pytest.raises(KmsFault) as err:
        scene.d.admin_disassociate("Client", scene.e_id, "Realm", DEFAULT)
    _refused(err)
    assert admin.admin_get("Client", scene.e_id) == before
    _audited(admin, scene.d_id, "AdminDelete", "E_PERMISSION_DENIED")
    _audited(admin, scene.d_id, "AdminAssociate", "E_PERMISSION_DENIED")
    _audited(admin, scene.d_id, "AdminDisassociate", "E_PERMISSION_DENIED")


def test_no_wrapping_values_for_an_endpoint_in_a_realm_the_administrator_lacks(
        admin: KmsClient, scene: Scene) -> None:
    with pytest.raises(KmsFault) as err:  # on main: D's KEK became E's wrapping key
        scene.d.register_wrapping_values({"attacker-kek": os.urandom(32)},
                                         endpoint_id=scene.e_id)
    _refused(err)
    assert "WrappingKeys" not in admin.admin_get("Client", scene.e_id)
    _audited(admin, scene.d_id, "RegisterWrappingValues", "E_PERMISSION_DENIED")


def test_no_pep_edit_delete_or_client_association_outside_the_administrators_realms(
        admin: KmsClient, scene: Scene, principal: Principal) -> None:
    owner, owner_id = principal({DEFAULT: (), scene.b: ()})
    pep = owner.register_endpoint("Pep", _name("pep"), realms=[DEFAULT, scene.b])
    doc = scene.d.admin_get("Pep", pep)
    with pytest.raises(KmsFault) as err:
        scene.d.admin_edit("Pep", {**doc, "AuthenticationPolicy": "SymmetricKey",
                                   "AuthenticationValues": {"CredentialValue": [
                                       {"Length": 32, "Value": base64.b64encode(
                                           os.urandom(32)).decode()}]}})
    _refused(err)
    _, mine = principal({DEFAULT: ()})
    with pytest.raises(KmsFault) as err:  # D's client would act for the PEP
        scene.d.admin_associate("Pep", pep, "Client", mine)
    _refused(err)
    with pytest.raises(KmsFault) as err:
        scene.d.admin_delete("Pep", pep)
    _refused(err)
    assert admin.admin_get("Pep", pep) == doc


def test_an_administrator_with_edit_everywhere_may_act(
        admin: KmsClient, server: ServerProcess, scene: Scene) -> None:
    """The rule is Edit in every realm, not ownership: the bootstrap administrator holds
    every right in the default realm and in B."""
    doc = admin.admin_get("Client", scene.e_id)
    new = b"a-new-long-password"
    admin.admin_edit("Client", {**doc, "Credentials": {"CredentialValue": [
        {"Length": len(new), "Value": base64.b64encode(new).decode()}]}})
    check_still_works(server, scene.e_name, new.decode())


# ---- AdminCreate and WS-Transfer ------------------------------------------------------------

def test_admin_create_refuses_grants_outside_the_administrators_rights(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    realm = new_realm()
    reader_admin, reader_id = principal({DEFAULT: (), realm: ("Edit",)}, administrator=True)
    name = _name()
    with pytest.raises(KmsFault) as err:
        reader_admin.admin_create("Client", {"Name": name, "RealmAssociations": {
            "RealmAssociation": [{"Realm": realm, "Right": ["Reference"]}]}},
            password="a-long-password")
    _refused(err)
    with pytest.raises(KmsFault) as err:
        reader_admin.admin_create("Client", {"Name": name, "RealmAssociations": {
            "RealmAssociation": [{"Realm": f"realm://example.com/{_name('none')}"}]}},
            password="a-long-password")
    _refused(err, "E_NOT_FOUND")
    _audited(admin, reader_id, "AdminCreate", "E_PERMISSION_DENIED")


def _transfer(server: ServerProcess, user: tuple[str, str], verb: str, resource: str,
              body: str = "", selectors: dict[str, str] | None = None) -> etree._Element:
    _, env = post(server.url, W.request(f"{WXF}/{verb}", body, resource=resource,
                                        selectors=selectors), auth=user)
    assert env is not None
    return env


def test_ws_transfer_put_and_delete_of_an_endpoint_outside_the_administrators_realms(
        admin: KmsClient, server: ServerProcess, scene: Scene, principal: Principal) -> None:
    d_name, d_pw = _name("d"), f"pw-{uuid.uuid4().hex}"
    d_id = admin.admin_create("Client", {"Name": d_name, "Administrator": True,
                                         "RealmAssociations": {"RealmAssociation": [
                                             {"Realm": DEFAULT}]}}, password=d_pw)["ClientId"]
    sel = {"ClientId": scene.e_id}
    got = _transfer(server, (d_name, d_pw), "Get", W.CLIENT_URI, selectors=sel)
    client_el = got.find(f".//{{{KMS}}}Client")
    assert client_el is not None
    client_el.find(f"{{{KMS}}}State").text = "Disabled"  # type: ignore[union-attr]
    put = _transfer(server, (d_name, d_pw), "Put", W.CLIENT_URI,
                    etree.tostring(client_el).decode(), sel)
    assert put.findtext(f".//{{{KMS}}}ErrorCode") == "E_PERMISSION_DENIED"
    deleted = _transfer(server, (d_name, d_pw), "Delete", W.CLIENT_URI, selectors=sel)
    assert deleted.findtext(f".//{{{KMS}}}ErrorCode") == "E_PERMISSION_DENIED"
    new = (f'<kms:Client xmlns:kms="{KMS}"><kms:Name>{_name()}</kms:Name>'
           f"<kms:RealmAssociations><kms:RealmAssociation><kms:Realm>{scene.b}</kms:Realm>"
           "</kms:RealmAssociation></kms:RealmAssociations></kms:Client>")
    created = _transfer(server, (d_name, d_pw), "Create", W.CLIENT_URI, new)
    assert created.findtext(f".//{{{KMS}}}ErrorCode") in ("E_PERMISSION_DENIED",
                                                          "E_INVALID_PARAMETER")
    assert admin.admin_get("Client", scene.e_id)["State"] == "Active"
    _audited(admin, d_id, "Transfer.Put", "E_PERMISSION_DENIED")
    _audited(admin, d_id, "Transfer.Delete", "E_PERMISSION_DENIED")


# ---- the online CLI ---------------------------------------------------------------------------

def test_the_online_cli_gets_one_clear_line(admin: KmsClient, server: ServerProcess,
                                            scene: Scene, tmp_path: Path) -> None:
    d_name, d_pw = _name("d"), f"pw-{uuid.uuid4().hex}"
    admin.admin_create("Client", {"Name": d_name, "Administrator": True,
                                  "RealmAssociations": {"RealmAssociation": [
                                      {"Realm": DEFAULT}]}}, password=d_pw)
    secret = tmp_path / "pw.txt"
    secret.write_text("attacker-chosen-password\n")
    common = ("--url", server.url, "--user", d_name, "--password-stdin")
    for args in (("admin", "client", "edit", scene.e_id, "--credential-file", str(secret)),
                 ("admin", "client", "edit", scene.e_id, "--state", "Disabled"),
                 ("admin", "client", "delete", scene.e_id),
                 ("admin", "client", "add", _name(), "--realm", scene.b,
                  "--client-password-stdin")):
        out = kms(*args, *common, stdin=f"{d_pw}\na-long-password\n", check=False)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
        assert "E_PERMISSION_DENIED" in out.stderr
    check_still_works(server, scene.e_name, scene.e_password)
