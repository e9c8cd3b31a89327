"""Issue 12.1: a new key goes into the realms its creator names, or its creator's one
default realm — never into every realm where the creator may create.

The attacks: a client with Create in two realms shares every key it makes with the
Reference holders of both; an administrator who added a realm shares every key it makes
with that realm's members. Each refusal is a precise fault, creates nothing and is
audited."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable

import pytest
from lxml import etree

from kms_ws.client import KmsClient, KmsFault
from kms_ws.xmlns import KMS, WSMAN, WXF

from ..support import wsman as W
from ..support.envelopes import envelope
from ..support.server import ADMIN, ServerProcess, kms
from ..support.validating import post

pytestmark = pytest.mark.e2e

DEFAULT = "realm://localhost/default"
Principal = Callable[..., tuple[KmsClient, str]]


def _name() -> str:
    return f"k-{uuid.uuid4().hex[:12]}"


def _not_found(client: KmsClient, key_id: str) -> None:
    with pytest.raises(KmsFault) as err:
        client.get_key(key_id)
    assert err.value.error_code == "E_KEY_NOT_FOUND"


def _named_nowhere(admin: KmsClient, name: str) -> None:
    """No key of that friendly name exists (the bootstrap administrator reads every realm
    the tests make)."""
    keys, _ = admin.find_keys({"kms-test-name": name})
    assert keys == []
    with pytest.raises(KmsFault) as err:
        admin.get_key(friendly_name=name)
    assert err.value.error_code == "E_KEY_NOT_FOUND"


def _audited(admin: KmsClient, actor_id: str, operation: str, error_code: str) -> None:
    records = admin.admin_audit(client_id=actor_id)
    assert any(r["Operation"] == operation and r["Event"] == error_code
               and r["Result"] in ("Denied", "Failed") for r in records), records


# ---- the attacks (each failed on main: the key was delivered) ----------------------------

def test_an_hr_reference_client_does_not_receive_a_key_of_a_creator_also_in_hr(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    hr = new_realm()
    creator, _ = principal({DEFAULT: (), hr: ()})  # may create in both; the default is its own
    hr_reader, _ = principal({hr: ("Reference",)})
    key = creator.create_key(friendly_name=_name())
    stored = creator.store_key(os.urandom(32), friendly_name=_name())
    _not_found(hr_reader, key.key_id)
    _not_found(hr_reader, stored)
    assert key.realms == [DEFAULT] and creator.get_key(stored).realms == [DEFAULT]


def test_an_administrator_who_added_a_realm_does_not_share_its_keys_with_it(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    added = new_realm()  # the administrator now holds every right in it
    member, _ = principal({added: ("Reference",)})
    key = admin.create_key(friendly_name=_name())
    _not_found(member, key.key_id)
    assert key.realms == [DEFAULT]


def test_a_creator_with_several_create_realms_and_no_default_must_name_them(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    fin, hr = new_realm(), new_realm()
    creator, creator_id = principal({fin: (), hr: ()})
    name = _name()
    for make in (lambda: creator.create_key(friendly_name=name,
                                            attributes={"kms-test-name": name}),
                 lambda: creator.store_key(os.urandom(32), friendly_name=name,
                                           attributes={"kms-test-name": name})):
        with pytest.raises(KmsFault) as err:
            make()
        assert err.value.subcode == "wsman:InvalidParameter"
        assert "RealmAssociations" in err.value.reason
        assert fin in err.value.reason and hr in err.value.reason
    _named_nowhere(admin, name)
    _audited(admin, creator_id, "CreateKey", "E_INVALID_PARAMETER")
    _audited(admin, creator_id, "StoreKey", "E_INVALID_PARAMETER")


# ---- naming the realms -------------------------------------------------------------------

def test_a_key_goes_into_exactly_the_realms_named(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    fin, hr = new_realm(), new_realm()
    creator, _ = principal({fin: (), hr: ()})
    # Read: the value delivered to the caller itself (Reference alone is use, not view)
    fin_reader, _ = principal({fin: ("Read",)})
    hr_reader, _ = principal({hr: ("Read",)})
    in_fin = creator.create_key(friendly_name=_name(), realms=[fin])
    assert in_fin.realms == [fin]
    assert fin_reader.get_key(in_fin.key_id).value == in_fin.value
    _not_found(hr_reader, in_fin.key_id)
    both = creator.create_key(friendly_name=_name(), realms=[hr, fin])  # shared on purpose
    assert sorted(both.realms) == sorted([fin, hr])
    assert hr_reader.get_key(both.key_id).value == both.value
    value = os.urandom(32)
    stored = creator.store_key(value, friendly_name=_name(), realms=[hr])
    assert hr_reader.get_key(stored).value == value
    _not_found(fin_reader, stored)


def test_a_realm_named_without_the_create_right_is_refused_and_nothing_is_made(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    fin, hr, elsewhere = new_realm(), new_realm(), new_realm()
    creator, creator_id = principal({fin: (), hr: ("Read",)})
    name = _name()
    for realms in ([hr], [fin, hr], [elsewhere], ["realm://example.com/no-such-realm"]):
        for make in (lambda realms=realms: creator.create_key(
                         friendly_name=name, realms=realms, attributes={"kms-test-name": name}),
                     lambda realms=realms: creator.store_key(
                         os.urandom(32), friendly_name=name, realms=realms,
                         attributes={"kms-test-name": name})):
            with pytest.raises(KmsFault) as err:
                make()
            assert err.value.subcode == "wsman:AccessDenied"
            assert err.value.error_code == "E_PERMISSION_DENIED"
            assert "Create" in err.value.reason
    _named_nowhere(admin, name)
    _audited(admin, creator_id, "CreateKey", "E_PERMISSION_DENIED")
    _audited(admin, creator_id, "StoreKey", "E_PERMISSION_DENIED")
    # a realm where it holds nothing answers as one that does not exist: no oracle
    with pytest.raises(KmsFault) as real:
        creator.create_key(realms=[elsewhere])
    with pytest.raises(KmsFault) as unknown:
        creator.create_key(realms=["realm://example.com/no-such-realm"])
    assert real.value.reason.replace(elsewhere, "R") == \
        unknown.value.reason.replace("realm://example.com/no-such-realm", "R")


def test_realm_associations_of_a_key_carry_no_rights(
        admin: KmsClient, server: ServerProcess) -> None:
    """Rights belong to endpoints' associations; a key is only *in* realms."""
    body = (f'<kms:CreateKey xmlns:kms="{KMS}"><kms:RealmAssociations><kms:RealmAssociation>'
            f"<kms:Realm>{DEFAULT}</kms:Realm><kms:Right>Reference</kms:Right>"
            "</kms:RealmAssociation></kms:RealmAssociations></kms:CreateKey>")
    _, env = post(server.url, envelope(body, op="CreateKey"), auth=ADMIN)
    assert env is not None
    assert env.findtext(f".//{{{KMS}}}ErrorCode") == "E_INVALID_PARAMETER"


# ---- templates ---------------------------------------------------------------------------

def test_a_template_in_two_realms_does_not_spread_its_keys_over_both(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    fin, hr = new_realm(), new_realm()
    tpl = admin.admin_create("KeyTemplate", {
        "FriendlyName": _name(), "CipherType": "2.16.840.1.101.3.4.1.46", "KeyLength": 256,
        "RealmAssociations": {"RealmAssociation": [{"Realm": fin}, {"Realm": hr}]}})
    creator, _ = principal({fin: (), hr: ()})
    hr_reader, _ = principal({hr: ("Reference",)})
    with pytest.raises(KmsFault) as err:  # two candidates, no default: name one
        creator.create_key(template=tpl["TemplateId"])
    assert err.value.subcode == "wsman:InvalidParameter"
    key = creator.create_key(template=tpl["TemplateId"], realms=[fin])
    assert key.realms == [fin]
    _not_found(hr_reader, key.key_id)
    # one candidate (the template's realms where the caller may create): no need to name it
    fin_only, _ = principal({fin: (), hr: ("Reference",)})
    assert fin_only.create_key(template=tpl["TemplateId"]).realms == [fin]


def test_a_template_bounds_the_realms_of_its_keys(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    fin, hr = new_realm(), new_realm()
    tpl = admin.admin_create("KeyTemplate", {
        "FriendlyName": _name(), "CipherType": "2.16.840.1.101.3.4.1.46", "KeyLength": 256,
        "RealmAssociations": {"RealmAssociation": [{"Realm": fin}]}})
    creator, creator_id = principal({fin: (), hr: ()})
    with pytest.raises(KmsFault) as err:
        creator.create_key(template=tpl["TemplateId"], realms=[fin, hr])
    assert err.value.subcode == "wsman:InvalidParameter" and hr in err.value.reason
    _audited(admin, creator_id, "CreateKey", "E_INVALID_PARAMETER")


# ---- WS-Transfer Create of a key ---------------------------------------------------------

def _transfer_create(server: ServerProcess, user: tuple[str, str], realms: list[str]) -> \
        etree._Element:
    assoc = "".join(f"<kms:RealmAssociation><kms:Realm>{r}</kms:Realm></kms:RealmAssociation>"
                    for r in realms)
    body = (f"<kms:CreateKey><kms:FriendlyName>{_name()}</kms:FriendlyName>"
            + (f"<kms:RealmAssociations>{assoc}</kms:RealmAssociations>" if realms else "")
            + "</kms:CreateKey>")
    _, env = post(server.url, W.request(f"{WXF}/Create", body), auth=user)
    assert env is not None
    return env


def test_ws_transfer_create_of_a_key_takes_the_realms_named(
        admin: KmsClient, server: ServerProcess, new_realm: Callable[[], str],
        principal: Principal) -> None:
    fin, hr = new_realm(), new_realm()
    name, pw = f"p-{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    admin.admin_create("Client", {"Name": name, "RealmAssociations": {"RealmAssociation": [
        {"Realm": fin}, {"Realm": hr}]}}, password=pw)
    hr_reader, _ = principal({hr: ("Reference",)})
    refused = _transfer_create(server, (name, pw), [])
    assert refused.findtext(f".//{{{KMS}}}ErrorCode") == "E_INVALID_PARAMETER"
    made = _transfer_create(server, (name, pw), [fin])
    key_id = made.findtext(f".//{{{WSMAN}}}Selector")
    assert key_id
    _not_found(hr_reader, key_id)
    assert admin.admin_get("Key", key_id)["RealmAssociations"] == {
        "RealmAssociation": [{"Realm": fin}]}
    denied = _transfer_create(server, (name, pw), [new_realm()])
    assert denied.findtext(f".//{{{KMS}}}ErrorCode") == "E_PERMISSION_DENIED"


def test_the_cli_names_the_realms(admin: KmsClient, server: ServerProcess,
                                  new_realm: Callable[[], str], principal: Principal) -> None:
    fin, hr = new_realm(), new_realm()
    name, pw = f"p-{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    admin.admin_create("Client", {"Name": name, "RealmAssociations": {"RealmAssociation": [
        {"Realm": fin}, {"Realm": hr}]}}, password=pw)
    common = ("--url", server.url, "--user", name, "--password-stdin")
    out = kms("create-key", *common, "--realm", fin, stdin=pw + "\n")
    assert f'"{fin}"' in out.stdout and hr not in out.stdout
    value = base64.b64encode(os.urandom(32)).decode()
    stored = kms("store-key", *common, "--value-stdin", "--realm", hr,
                 stdin=f"{pw}\n{value}\n").stdout.strip()
    assert admin.get_key(stored).realms == [hr]
    failed = kms("create-key", *common, stdin=pw + "\n", check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.count("\n") == 1 and fin in failed.stderr and hr in failed.stderr


# ---- GetKey by data through a key-assignment policy ----------------------------------------

def _policy(admin: KmsClient, pool: str, realm: str, **extra: str) -> dict:  # type: ignore[type-arg]
    """A Shared key-assignment policy for data sets pool=POOL, applying (Enforcing) in
    `realm`."""
    p = admin.admin_create("KeyAssignmentPolicy", {
        "Name": _name(), "Condition": [{"Name": "pool", "Value": pool}],
        "Generation": "Shared", **extra,
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    admin.admin_associate("KeyAssignmentPolicy", p["PolicyId"], "Realm", realm)
    current = admin.admin_get("KeyAssignmentPolicy", p["PolicyId"])
    return admin.admin_edit("KeyAssignmentPolicy", {**current, "State": "Enforcing"})


def _realms_of(admin: KmsClient, key_id: str) -> list[str]:
    return sorted(r["Realm"] for r in
                  admin.admin_get("Key", key_id)["RealmAssociations"]["RealmAssociation"])


def test_a_pool_key_is_never_handed_to_a_caller_outside_its_realms(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    """The policy's keys go into its realms, chosen by administrators, not by the caller;
    but a pool key made while the policy applied in FIN only was handed, on main, to an
    HR caller once the policy was extended to HR."""
    fin, hr = new_realm(), new_realm()
    pool = _name()
    policy = _policy(admin, pool, fin)
    fin_user, _ = principal({fin: ()})
    hr_user, _ = principal({hr: ("Read",)})
    first = fin_user.get_key(datasets=[("pool", pool)], usage="Encrypt")
    assert _realms_of(admin, first.key_id) == [fin]
    admin.admin_associate("KeyAssignmentPolicy", policy["PolicyId"], "Realm", hr)
    got = hr_user.get_key(datasets=[("pool", pool)], usage="Encrypt")
    assert got.key_id != first.key_id and got.value != first.value
    _not_found(hr_user, first.key_id)
    assert _realms_of(admin, got.key_id) == sorted([fin, hr])  # the policy's realms now
    assert fin_user.get_key(datasets=[("pool", pool)], usage="Encrypt").key_id == got.key_id


def test_a_policys_template_never_puts_a_callers_new_key_in_realms_it_cannot_use(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    """New keys go into the policy's realms within its template's; a policy whose keys
    would land where the caller holds no right refuses rather than hand one over (main
    replaced the policy's realms by the template's). A Reference-only caller suffices:
    the caller's own grants never decide where the key goes."""
    fin, hr = new_realm(), new_realm()
    tpl = admin.admin_create("KeyTemplate", {
        "FriendlyName": _name(), "CipherType": "2.16.840.1.101.3.4.1.46", "KeyLength": 256,
        "RealmAssociations": {"RealmAssociation": [{"Realm": fin}]}})
    pool = _name()
    policy = _policy(admin, pool, hr, TemplateId=tpl["TemplateId"])
    admin.admin_associate("KeyAssignmentPolicy", policy["PolicyId"], "Realm", fin)
    hr_user, hr_id = principal({hr: ("Reference",)})
    with pytest.raises(KmsFault) as err:
        hr_user.get_key(datasets=[("pool", pool)], usage="Encrypt")
    assert err.value.subcode == "wsman:InvalidParameter" and fin in err.value.reason
    _audited(admin, hr_id, "GetKey", "E_INVALID_PARAMETER")
    fin_user, _ = principal({fin: ("Read",)})  # Read: the value comes to the caller
    made = fin_user.get_key(datasets=[("pool", pool)], usage="Encrypt")
    _not_found(hr_user, made.key_id)
    assert _realms_of(admin, made.key_id) == [fin]  # the policy's realms within the template's


def test_applying_a_key_assignment_policy_in_a_realm_needs_create_there(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    """Its keys will be made in that realm: the right that puts a key there."""
    mine, theirs = new_realm(), new_realm()
    editor, editor_id = principal({mine: (), theirs: ("Edit",)}, administrator=True)
    policy = editor.admin_create("KeyAssignmentPolicy", {
        "Name": _name(), "Condition": [{"Name": "pool", "Value": _name()}],
        "Generation": "Shared"})
    with pytest.raises(KmsFault) as err:
        editor.admin_associate("KeyAssignmentPolicy", policy["PolicyId"], "Realm", theirs)
    assert err.value.error_code == "E_PERMISSION_DENIED"
    _audited(admin, editor_id, "AdminAssociate", "E_PERMISSION_DENIED")
    editor.admin_associate("KeyAssignmentPolicy", policy["PolicyId"], "Realm", mine)
