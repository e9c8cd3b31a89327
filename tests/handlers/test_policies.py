"""§5 policies as CreateKey/GetKey (§6.5, §6.7) apply them: key assignment (GetKey by
data creates or finds the key: a read that turns into a write), access/distribution,
retention dates at request time — on the in-memory store."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from kms_ws.crypto import sealing
from kms_ws.domain.errors import KeyNotFound, KeyNotUsable, PermissionDenied
from kms_ws.domain.model import DataSet, Key, KeyState, KeyUsage, NameValue
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import AdminRequest, Ref

from .conftest import DEFAULT, Harness


@pytest.fixture()
def h() -> Harness:
    """root (an administrator) and alice, both in the default realm, which exists."""
    harness = Harness()
    harness.add_realm()
    harness.add("root", admin=True)
    harness.add("alice")
    return harness


def admin(h: Harness, action: str, kind: str, **kw: Any) -> Any:
    return h.run("Admin" + action, AdminRequest(action, kind, **kw), "root")


def enforce(h: Harness, kind: str, pid: str, target: Ref) -> None:
    admin(h, "Associate", kind, object_id=pid, target=target)
    doc = admin(h, "Get", kind, object_id=pid).documents[0]
    admin(h, "Edit", kind, document={**doc, "State": "Enforcing"})


def by_data(h: Harness, *pairs: tuple[str, str],
            usage: KeyUsage = KeyUsage.ENCRYPT) -> Key:
    req = m.GetKeyRequest(datasets=tuple(DataSet(n, v) for n, v in pairs), usage=usage)
    key: Key = h.run("GetKey", req, "root").keys[0]
    return key


def test_per_period_assignment_rotates_the_pool_key(h: Harness) -> None:
    p = admin(h, "Create", "KeyAssignmentPolicy", document={
        "Name": "weekly", "Condition": [{"Name": "pool", "Value": "P"}],
        "Generation": "PerPeriod", "Period": "P7D"}).documents[0]
    enforce(h, "KeyAssignmentPolicy", p["PolicyId"], Ref("Realm", DEFAULT))
    first = by_data(h, ("pool", "P"), ("volume", "V1"))
    h.clock.now += timedelta(days=6)
    assert by_data(h, ("pool", "P"), ("volume", "V2")).key_id == first.key_id
    h.clock.now += timedelta(days=1)
    rotated = by_data(h, ("pool", "P"), ("volume", "V3"))
    assert rotated.key_id != first.key_id and rotated.assignment_scope == "Pool"
    # V1 was written with the first key: decryption still finds it.
    assert by_data(h, ("volume", "V1"), usage=KeyUsage.DECRYPT).key_id == first.key_id


def test_get_key_by_data_creates_the_key_once_and_audits_it(h: Harness) -> None:
    p = admin(h, "Create", "KeyAssignmentPolicy", document={
        "Name": "per-tape", "Condition": [{"Name": "class", "Value": "financial"}],
        "Generation": "PerDataSet"}).documents[0]
    enforce(h, "KeyAssignmentPolicy", p["PolicyId"], Ref("Realm", DEFAULT))
    # no key is bound to a tape yet, and none is made for reading one
    h.check_refused(KeyNotFound, "GetKey", m.GetKeyRequest(
        datasets=(DataSet("volume", "F1"),), usage=KeyUsage.DECRYPT), "root")
    first = by_data(h, ("class", "financial"), ("volume", "F1"))  # read, then a write
    h.clock.now += timedelta(seconds=1)  # (KeyCreated is told by created_at == now)
    again = by_data(h, ("class", "financial"), ("volume", "F1"))
    other = by_data(h, ("class", "financial"), ("volume", "F2"))
    assert again.key_id == first.key_id and again.value == first.value
    assert other.key_id != first.key_id and first.assignment_policy_id == p["PolicyId"]
    assert len(h.store.tables.keys) == 2
    with h.store.unit_of_work() as uow:
        assert uow.keys.has_binding(first.key_id, DataSet("volume", "F1"))
    events = [r["event"] for r in h.audit(key_id=first.key_id)]
    assert events.count("KeyCreated") == 1 and events.count("KeyDelivered") == 2
    assert by_data(h, ("volume", "F1"), usage=KeyUsage.DECRYPT).key_id == first.key_id


def test_retention_dates_drive_the_state_at_request_time(h: Harness) -> None:
    key = h.run("CreateKey", m.CreateKeyRequest(), "root").key
    p = admin(h, "Create", "RetentionPolicy", document={
        "Name": "short", "TExpiration": "P1D", "TDisable": "P3D"}).documents[0]
    enforce(h, "RetentionPolicy", p["PolicyId"], Ref("Key", key.key_id))
    get = m.GetKeyRequest(key_id=key.key_id, usage=KeyUsage.ENCRYPT)
    assert h.run("GetKey", get, "root").keys[0].state.value == "Active"
    h.clock.now += timedelta(days=2)
    with pytest.raises(KeyNotUsable):
        h.run("GetKey", get, "root")
    dec = dataclasses.replace(get, usage=KeyUsage.DECRYPT)
    assert h.run("GetKey", dec, "root").keys[0].value == key.value
    h.clock.now += timedelta(days=2)
    with pytest.raises(KeyNotUsable):
        h.run("GetKey", dec, "root")


def test_access_policy_denies_other_clients_and_is_audited(h: Harness) -> None:
    key = h.run("CreateKey", m.CreateKeyRequest()).key
    assert h.run("GetKey", m.GetKeyRequest(key_id=key.key_id), "root").keys[0].value
    p = admin(h, "Create", "AccessDistributionPolicy", document={
        "Name": "alice-only", "Clients": {"Id": [h.endpoint_id("alice")]},
        "RealmAssociations": {"RealmAssociation": [{"Realm": DEFAULT}]}}).documents[0]
    enforce(h, "AccessDistributionPolicy", p["PolicyId"], Ref("Key", key.key_id))
    assert h.run("GetKey", m.GetKeyRequest(key_id=key.key_id)).keys[0].value == key.value
    exc = h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(key_id=key.key_id), "root",
                    code="E_ACCESS_POLICY")
    assert exc.refusal
    denied = h.audit(operation="GetKey", result="Denied", event="E_ACCESS_POLICY")
    assert [r["actor_id"] for r in denied] == [h.endpoint_id("root")]


def test_a_version_change_reseals_the_value_in_the_same_transaction(h: Harness) -> None:
    key = h.run("CreateKey", m.CreateKeyRequest(), "root").key
    before = h.store.tables.keys[key.key_id].sealed
    doc = admin(h, "Get", "Key", object_id=key.key_id).documents[0]
    admin(h, "Edit", "Key", document={**doc, "Description": "tape library 3"})
    row = h.store.tables.keys[key.key_id]
    assert row.key.version == 2 and row.sealed != before
    assert row.sealed is not None
    assert sealing.unseal(h.master.aead, key.key_id, 2, row.sealed) == key.value
    with pytest.raises(sealing.SealError):
        sealing.unseal(h.master.aead, key.key_id, 1, row.sealed)


def test_a_delivery_names_its_caching_type_and_the_policies_that_decided(h: Harness) -> None:
    key = h.run("CreateKey", m.CreateKeyRequest(), "alice").key
    assert (key.caching_type, key.applied_policies) == ("Memory", ())  # its own T_CACHED

    def applied(k: Key) -> set[tuple[str, str]]:
        return {(p.kind, p.policy_id) for p in k.applied_policies}
    caching = admin(h, "Create", "CachingPolicy", document={"Name": "c", "Rule": [
        {"CachingType": "Memory", "TCacheInterval": "60"},
        {"CachingType": "Persistent", "TCacheInterval": "600", "Capability": "hasHSM"}]}
    ).documents[0]["PolicyId"]
    access = admin(h, "Create", "AccessDistributionPolicy", document={
        "Name": "a", "Clients": {"Id": [h.endpoint_id("alice")]}}).documents[0]["PolicyId"]
    for kind, pid in (("CachingPolicy", caching), ("AccessDistributionPolicy", access)):
        enforce(h, kind, pid, Ref("Key", key.key_id))
    got = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id), "alice").keys[0]
    assert (got.caching_type, got.t_cached) == ("Memory", 60)
    assert applied(got) == {("AccessDistributionPolicy", access), ("CachingPolicy", caching)}
    # a rule that does not match the receiver and no default: the key's own T_CACHED,
    # and the caching policy did not decide
    only_hsm = admin(h, "Create", "CachingPolicy", document={"Name": "h", "Rule": [
        {"CachingType": "Persistent", "TCacheInterval": "600", "Capability": "hasHSM"}]}
    ).documents[0]["PolicyId"]
    other = h.run("CreateKey", m.CreateKeyRequest(), "alice").key
    enforce(h, "CachingPolicy", only_hsm, Ref("Key", other.key_id))
    got = h.run("GetKey", m.GetKeyRequest(key_id=other.key_id), "alice").keys[0]
    assert (got.caching_type, got.t_cached, got.applied_policies) == \
        ("Memory", other.t_cached, ())


def test_a_key_listed_without_its_value_still_names_its_caching(h: Harness) -> None:
    """GetKey by attributes lists a key it cannot deliver (here: disabled) with its
    metadata: its caching type too, from the caching policy that decides it."""
    made = [h.run("CreateKey", m.CreateKeyRequest(attributes=(NameValue("app", "db"),)),
                  "alice").key for _ in range(2)]
    pid = admin(h, "Create", "CachingPolicy", document={"Name": "c", "Rule": [
        {"CachingType": "Persistent", "TCacheInterval": "900"}]}).documents[0]["PolicyId"]
    enforce(h, "CachingPolicy", pid, Ref("Key", made[0].key_id))
    h.set_state(made[0].key_id, KeyState.DISABLED)
    found = {k.key_id: k for k in h.run("GetKey", m.GetKeyRequest(
        match_attributes=(NameValue("app", "db"),)), "alice").keys}
    listed, delivered = found[made[0].key_id], found[made[1].key_id]
    assert listed.value is None and (listed.caching_type, listed.t_cached) == ("Persistent", 900)
    assert [(p.kind, p.policy_id) for p in listed.applied_policies] == [("CachingPolicy", pid)]
    assert delivered.value is not None and delivered.caching_type == "Memory"


def test_the_callers_own_retention_policy_is_named_among_those_that_applied(
        h: Harness) -> None:
    key = h.run("CreateKey", m.CreateKeyRequest(), "alice").key
    pid = admin(h, "Create", "RetentionPolicy", document={
        "Name": "alice-short", "TExpiration": "P30D"}).documents[0]["PolicyId"]
    enforce(h, "RetentionPolicy", pid, Ref("Client", h.endpoint_id("alice")))
    got = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id), "alice").keys[0]
    assert [(p.kind, p.policy_id) for p in got.applied_policies] == [("RetentionPolicy", pid)]
    assert got.t_expired is not None  # it narrowed the key's dates for alice
    other = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id), "root").keys[0]
    assert other.applied_policies == ()  # root is not governed by it
