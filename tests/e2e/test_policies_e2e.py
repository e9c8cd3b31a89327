"""Policies in force on key deliveries: states, retention, caching, access with dynamic
groups, key assignment and bindings, wrapping resolution, life cycle, use tracking."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kms_ws.client import Kek, KmsClient, KmsFault, PepUnwrapper

from ..support import db
from ..support.server import ADMIN, ServerProcess, running_server

pytestmark = pytest.mark.e2e


def _name() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


def _enforce(admin: KmsClient, kind: str, policy: dict, target_kind: str,
             target: str) -> dict:
    admin.admin_associate(kind, policy["PolicyId"], target_kind, target)
    current = admin.admin_get(kind, policy["PolicyId"])
    return admin.admin_edit(kind, {**current, "State": "Enforcing"})


def test_policy_states_follow_add_associate_disassociate_delete(admin: KmsClient) -> None:
    key = admin.create_key()
    p = admin.admin_create("RetentionPolicy", {"Name": _name(), "TExpiration": "P10D"})
    assert p["State"] == "Created"
    with pytest.raises(KmsFault):
        admin.admin_edit("RetentionPolicy", {**p, "State": "Enforcing"})  # nothing to enforce
    assert admin.admin_associate("RetentionPolicy", p["PolicyId"], "Key",
                                 key.key_id)["State"] == "Assigned"
    assert _enforce_only(admin, p["PolicyId"])["State"] == "Enforcing"
    assert admin.admin_disassociate("RetentionPolicy", p["PolicyId"], "Key",
                                    key.key_id)["State"] == "Created"
    admin.admin_associate("RetentionPolicy", p["PolicyId"], "Key", key.key_id)
    kept = admin.admin_delete("RetentionPolicy", p["PolicyId"])
    assert kept is not None and kept["State"] == "Disabled"  # was in use: kept for history
    with pytest.raises(KmsFault):
        admin.admin_associate("RetentionPolicy", p["PolicyId"], "Key", key.key_id)
    assert "RetentionPolicyId" not in admin.admin_get("Key", key.key_id)
    assert admin.admin_delete("RetentionPolicy", p["PolicyId"]) is None


def _enforce_only(admin: KmsClient, pid: str) -> dict:
    cur = admin.admin_get("RetentionPolicy", pid)
    return admin.admin_edit("RetentionPolicy", {**cur, "State": "Enforcing"})


def test_retention_policy_sets_dates_and_versions_the_key(admin: KmsClient,
                                                          client: KmsClient) -> None:
    key = client.create_key()
    assert key.version == 1 and key.t_expired is None
    p = admin.admin_create("RetentionPolicy", {"Name": _name(), "TExpiration": "P90D",
                                               "TDisable": "P1Y"})
    _enforce(admin, "RetentionPolicy", p, "Key", key.key_id)
    got = client.get_key(key.key_id)
    assert got.value == key.value
    assert got.version > key.version and got.edit_datetime > key.edit_datetime
    created = admin.admin_get("Key", key.key_id)
    assert got.t_expired is not None and got.t_disabled is not None
    assert (got.t_disabled - got.t_expired).days == 365 - 90
    # Reads, deliveries and audit never change the version.
    assert client.get_key(key.key_id).version == got.version == created["Version"]
    # An edit of the policy is a change to the key.
    cur = admin.admin_get("RetentionPolicy", p["PolicyId"])
    admin.admin_edit("RetentionPolicy", {**cur, "TExpiration": "P30D"})
    again = client.get_key(key.key_id)
    assert again.version == got.version + 1
    assert (again.t_expired - got.t_expired).days == -60  # type: ignore[operator]
    assert client.get_key_if_altered(key.key_id, again.version) is None


def test_template_policies_reach_keys_created_from_it(admin: KmsClient, client: KmsClient) -> None:
    tpl = admin.admin_create("KeyTemplate", {"FriendlyName": _name(), "KeyLength": 128,
                                             "CipherType": "2.16.840.1.101.3.4.1.6"})
    p = admin.admin_create("RetentionPolicy", {"Name": _name(), "TExpiration": "P7D"})
    _enforce(admin, "RetentionPolicy", p, "KeyTemplate", tpl["TemplateId"])
    key = client.create_key(template=tpl["FriendlyName"])
    assert len(key.value or b"") == 16 and key.template_id == tpl["TemplateId"]
    assert key.t_expired is not None
    assert abs((key.t_expired - key.edit_datetime) - timedelta(days=7)) < timedelta(seconds=1)


def test_caching_interval_differs_by_endpoint_capability(admin: KmsClient, client: KmsClient,
                                                         principal) -> None:  # type: ignore[no-untyped-def]
    key = client.create_key()
    assert client.get_key(key.key_id).t_cached == 3600
    p = admin.admin_create("CachingPolicy", {"Name": _name(), "Rule": [
        {"CachingType": "Memory", "TCacheInterval": 600},
        {"CachingType": "Persistent", "TCacheInterval": 86400, "Capability": "hasHSM"},
        {"CachingType": "NoCache", "TCacheInterval": 0, "Capability": "no-cache"}]})
    _enforce(admin, "CachingPolicy", p, "Key", key.key_id)
    assert client.get_key(key.key_id).t_cached == 600
    hsm_type = admin.admin_create("EndpointType", {"Name": _name(), "Capabilities": {
        "Capability": [{"Name": "hasHSM"}, {"Name": "never-exposes-key"}]}})
    hsm, _ = principal({"realm://localhost/default": ()},
                       EndpointTypeId=hsm_type["EndpointTypeId"])
    assert hsm.get_key(key.key_id).t_cached == 86400
    nocache, _ = principal({"realm://localhost/default": ()},
                           Capabilities={"Capability": [{"Name": "no-cache"}]})
    assert nocache.get_key(key.key_id).t_cached == 0


def test_access_policy_denies_with_a_fault_and_an_audit_record(admin: KmsClient, principal,
                                                               new_realm) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    owner, owner_id = principal({realm: ()})
    other, other_id = principal({realm: ()})
    key = owner.create_key()
    assert other.get_key(key.key_id).value == key.value  # realms alone allow it
    p = admin.admin_create("AccessDistributionPolicy", {
        "Name": _name(), "Clients": {"Id": [owner_id]},
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    _enforce(admin, "AccessDistributionPolicy", p, "Key", key.key_id)
    assert owner.get_key(key.key_id).value == key.value
    with pytest.raises(KmsFault) as err:
        other.get_key(key.key_id)
    assert err.value.error_code == "E_ACCESS_POLICY" and err.value.subcode == "wsman:AccessDenied"
    denied = [r for r in admin.admin_audit(key_id=key.key_id) if r["Result"] == "Denied"]
    assert denied and denied[-1]["ActorId"] == other_id
    assert denied[-1]["Event"] == "E_ACCESS_POLICY"
    by_client = admin.admin_audit(client_id=other_id)
    assert any(r["Result"] == "Denied" for r in by_client)
    assert {r["ActorId"] for r in by_client} == {other_id}


def test_dynamic_client_group_picks_up_a_new_client_without_restart(
        admin: KmsClient, principal, new_realm) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    prefix = f"tape-lib-{uuid.uuid4().hex[:6]}"
    group = admin.admin_create("ClientGroup", {
        "Name": _name(), "Type": "Dynamic", "Rule": [{"Pattern": prefix + r"-\d+",
                                                      "Attribute": "name"}],
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    owner, owner_id = principal({realm: ()})
    key = owner.create_key()
    p = admin.admin_create("AccessDistributionPolicy", {
        "Name": _name(), "Clients": {"Id": [owner_id]}, "ClientGroups": {"Id": [group["GroupId"]]},
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    _enforce(admin, "AccessDistributionPolicy", p, "Key", key.key_id)
    newcomer, _ = principal({realm: ()}, name=f"{prefix}-7")  # registered after the policy
    assert newcomer.get_key(key.key_id).value == key.value
    stranger, _ = principal({realm: ()}, name=f"{prefix}-x")
    with pytest.raises(KmsFault):
        stranger.get_key(key.key_id)


def test_static_key_group_policy_applies_to_members(admin: KmsClient, client: KmsClient) -> None:
    key = client.create_key()
    group = admin.admin_create("KeyGroup", {"Name": _name(), "Type": "Static"})
    admin.admin_associate("KeyGroup", group["GroupId"], "Key", key.key_id)
    assert admin.admin_get("KeyGroup", group["GroupId"])["Members"]["Id"] == [key.key_id]
    p = admin.admin_create("CachingPolicy", {"Name": _name(), "Rule": [
        {"CachingType": "Memory", "TCacheInterval": 42}]})
    _enforce(admin, "CachingPolicy", p, "KeyGroup", group["GroupId"])
    assert client.get_key(key.key_id).t_cached == 42
    assert client.create_key().t_cached == 3600  # not a member


def test_reference_right_gives_the_key_but_not_its_metadata(admin: KmsClient, principal,
                                                            new_realm) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    owner, _ = principal({realm: ()})
    key = owner.create_key(friendly_name="payroll-2026", attributes={"dept": "hr"},
                           datasets=[("volume", _name())])
    user, _ = principal({realm: ("Reference",)})
    # use, not view (issue 15.1): the key only wrapped for a PEP the client serves,
    # under a KEK the client never saw (an administrator registered it for the PEP)
    pep_kek = Kek("pep-kek", secrets.token_bytes(32))
    pep_id = user.register_endpoint("Pep", _name())
    admin.register_wrapping_values({pep_kek.key_id: pep_kek.secret}, endpoint_id=pep_id)
    used = user.get_key(key.key_id, usage="Decrypt", pep_id=pep_id)
    assert used.value is None and PepUnwrapper([pep_kek]).open(used.pep_blob) == key.value
    assert used.friendly_name is None and used.attributes == {} and used.datasets == []
    assert used.realms == []
    assert user.find_keys({"dept": "hr"})[0] == []  # searching metadata needs Read
    reader, _ = principal({realm: ("Read",)})
    assert reader.get_key(key.key_id).friendly_name == "payroll-2026"
    nobody, _ = principal({new_realm(): ()})
    with pytest.raises(KmsFault) as err:
        nobody.get_key(key.key_id)
    assert err.value.error_code == "E_KEY_NOT_FOUND"


def test_key_assignment_shared_pool_and_per_tape(admin: KmsClient, client: KmsClient) -> None:
    pool = _name()
    shared = admin.admin_create("KeyAssignmentPolicy", {
        "Name": _name(), "Condition": [{"Name": "pool", "Value": pool}], "Generation": "Shared"})
    per_tape = admin.admin_create("KeyAssignmentPolicy", {
        "Name": _name(), "Condition": [{"Name": "pool", "Value": pool},
                                       {"Name": "class", "Value": "financial"}],
        "Generation": "PerDataSet"})
    for p in (shared, per_tape):
        _enforce(admin, "KeyAssignmentPolicy", p, "Realm", "realm://localhost/default")
    a = client.get_key(datasets=[("pool", pool), ("volume", "A1")], usage="Encrypt")
    b = client.get_key(datasets=[("pool", pool), ("volume", "A2")], usage="Encrypt")
    assert a.key_id == b.key_id and a.value == b.value
    f1 = client.get_key(datasets=[("pool", pool), ("class", "financial"), ("volume", "F1")])
    f2 = client.get_key(datasets=[("pool", pool), ("class", "financial"), ("volume", "F2")])
    f1b = client.get_key(datasets=[("pool", pool), ("class", "financial"), ("volume", "F1")])
    assert len({a.key_id, f1.key_id, f2.key_id}) == 3 and f1b.key_id == f1.key_id
    # Bindings are recorded separately from the policies and answer both questions.
    keys_of_a2 = admin.admin_bindings(dataset=("volume", "A2"))
    assert [b["KeyId"] for b in keys_of_a2] == [a.key_id]
    protected = {b["DataSet"]["Value"] for b in admin.admin_bindings(key_id=a.key_id)}
    assert {"A1", "A2"} <= protected
    events = [r["Event"] for r in admin.admin_audit(key_id=a.key_id)]
    assert events.count("KeyCreated") == 1 and events.count("KeyDelivered") >= 2
    # Decryption of a tape gets the key it was written with, never a new one.
    assert client.get_key(datasets=[("volume", "A2")], usage="Decrypt").key_id == a.key_id


def test_key_assignment_scope_is_delivered(admin: KmsClient, client: KmsClient) -> None:
    pool = _name()
    p = admin.admin_create("KeyAssignmentPolicy", {
        "Name": _name(), "Condition": [{"Name": "pool", "Value": pool}], "Generation": "Shared"})
    _enforce(admin, "KeyAssignmentPolicy", p, "Realm", "realm://localhost/default")
    res = client._call("GetKey", DataSets={"DataSet": [{"Name": "pool", "Value": pool}]})
    assert res.Key[0].AssignmentScope == "Pool"
    assert res.Key[0].KeyAssignmentPolicyId == p["PolicyId"]


def test_wrapping_policy_is_resolved_and_never_bypassed(admin: KmsClient,
                                                        client: KmsClient) -> None:
    key = client.create_key()
    p = admin.admin_create("WrappingPolicy", {"Name": _name(), "WrappingType": "Symmetric",
                                              "WrappingMode": "aes-key-wrap"})
    _enforce(admin, "WrappingPolicy", p, "Key", key.key_id)
    assert admin.admin_get("Key", key.key_id)["WrappingPolicyId"] == p["PolicyId"]
    with pytest.raises(KmsFault) as err:
        client.get_key(key.key_id)
    assert err.value.error_code == "E_WRAPPING_UNAVAILABLE"


def test_expired_key_decrypts_but_does_not_encrypt(admin: KmsClient, client: KmsClient) -> None:
    key = client.create_key()
    doc = admin.admin_get("Key", key.key_id)
    past = datetime.now(UTC) - timedelta(minutes=1)
    admin.admin_edit("Key", {**doc, "TExpired": past})
    assert client.get_key(key.key_id, usage="Decrypt").value == key.value
    with pytest.raises(KmsFault) as err:
        client.get_key(key.key_id, usage="Encrypt")
    assert err.value.error_code == "E_KEY_STATE"
    assert admin.admin_get("Key", key.key_id)["State"] == "Expired"


def test_compromise_and_destroy(admin: KmsClient, client: KmsClient,
                                server: ServerProcess) -> None:
    key = client.create_key(datasets=[("volume", _name())])
    doc = admin.admin_get("Key", key.key_id)
    compromised = admin.admin_edit("Key", {**doc, "State": "Compromised"})
    assert compromised["State"] == "Compromised" and compromised["Version"] == doc["Version"] + 1
    for usage in ("Encrypt", "Decrypt"):
        with pytest.raises(KmsFault):
            client.get_key(key.key_id, usage=usage)
    with pytest.raises(KmsFault):  # never back to Active
        admin.admin_edit("Key", {**compromised, "State": "Active"})
    tomb = admin.admin_delete("Key", key.key_id)
    assert tomb is not None and tomb["State"] == "Destroyed"
    assert db.sealed_value(server.data_dir, key.key_id) is None
    assert admin.admin_get("Key", key.key_id)["State"] == "Destroyed"
    assert admin.admin_bindings(key_id=key.key_id)  # history stays
    events = [r["Operation"] for r in admin.admin_audit(key_id=key.key_id)]
    assert "CreateKey" in events and "AdminDelete" in events


def test_use_by_is_tracked_without_versioning_the_key(admin: KmsClient, client_factory) -> None:  # type: ignore[no-untyped-def]
    c1, _, _ = client_factory()
    c2, name2, _ = client_factory()
    key = c1.create_key()
    c1.get_key(key.key_id)
    c2.get_key(key.key_id)
    c2.get_key(key.key_id)
    doc = admin.admin_get("Key", key.key_id)
    assert doc["Version"] == 1
    assert len(doc["UseByClients"]["Id"]) == 2
    pep = c2.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}")
    c2.get_key(key.key_id, pep_id=pep)
    assert admin.admin_get("Key", key.key_id)["UseByPeps"]["Id"] == [pep]


def test_pep_receives_keys_only_through_its_clients(admin: KmsClient, client_factory) -> None:  # type: ignore[no-untyped-def]
    owner, _, _ = client_factory()
    other, other_name, _ = client_factory()
    pep = owner.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}")
    key = owner.create_key()
    with pytest.raises(KmsFault) as err:
        other.get_key(key.key_id, pep_id=pep)
    assert err.value.error_code == "E_PERMISSION_DENIED"
    admin.admin_associate("Pep", pep, "Client", other_name)
    assert other.get_key(key.key_id, pep_id=pep).value == key.value
    assert other_name  # associated by name
    shown = admin.admin_get("Pep", pep)
    assert len(shown["ClientAssociations"]["Id"]) == 2


def test_locked_client_is_unlocked_and_disabled_by_an_admin(tmp_path: Path) -> None:
    """Locked at its third wrong password (this server's lock_after_failed_authentications);
    an administrator's edit to Active unlocks it at once (its name's backoff too)."""
    with running_server(tmp_path / "data",
                        security={"lock_after_failed_authentications": 3,
                                  "backoff_after_failed_authentications": 3}) as server, \
            KmsClient(server.url, *ADMIN) as admin:
        name, password = _name(), f"pw-{uuid.uuid4().hex}"
        cid = admin.register_endpoint("Client", name, password=password)
        with KmsClient(server.url, name, "wrong-password") as bad:
            for _ in range(3):
                with pytest.raises(KmsFault):
                    bad.get_random_bytes(1)
        assert admin.admin_get("Client", cid)["State"] == "Locked"
        with KmsClient(server.url, name, password) as c:
            with pytest.raises(KmsFault):
                c.get_random_bytes(1)
            doc = admin.admin_get("Client", cid)
            assert admin.admin_edit("Client", {**doc, "State": "Active"})["State"] == "Active"
            assert len(c.get_random_bytes(4)) == 4
            doc = admin.admin_get("Client", cid)
            admin.admin_edit("Client", {**doc, "State": "Disabled"})
            with pytest.raises(KmsFault):
                c.get_random_bytes(1)


def test_a_client_with_an_open_session_is_shown_authenticated(
        admin: KmsClient, principal) -> None:  # type: ignore[no-untyped-def]
    """§4.7.2: Active, Disabled/Locked and Authenticated (an open session, derived)."""
    c, cid = principal({"realm://localhost/default": ()})
    assert admin.admin_get("Client", cid)["State"] == "Active"
    c.login()
    doc = admin.admin_get("Client", cid)
    assert doc["State"] == "Authenticated"
    edited = admin.admin_edit("Client", doc)
    assert edited["State"] == "Authenticated"  # shown state round-trips unchanged
    c.logout()
    assert admin.admin_get("Client", cid)["State"] == "Active"


def test_a_pep_gets_keys_only_in_realms_where_it_holds_a_right(
        admin: KmsClient, client_factory, new_realm) -> None:  # type: ignore[no-untyped-def]
    owner, _, _ = client_factory()
    pep = owner.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}")
    key = owner.create_key()
    assert owner.get_key(key.key_id, pep_id=pep).value == key.value
    elsewhere = new_realm()
    admin.admin_associate("Pep", pep, "Realm", elsewhere, rights=["Reference"])
    for r in admin.admin_get("Pep", pep)["RealmAssociations"]["RealmAssociation"]:
        if r["Realm"] != elsewhere:
            admin.admin_disassociate("Pep", pep, "Realm", r["Realm"])
    with pytest.raises(KmsFault) as err:
        owner.get_key(key.key_id, pep_id=pep)
    assert err.value.error_code == "E_KEY_NOT_FOUND"
    assert owner.get_key(key.key_id).value == key.value  # the client itself still may


def test_audit_query_by_time_window(admin: KmsClient, client: KmsClient) -> None:
    first = client.create_key()
    second = client.create_key()
    t1 = second.edit_datetime  # the server's clock at the second creation
    after = {r.get("KeyId") for r in admin.admin_audit(since=t1, max_records=1000)}
    before = {r.get("KeyId") for r in admin.admin_audit(since=first.edit_datetime, until=t1,
                                                         max_records=1000)}
    assert second.key_id in after and first.key_id not in after
    assert first.key_id in before and second.key_id not in before


def test_retention_change_reaches_dynamic_key_group_members_at_request_time(
        admin: KmsClient, client: KmsClient) -> None:
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    group = admin.admin_create("KeyGroup", {"Name": _name(), "Type": "Dynamic",
                                            "Rule": [{"Pattern": pool, "Attribute": "pool"}]})
    member = client.create_key(datasets={"pool": pool})
    outsider = client.create_key(datasets={"pool": pool + "-other"})
    p = admin.admin_create("RetentionPolicy", {"Name": _name(), "TExpiration": "P10Y"})
    _enforce(admin, "RetentionPolicy", p, "KeyGroup", group["GroupId"])
    assert client.get_key(member.key_id, usage="Encrypt").t_expired is not None
    # the edit is not stamped on the member: it is resolved when the key is requested
    cur = admin.admin_get("RetentionPolicy", p["PolicyId"])
    admin.admin_edit("RetentionPolicy", {**cur, "TExpiration": "PT0S", "TDisable": "P1Y"})
    with pytest.raises(KmsFault) as err:
        client.get_key(member.key_id, usage="Encrypt")
    assert err.value.error_code == "E_KEY_STATE"
    got = client.get_key(member.key_id, usage="Decrypt")
    assert got.value == member.value and got.state == "Expired"
    assert got.t_expired is not None and got.t_disabled is not None
    shown = admin.admin_get("Key", member.key_id)
    assert shown["State"] == "Expired" and "TDisabled" in shown
    assert client.get_key(outsider.key_id, usage="Encrypt").state == "Active"


def test_a_retention_policy_on_a_client_group_limits_what_its_members_get(
        admin: KmsClient, client_factory) -> None:  # type: ignore[no-untyped-def]
    """§5.2: retention is how long a key is "accessible to a given client": a policy on a
    client group narrows the key's dates for its members only, at each request."""
    carol, carol_name, _ = client_factory()
    dave, _, _ = client_factory()
    carol_id = admin.admin_get("Client", carol_name)["ClientId"]
    key = admin.create_key()
    version = admin.admin_get("Key", key.key_id)["Version"]
    group = admin.admin_create("ClientGroup", {"Name": _name(), "Type": "Static"})
    admin.admin_associate("ClientGroup", group["GroupId"], "Client", carol_id)
    p = admin.admin_create("RetentionPolicy", {"Name": _name(), "TExpiration": "PT0S",
                                               "TDisable": "P10Y"})
    _enforce(admin, "RetentionPolicy", p, "ClientGroup", group["GroupId"])
    with pytest.raises(KmsFault) as err:  # expired for carol: no new data under it
        carol.get_key(key.key_id, usage="Encrypt")
    assert err.value.error_code == "E_KEY_STATE"
    got = carol.get_key(key.key_id, usage="Decrypt")
    assert got.value == key.value and got.state == "Expired" and got.t_disabled is not None
    assert dave.get_key(key.key_id, usage="Encrypt").state == "Active"  # not in the group
    assert admin.get_key(key.key_id).t_expired is None
    cur = admin.admin_get("RetentionPolicy", p["PolicyId"])
    admin.admin_edit("RetentionPolicy", {**cur, "TDisable": "PT0S"})
    with pytest.raises(KmsFault) as err:  # past its T_DISABLE for carol: not delivered
        carol.get_key(key.key_id, usage="Decrypt")
    assert err.value.error_code == "E_KEY_STATE"
    assert dave.get_key(key.key_id, usage="Decrypt").value == key.value
    # the key itself is unchanged, and carol's refusals are audited
    assert admin.admin_get("Key", key.key_id)["Version"] == version
    refused = [r["Event"] for r in admin.admin_audit(key_id=key.key_id)
               if r.get("ActorId") == carol_id and r["Result"] != "Success"]
    assert refused == ["E_KEY_STATE", "E_KEY_STATE"]
