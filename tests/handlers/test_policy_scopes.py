"""§5.2-§5.4 policies on keys and clients, on the in-memory store: audit policies
associated with keys, key groups, clients and client groups (union; changes and
authentication failures always reach both destinations), retention per client, and
WRAPPING_TYPE checked against the mode when a policy is made and when a key is delivered
(a client group can carry the wrapping policy)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

from kms_ws.audit.events import AuditEvent
from kms_ws.domain.errors import (
    AlreadyExists,
    AmbiguousReference,
    InvalidParameter,
    KeyNotUsable,
    PasswordRefused,
    WrappingUnavailable,
)
from kms_ws.domain.model import Key, KeyState, KeyUsage
from kms_ws.domain.wrapping import AES_KWP, CMS_AUTH, CMS_KEK
from kms_ws.service import key_dates
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import AdminRequest, Ref
from kms_ws.service.ws_messages import EnumerateRequest, ResourceName, UpdateFilter

from ..fakes import callers
from ..support.wrapping import make_holder
from .conftest import DEFAULT, Harness, unaudited

KEYS = ResourceName("Key", "Key")


class Sink:
    """What the service sends to syslog."""

    def __init__(self) -> None:
        self.sent: list[AuditEvent] = []

    def send(self, event: AuditEvent) -> None:
        self.sent.append(event)

    def operations(self) -> list[str]:
        return [e.operation for e in self.sent]


@pytest.fixture()
def h() -> Harness:
    """root (an administrator), alice and carol (clients), all in the default realm."""
    harness = Harness()
    harness.add_realm()
    harness.add("root", admin=True)
    harness.add("alice")
    harness.add("carol")
    harness.service.syslog = Sink()  # type: ignore[assignment]
    return harness


def sink(h: Harness) -> Sink:
    assert isinstance(h.service.syslog, Sink)
    return h.service.syslog


def admin(h: Harness, action: str, kind: str, **kw: Any) -> Any:
    return h.run("Admin" + action, AdminRequest(action, kind, **kw), "root")


def create(h: Harness, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = admin(h, "Create", kind, document=doc).documents[0]
    return out


def enforce(h: Harness, kind: str, pid: str, *targets: Ref) -> None:
    for target in targets:
        admin(h, "Associate", kind, object_id=pid, target=target)
    doc = admin(h, "Get", kind, object_id=pid).documents[0]
    admin(h, "Edit", kind, document={**doc, "State": "Enforcing"})


def audit_policy(h: Harness, operations: list[str], destinations: list[str]) -> str:
    return str(create(h, "AuditPolicy", {
        "Name": f"audit-{len(h.store.tables.objects)}", "OperationType": operations,
        "EventType": ["Log"], "Destination": destinations})["PolicyId"])


def group(h: Harness, kind: str, *members: tuple[str, str]) -> str:
    gid = str(create(h, kind, {"Name": f"g-{len(h.store.tables.objects)}",
                               "Type": "Static"})["GroupId"])
    for member_kind, member in members:
        admin(h, "Associate", kind, object_id=gid, target=Ref(member_kind, member))
    return gid


def key_id(h: Harness, as_: str = "alice") -> str:
    return str(h.run("CreateKey", m.CreateKeyRequest(), as_).key.key_id)


# ---- audit policies on keys and clients ---------------------------------------------------

def test_a_key_groups_audit_policy_records_reads_of_its_keys_only(h: Harness) -> None:
    watched, other = key_id(h), key_id(h)
    kg = group(h, "KeyGroup", ("Key", watched))
    version = admin(h, "Get", "Key", object_id=watched).documents[0]["Version"]
    pid = audit_policy(h, ["AdminGet"], ["Local"])
    enforce(h, "AuditPolicy", pid, Ref("KeyGroup", kg))
    # auditing never changes a key's version (§4.1)
    assert admin(h, "Get", "Key", object_id=watched).documents[0]["Version"] == version
    before = len(h.audit(operation="AdminGet"))
    admin(h, "Get", "Key", object_id=watched)
    admin(h, "Get", "Key", object_id=other)
    got = h.audit(operation="AdminGet")[before:]
    assert [r["key_id"] for r in got] == [watched]  # the other key's read: not recorded


def test_a_client_groups_audit_policy_records_its_members_reads(h: Harness) -> None:
    alice = h.endpoint_id("alice")
    cg = group(h, "ClientGroup", ("Client", alice))
    pid = audit_policy(h, ["GetRandomBytes"], ["Local"])
    enforce(h, "AuditPolicy", pid, Ref("ClientGroup", cg))
    h.run("GetRandomBytes", m.GetRandomBytesRequest(8), "alice")
    h.run("GetRandomBytes", m.GetRandomBytesRequest(8), "carol")
    assert [r["actor_name"] for r in h.audit(operation="GetRandomBytes")] == ["alice"]


def test_policies_that_apply_together_combine_by_union(h: Harness) -> None:
    alice = h.endpoint_id("alice")
    local = audit_policy(h, ["GetRandomBytes"], ["Local"])
    syslog = audit_policy(h, ["*"], ["Syslog"])
    enforce(h, "AuditPolicy", local, Ref("Client", alice))
    enforce(h, "AuditPolicy", syslog, Ref("Client", alice))
    sink(h).sent.clear()
    h.run("GetRandomBytes", m.GetRandomBytesRequest(8), "alice")
    assert len(h.audit(operation="GetRandomBytes")) == 1 and \
        sink(h).operations() == ["GetRandomBytes"]
    # an object takes each audit policy once
    with pytest.raises(AlreadyExists, match="already applies"):
        admin(h, "Associate", "AuditPolicy", object_id=local, target=Ref("Client", alice))


def test_changes_and_authentication_failures_reach_both_destinations_whatever_policies_say(
        h: Harness) -> None:
    pid = audit_policy(h, ["GetRandomBytes"], ["Local"])  # says nothing of changes
    enforce(h, "AuditPolicy", pid, Ref("Realm", DEFAULT))
    sink(h).sent.clear()
    key = key_id(h)
    admin(h, "Edit", "Key", document={**admin(h, "Get", "Key", object_id=key).documents[0],
                                      "State": "Disabled"})
    admin(h, "Delete", "Key", object_id=key)
    h.run("GetRandomBytes", m.GetRandomBytesRequest(8), "alice")  # policy: local only
    h.run("GetKey", m.GetKeyRequest(key_id=key_id(h)), "alice")  # a read: as policies say
    with pytest.raises(PasswordRefused):
        h.run("GetRandomBytes", m.GetRandomBytesRequest(8), "alice",
              credential=callers.password("alice", "wrong-password!"))
    sent = sink(h).operations()
    assert sent[:3] == ["CreateKey", "AdminEdit", "AdminDelete"]
    assert "GetRandomBytes" in sent  # the wrong password: an authentication failure
    assert sent.count("CreateKey") == 2 and "GetKey" not in sent
    assert len(h.audit(operation="GetRandomBytes", result="Success")) == 1


def test_a_date_passing_is_a_state_change_audited_everywhere_once(h: Harness) -> None:
    pid = audit_policy(h, ["GetRandomBytes"], ["Local"])  # says nothing of key states
    enforce(h, "AuditPolicy", pid, Ref("Realm", DEFAULT))
    key = key_id(h)
    h.set_expiry(key, h.now + timedelta(minutes=10))
    h.clock.now += timedelta(minutes=11)
    sink(h).sent.clear()
    assert key_dates.announce_due(h.store, h.now, sink(h)) == 1  # type: ignore[arg-type]
    assert key_dates.announce_due(h.store, h.now, sink(h)) == 0  # type: ignore[arg-type]
    [record] = h.audit(key_id=key, operation="KeyDates")
    assert record["event"] == "KeyExpired" and record["result"] == "Success"
    assert [(e.event, e.key_id) for e in sink(h).sent] == [("KeyExpired", key)]


def test_no_audit_policy_sends_everything_to_syslog(h: Harness) -> None:
    sink(h).sent.clear()
    h.run("GetRandomBytes", m.GetRandomBytesRequest(8), "alice")
    assert sink(h).operations() == ["GetRandomBytes"]
    assert not h.audit(operation="GetRandomBytes")  # a read: not recorded locally


# ---- retention per client -------------------------------------------------------------------

def test_a_client_groups_retention_policy_limits_what_its_members_get(h: Harness) -> None:
    carol = h.endpoint_id("carol")
    key = key_id(h)
    cg = group(h, "ClientGroup", ("Client", carol))
    p = create(h, "RetentionPolicy", {"Name": "carol-30d", "TExpiration": "P30D",
                                      "TDisable": "P60D"})
    enforce(h, "RetentionPolicy", p["PolicyId"], Ref("ClientGroup", cg))
    version = admin(h, "Get", "Key", object_id=key).documents[0]["Version"]
    h.clock.now += timedelta(days=31)
    for_alice = h.run("GetKey", m.GetKeyRequest(key_id=key), "alice").keys[0]
    assert for_alice.state is KeyState.ACTIVE and for_alice.t_expired is None
    h.check_refused(KeyNotUsable, "GetKey", m.GetKeyRequest(key_id=key), "carol")
    for_carol = h.run("GetKey", m.GetKeyRequest(key_id=key, usage=KeyUsage.DECRYPT),
                      "carol").keys[0]
    assert for_carol.state is KeyState.EXPIRED and for_carol.value == for_alice.value
    h.clock.now += timedelta(days=30)
    h.check_refused(KeyNotUsable, "GetKey",
                    m.GetKeyRequest(key_id=key, usage=KeyUsage.DECRYPT), "carol")
    # the key itself did not change
    assert admin(h, "Get", "Key", object_id=key).documents[0]["Version"] == version


def test_a_clients_own_retention_and_its_groups_the_earliest_date_wins(h: Harness) -> None:
    carol = h.endpoint_id("carol")
    key = key_id(h)
    cg = group(h, "ClientGroup", ("Client", carol))
    own = create(h, "RetentionPolicy", {"Name": "own", "TExpiration": "P90D"})
    grp = create(h, "RetentionPolicy", {"Name": "grp", "TExpiration": "P10D"})
    enforce(h, "RetentionPolicy", own["PolicyId"], Ref("Client", carol))
    enforce(h, "RetentionPolicy", grp["PolicyId"], Ref("ClientGroup", cg))
    got = h.run("GetKey", m.GetKeyRequest(key_id=key), "carol").keys[0]
    assert got.t_expired is not None and (got.t_expired - got.created_at).days == 10


def test_update_lists_show_a_key_in_the_state_the_clients_retention_puts_it(
        h: Harness) -> None:
    carol = h.endpoint_id("carol")
    key = key_id(h)
    p = create(h, "RetentionPolicy", {"Name": "carol", "TDisable": "P1D"})
    enforce(h, "RetentionPolicy", p["PolicyId"], Ref("Client", carol))
    h.clock.now += timedelta(days=2)

    def listed(as_: str) -> Key:
        page = h.run("Enumeration.Enumerate", EnumerateRequest(
            KEYS, UpdateFilter("AllKeys", token=0), optimize=True, max_elements=10), as_)
        return next(k for _, k in page.items if isinstance(k, Key) and k.key_id == key)

    assert listed("carol").state is KeyState.DISABLED and listed("carol").t_disabled
    assert listed("alice").state is KeyState.ACTIVE


# ---- WRAPPING_TYPE --------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "mode"), [("Asymmetric", "aes-key-wrap-pad"),
                                             ("Symmetric", "cms-rsa-oaep"),
                                             ("Symmetric", "none"),
                                             ("Signature", "cms-auth-enveloped")])
def test_a_wrapping_type_that_does_not_fit_the_mode_is_refused(h: Harness, kind: str,
                                                               mode: str) -> None:
    before = unaudited(h.store.tables)
    err = h.check_refused(InvalidParameter, "AdminCreate", AdminRequest(
        "Create", "WrappingPolicy", document={"Name": "w", "WrappingType": kind,
                                              "WrappingMode": mode}), "root")
    assert kind in err.reason and (mode in err.reason or kind == "Signature")
    assert unaudited(h.store.tables) == before


def test_an_edit_to_a_mismatch_is_refused_and_changes_nothing(h: Harness) -> None:
    p = create(h, "WrappingPolicy", {"Name": "w", "WrappingType": "Symmetric",
                                     "WrappingMode": CMS_KEK})
    err = h.check_refused(InvalidParameter, "AdminEdit", AdminRequest(
        "Edit", "WrappingPolicy", document={**p, "WrappingMode": "cms-rsa-oaep"}), "root")
    assert err.supported == ("aes-key-wrap", "aes-key-wrap-pad", "cms-kek",
                             "cms-auth-enveloped")
    assert admin(h, "Get", "WrappingPolicy", object_id=p["PolicyId"]).documents[0] == p


def test_delivery_wraps_only_under_a_key_of_the_policys_type(h: Harness,
                                                             tmp_path: Path) -> None:
    holder = make_holder("alice-cert", tmp_path)
    h.clock.now = holder.certificate.not_valid_before_utc.replace(tzinfo=None) + \
        timedelta(hours=1)  # while the certificate is valid
    der = holder.certificate.public_bytes(serialization.Encoding.DER)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("alice-cert", certificate=der),)), "alice")
    key = h.run("CreateKey", m.CreateKeyRequest(), "alice").key.key_id
    p = create(h, "WrappingPolicy", {"Name": "kek-only", "WrappingType": "Symmetric",
                                     "WrappingMode": CMS_AUTH})
    enforce(h, "WrappingPolicy", p["PolicyId"], Ref("Key", key))
    # cms-auth-enveloped could go to alice's certificate, but the policy says Symmetric
    err = h.check_refused(WrappingUnavailable, "GetKey", m.GetKeyRequest(key_id=key),
                          "alice")
    assert "Symmetric" in err.reason and err.supported == (CMS_AUTH,)
    kek = os.urandom(32)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("kek-1", symmetric_key=kek),)), "alice")
    blob = h.run("GetKey", m.GetKeyRequest(key_id=key), "alice").keys[0].blob
    assert blob.wrapping_type == CMS_AUTH and blob.wrapping_key_id == "kek-1"


def test_a_policy_stored_inconsistent_delivers_nothing(h: Harness) -> None:
    kek = os.urandom(32)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("kek-1", symmetric_key=kek),)), "alice")
    key = key_id(h)
    p = create(h, "WrappingPolicy", {"Name": "w", "WrappingType": "Symmetric",
                                     "WrappingMode": AES_KWP})
    enforce(h, "WrappingPolicy", p["PolicyId"], Ref("Key", key))
    # as a store made before the check may hold it
    h.store.tables.objects[("WrappingPolicy", p["PolicyId"])].obj.body["WrappingType"] = \
        "Asymmetric"
    err = h.check_refused(WrappingUnavailable, "GetKey", m.GetKeyRequest(key_id=key),
                          "alice")
    assert p["PolicyId"] in err.reason


def test_a_client_group_carries_a_wrapping_policy(h: Harness) -> None:
    alice = h.endpoint_id("alice")
    kek = os.urandom(32)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("kek-1", symmetric_key=kek),)), "alice")
    key = key_id(h)
    cg = group(h, "ClientGroup", ("Client", alice))
    p = create(h, "WrappingPolicy", {"Name": "group-kek", "WrappingType": "Symmetric",
                                     "WrappingMode": CMS_KEK})
    enforce(h, "WrappingPolicy", p["PolicyId"], Ref("ClientGroup", cg))
    blob = h.run("GetKey", m.GetKeyRequest(key_id=key), "alice").keys[0].blob
    assert blob.wrapping_type == CMS_KEK  # not the KEK's default, aes-key-wrap-pad
    # the client's own policy prevails over its group's
    own = create(h, "WrappingPolicy", {"Name": "own", "WrappingType": "Symmetric",
                                       "WrappingMode": AES_KWP})
    enforce(h, "WrappingPolicy", own["PolicyId"], Ref("Client", alice))
    blob = h.run("GetKey", m.GetKeyRequest(key_id=key), "alice").keys[0].blob
    assert blob.wrapping_type == AES_KWP and aes_key_unwrap_with_padding(kek, blob.data)
    admin(h, "Disassociate", "WrappingPolicy", object_id=own["PolicyId"],
          target=Ref("Client", alice))
    # two groups with different policies: ambiguous, refused
    cg2 = group(h, "ClientGroup", ("Client", alice))
    other = create(h, "WrappingPolicy", {"Name": "other", "WrappingType": "Symmetric",
                                         "WrappingMode": AES_KWP})
    enforce(h, "WrappingPolicy", other["PolicyId"], Ref("ClientGroup", cg2))
    h.check_refused(AmbiguousReference, "GetKey", m.GetKeyRequest(key_id=key), "alice")
