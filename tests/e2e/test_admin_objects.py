"""Administration of §4/§5 objects: the generic actions, versioning, realm rights."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kms_ws.client import KmsClient, KmsFault

from ..support import db
from ..support.server import ServerProcess

pytestmark = pytest.mark.e2e

FULL = ("Create",)


def _name() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


NEW_OBJECTS = {
    "RetentionPolicy": lambda: {"Name": _name(), "TExpiration": "P90D"},
    "WrappingPolicy": lambda: {"Name": _name(), "WrappingType": "Symmetric",
                               "WrappingMode": "aes-key-wrap"},
    "AuditPolicy": lambda: {"Name": _name(), "OperationType": ["GetKey"], "EventType": ["Log"],
                            "Destination": ["Local"]},
    "CachingPolicy": lambda: {"Name": _name(), "Rule": [{"CachingType": "Memory",
                                                          "TCacheInterval": 60}]},
    "KeyAssignmentPolicy": lambda: {"Name": _name(), "Condition": [{"Name": "pool",
                                                                    "Value": _name()}],
                                    "Generation": "Shared"},
    "EndpointType": lambda: {"Name": _name(), "Capabilities": {"Capability": [
        {"Name": "hasHSM"}]}},
    "ClientGroup": lambda: {"Name": _name(), "Type": "Dynamic",
                            "Rule": [{"Pattern": "x.*", "Attribute": "name"}]},
    "KeyGroup": lambda: {"Name": _name(), "Type": "Static"},
    "KeyTemplate": lambda: {"FriendlyName": _name(), "CipherType": "2.16.840.1.101.3.4.1.46",
                            "KeyLength": 256},
}
ID = {"EndpointType": "EndpointTypeId", "ClientGroup": "GroupId", "KeyGroup": "GroupId",
      "KeyTemplate": "TemplateId"}


@pytest.mark.parametrize("kind", sorted(NEW_OBJECTS))
def test_add_show_list_edit_delete(admin: KmsClient, kind: str) -> None:
    created = admin.admin_create(kind, NEW_OBJECTS[kind]())
    oid = created[ID.get(kind, "PolicyId")]
    assert created["Version"] == 1
    assert admin.admin_get(kind, oid) == created
    listed, _ = admin.admin_list(kind, max_items=1000)
    assert oid in [o[ID.get(kind, "PolicyId")] for o in listed]
    edited = admin.admin_edit(kind, {**created, "Description": "changed"})
    assert edited["Version"] == 2 and edited["Description"] == "changed"
    assert edited["EditDateTime"] >= created["EditDateTime"]
    assert admin.admin_get(kind, oid)["Version"] == 2  # reads never version
    assert admin.admin_delete(kind, oid) is None
    with pytest.raises(KmsFault) as err:
        admin.admin_get(kind, oid)
    assert err.value.error_code == "E_NOT_FOUND"


def test_stale_edit_is_refused_and_changes_nothing(admin: KmsClient, server: ServerProcess) -> None:
    p = admin.admin_create("RetentionPolicy", {"Name": _name(), "TExpiration": "P30D"})
    v2 = admin.admin_edit("RetentionPolicy", {**p, "TExpiration": "P60D"})
    before = db.count(server.data_dir, "changes")
    with pytest.raises(KmsFault) as err:
        admin.admin_edit("RetentionPolicy", {**p, "TExpiration": "P1D"})  # made from version 1
    assert err.value.subcode == "wsman:Concurrency" and err.value.error_code == "E_STALE_VERSION"
    assert admin.admin_get("RetentionPolicy", p["PolicyId"]) == v2
    assert db.count(server.data_dir, "changes") == before
    with pytest.raises(KmsFault):
        admin.admin_delete("RetentionPolicy", p["PolicyId"], version=1)
    assert admin.admin_get("RetentionPolicy", p["PolicyId"]) == v2


def test_read_only_realm_admin_cannot_edit_or_delete_a_policy(admin, new_realm, principal) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    policy = admin.admin_create("RetentionPolicy", {
        "Name": _name(), "TExpiration": "P30D",
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    reader, _ = principal({realm: ("Read",)}, administrator=True)
    assert reader.admin_get("RetentionPolicy", policy["PolicyId"]) == policy
    with pytest.raises(KmsFault) as err:
        reader.admin_delete("RetentionPolicy", policy["PolicyId"])
    assert err.value.error_code == "E_PERMISSION_DENIED" and "Delete right" in err.value.reason
    with pytest.raises(KmsFault) as err:
        reader.admin_edit("RetentionPolicy", {**policy, "TExpiration": "P1D"})
    assert err.value.error_code == "E_PERMISSION_DENIED"
    with pytest.raises(KmsFault):
        reader.admin_create("RetentionPolicy", {"Name": _name(), "TExpiration": "P1D",
                                                "RealmAssociations": {"RealmAssociation": [
                                                    {"Realm": realm}]}})
    assert admin.admin_get("RetentionPolicy", policy["PolicyId"]) == policy
    deleter, _ = principal({realm: ("Delete",)}, administrator=True)
    assert deleter.admin_delete("RetentionPolicy", policy["PolicyId"]) is None


def test_nothing_is_visible_without_a_realm_that_allows_it(admin, new_realm, principal) -> None:  # type: ignore[no-untyped-def]
    mine, other = new_realm(), new_realm()
    policy = admin.admin_create("CachingPolicy", {
        "Name": _name(), "Rule": [{"CachingType": "NoCache", "TCacheInterval": 0}],
        "RealmAssociations": {"RealmAssociation": [{"Realm": other}]}})
    outsider, _ = principal({mine: ("Create",)}, administrator=True)
    with pytest.raises(KmsFault) as err:
        outsider.admin_get("CachingPolicy", policy["PolicyId"])
    assert err.value.error_code == "E_NOT_FOUND"
    listed, _ = outsider.admin_list("CachingPolicy", max_items=1000)
    assert policy["PolicyId"] not in [p["PolicyId"] for p in listed]
    refonly, _ = principal({other: ("Reference",)}, administrator=True)
    with pytest.raises(KmsFault) as err:
        refonly.admin_get("CachingPolicy", policy["PolicyId"])  # may use, not view
    assert err.value.error_code == "E_PERMISSION_DENIED"


def test_clients_are_not_administrators(client: KmsClient) -> None:
    with pytest.raises(KmsFault) as err:
        client.admin_list("RetentionPolicy")
    assert err.value.error_code == "E_PERMISSION_DENIED"


@pytest.mark.parametrize("kind,doc", [
    ("RetentionPolicy", {"TExpiration": "-P90D"}),
    ("RetentionPolicy", {}),
    ("ClientGroup", {"Type": "Dynamic", "Rule": [{"Pattern": "(", "Attribute": "name"}]}),
    ("ClientGroup", {"Type": "Dynamic"}),
    ("AuditPolicy", {"OperationType": ["GetKey"], "EventType": ["SnmpTrap"],
                     "Destination": ["Local"]}),
    ("AccessDistributionPolicy", {"Peps": {"Id": [str(uuid.uuid4())]}}),
    ("KeyAssignmentPolicy", {"Condition": [{"Name": "a", "Value": "1"}],
                             "Generation": "PerPeriod"}),
    ("CachingPolicy", {"Rule": [{"CachingType": "Memory", "TCacheInterval": 1},
                                {"CachingType": "Memory", "TCacheInterval": 2}]}),
])
def test_invalid_objects_are_refused_and_change_nothing(admin: KmsClient, server: ServerProcess,
                                                       kind: str, doc: dict) -> None:
    before = db.count(server.data_dir, "objects")
    with pytest.raises(KmsFault) as err:
        admin.admin_create(kind, {"Name": _name(), **doc})
    assert err.value.subcode == "wsman:InvalidParameter"
    assert db.count(server.data_dir, "objects") == before


def test_a_realm_in_use_cannot_be_deleted(admin, new_realm, principal) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    _, member = principal({realm: ("Read",)})
    with pytest.raises(KmsFault) as err:
        admin.admin_delete("Realm", realm)
    assert err.value.error_code == "E_OBJECT_IN_USE"
    assert admin.admin_get("Realm", realm)["RealmId"] == realm
    empty = new_realm()
    assert admin.admin_delete("Realm", empty) is None
    with pytest.raises(KmsFault):
        admin.admin_get("Realm", empty)


@pytest.mark.parametrize("kind", ["KeyTemplate", "Client", "RetentionPolicy"])
def test_list_altered_since(admin: KmsClient, principal, kind: str) -> None:  # type: ignore[no-untyped-def]
    if kind == "Client":
        _, oid = principal({"realm://localhost/default": ()})
        obj = admin.admin_get("Client", oid)
    else:
        obj = admin.admin_create(kind, NEW_OBJECTS[kind]())
        oid = obj[ID.get(kind, "PolicyId")]
    id_field = {"Client": "ClientId"}.get(kind, ID.get(kind, "PolicyId"))
    marker = admin.create_key().edit_datetime  # the server's clock, after the object
    later = admin.admin_edit(kind, {**obj, "Description": "x"} if kind != "Client"
                             else {**obj, "Attributes": {"Attribute": [{"Name": "site",
                                                                         "Value": "b"}]}})
    assert later["Version"] == obj["Version"] + 1
    since, _ = admin.admin_list(kind, altered_since=marker, max_items=1000)
    assert oid in [o[id_field] for o in since]
    nothing, _ = admin.admin_list(kind, altered_since=datetime.now(UTC) + timedelta(days=1))
    assert oid not in [o[id_field] for o in nothing]
