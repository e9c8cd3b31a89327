"""§6.12 custom update types: a deleted object is listed as a kms:RemovedObject after the
caller's token (in change order with the changed objects), to callers with Read in a
realm the object was in, and its subscribers are told; a store made under schema 10
gains the removals on upgrade."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kms_ws.client import KmsClient, RemovedObject, UpdatedObject
from kms_ws.store.migrations import LATEST

from ..support import db
from ..support import wsman as W
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess
from ..support.validating import ValidatingPlugin, post
from .test_wsman_custom_update_types import Listed, Setup, listed, policy, setup, srv  # noqa: F401
from .test_wsman_eventing import FAST, Acks

pytestmark = pytest.mark.e2e

def removed(items: list[Listed]) -> list[tuple[str, str]]:
    return [(i.kind, i.object_id) for i in items if isinstance(i, RemovedObject)]


def template(s: Setup, realm: str) -> str:
    return str(s.admin.admin_create("KeyTemplate", {
        "FriendlyName": f"t-{uuid.uuid4().hex[:10]}", "KeyLength": 128,
        "CipherType": "2.16.840.1.101.3.4.1.6",
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})["TemplateId"])


def test_a_client_catching_up_learns_of_deleted_policies_and_templates(
        setup: Setup) -> None:  # noqa: F811
    s = setup
    pid = policy(s, "RetentionPolicy", s.realm, TExpiration="P90D")
    kept = policy(s, "CachingPolicy", s.realm, Rule=[{"CachingType": "Memory",
                                                      "TCacheInterval": 60}])
    tid = template(s, s.realm)
    have, tokens = listed(s.reader, "Policies")
    assert {i.document["PolicyId"] for i in have if isinstance(i, UpdatedObject)} == {pid, kept}
    _, ttokens = listed(s.reader, "KeyTemplate")
    _, outsider_tokens = listed(s.outsider, "Policies")
    before = datetime.now(UTC) - timedelta(seconds=5)
    s.admin.admin_delete("RetentionPolicy", pid)
    s.admin.admin_delete("KeyTemplate", tid)
    items, newer = listed(s.reader, "Policies", tokens)
    assert items == [RemovedObject("RetentionPolicy", pid, items[0].removed_at)]
    assert before <= items[0].removed_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert newer["Policies"] > tokens["Policies"]
    assert listed(s.reader, "Policies", newer)[0] == [], "the new tokens list nothing"
    # the kind's own type lists it too; another kind's does not
    assert removed(listed(s.reader, "RetentionPolicy", {"RetentionPolicy": tokens[
        "Policies"]})[0]) == [("RetentionPolicy", pid)]
    assert removed(listed(s.reader, "CachingPolicy", {"CachingPolicy": tokens[
        "Policies"]})[0]) == []
    titems, tnewer = listed(s.reader, "KeyTemplate", ttokens)
    assert removed(titems) == [("KeyTemplate", tid)] and len(titems) == 1
    assert listed(s.reader, "KeyTemplate", tnewer)[0] == []
    # no Read in the realm the objects were in: no removal, from its tokens or from zero
    assert listed(s.outsider, "Policies", outsider_tokens)[0] == []
    assert removed(listed(s.outsider, "Policies")[0]) == []
    assert removed(listed(s.outsider, "KeyTemplate")[0]) == []


def test_a_re_created_id_is_listed_after_its_removal(setup: Setup) -> None:  # noqa: F811
    s = setup
    pid = policy(s, "RetentionPolicy", s.realm, TExpiration="P3D")
    _, tokens = listed(s.reader, "RetentionPolicy")
    s.admin.admin_delete("RetentionPolicy", pid)
    s.admin.admin_create("RetentionPolicy", {
        "PolicyId": pid, "Name": f"p-{uuid.uuid4().hex[:10]}", "TExpiration": "P4D",
        "RealmAssociations": {"RealmAssociation": [{"Realm": s.realm}]}})
    items, newer = listed(s.reader, "RetentionPolicy", tokens)
    assert [(type(i).__name__, i.kind) for i in items] == [
        ("RemovedObject", "RetentionPolicy"), ("UpdatedObject", "RetentionPolicy")]
    assert isinstance(items[1], UpdatedObject) and items[1].document["PolicyId"] == pid
    assert items[1].document["TExpiration"] == "P4D"
    s.admin.admin_delete("RetentionPolicy", pid)
    again, _ = listed(s.reader, "RetentionPolicy", newer)
    assert removed(again) == [("RetentionPolicy", pid)] and len(again) == 1


def test_pages_count_removals_and_epr_modes_carry_them(srv: ServerProcess,  # noqa: F811
                                                       setup: Setup) -> None:  # noqa: F811
    s = setup
    gone, live = (policy(s, "RetentionPolicy", s.realm, TExpiration=f"P{n}D") for n in (5, 6))
    _, tokens = listed(s.reader, "RetentionPolicy")
    doc = s.admin.admin_get("RetentionPolicy", live)
    s.admin.admin_delete("RetentionPolicy", gone)
    s.admin.admin_edit("RetentionPolicy", {**doc, "TExpiration": "P7D"})
    flt = W.update_filter("RetentionPolicy", tokens["RetentionPolicy"])
    r, env = post(srv.url, W.enumerate_(W.optimized(10) + flt, extra=(
        "<wsman:RequestTotalItemsCountEstimate/>")), auth=s.reader_auth)
    assert r.status_code == 200
    assert env.findtext("s:Header/wsman:TotalItemsCountEstimate", namespaces=W.NS) == "2"
    box = env.find("s:Body/wsen:EnumerateResponse/wsman:Items", W.NS)
    assert [c.tag.split("}")[1] for c in box] == ["RemovedObject", "RetentionPolicy"]
    assert box[0].findtext("kms:ObjectId", namespaces=W.NS) == gone
    assert box[0].findtext("kms:Kind", namespaces=W.NS) == "RetentionPolicy"
    # one item per Pull: the removal, then the changed object
    r, env = post(srv.url, W.enumerate_(W.optimized(1) + flt), auth=s.reader_auth)
    ctx = env.findtext("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext",
                       namespaces=W.NS)
    assert env.find("s:Body/wsen:EnumerateResponse/wsman:Items/kms:RemovedObject",
                    W.NS) is not None
    r, env = post(srv.url, W.pull(ctx, 1), auth=s.reader_auth)
    assert env.findtext("s:Body/wsen:PullResponse/wsen:Items/kms:RetentionPolicy/"
                        "kms:PolicyId", namespaces=W.NS) == live
    for mode in ("EnumerateEPR", "EnumerateObjectAndEPR"):
        extra = f"<wsman:EnumerationMode>{mode}</wsman:EnumerationMode>"
        r, env = post(srv.url, W.enumerate_(W.optimized(10, extra) + flt),
                      auth=s.reader_auth)
        assert r.status_code == 200, r.text
        box = env.find("s:Body/wsen:EnumerateResponse/wsman:Items", W.NS)
        first, second = (box if mode == "EnumerateEPR" else box.findall("wsman:Item", W.NS))
        # a removed object has no EPR: its item is the kms:RemovedObject alone
        gone_item = first if mode == "EnumerateEPR" else first[0]
        assert gone_item.tag == f"{{{W.KMS}}}RemovedObject" and len(first) in (3, 1)
        assert gone_item.findtext("kms:ObjectId", namespaces=W.NS) == gone
        assert first.find(".//wsa:EndpointReference", W.NS) is None
        assert second.findtext(".//wsman:Selector[@Name='PolicyId']",
                               namespaces=W.NS) == live


def test_a_subscriber_of_policies_is_told_of_a_deletion(srv: ServerProcess,  # noqa: F811
                                                        setup: Setup) -> None:  # noqa: F811
    s = setup
    pid = policy(s, "RetentionPolicy", s.realm, TExpiration="P8D")
    with s.reader.listener(Acks(), inspect=validate_envelope) as listener, \
            s.outsider.listener(Acks(), inspect=validate_envelope) as outside:
        sub = s.reader.subscribe(listener.url, "Policies")
        other = s.outsider.subscribe(outside.url, "Policies")
        s.admin.admin_delete("RetentionPolicy", pid)
        assert listener.wait_for(1, 15), "no UpdatePending for a deleted policy"
        notice = listener.received[0]
        assert notice.type == "Policies"
        items, _ = listed(s.reader, "Policies", {"Policies": notice.tokens["Policies"] - 1})
        assert removed(items) == [("RetentionPolicy", pid)]
        assert outside.received == [], "told about a policy in a realm it cannot read"
        s.reader.unsubscribe(sub)
        s.outsider.unsubscribe(other)


def test_a_schema_10_store_lists_deletions_after_upgrade(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = ServerProcess(tmp_path / "data", config=FAST)
    old.bootstrap()
    con = sqlite3.connect(old.data_dir / "kms.db")
    with con:  # back to what schema 10 left on disk
        con.execute("DROP TABLE removal_realms")
        con.execute("DROP TABLE removals")
        con.execute("UPDATE kms_meta SET value = '10' WHERE name = 'schema_version'")
    con.close()
    old.start()
    try:
        realm = f"realm://upgrade/{uuid.uuid4().hex[:8]}"
        with KmsClient(old.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
            admin.admin_create("Realm", {"RealmId": realm})
            name, pw = f"up-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
            cid = admin.register_endpoint("Client", name, password=pw, realms=(realm,))
            admin.admin_associate("Client", cid, "Realm", realm, rights=["Read"])
            pid = str(admin.admin_create("KeyGroup", {
                "Name": f"g-{uuid.uuid4().hex[:8]}", "Type": "Static",
                "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})["GroupId"])
            with KmsClient(old.url, name, pw, plugins=[ValidatingPlugin()]) as client:
                _, tokens = listed(client, "KeyGroup")
                admin.admin_delete("KeyGroup", pid)
                items, _ = listed(client, "KeyGroup", tokens)
        assert removed(items) == [("KeyGroup", pid)]
        assert db.count(old.data_dir, "removals", kind="KeyGroup") == 1
        assert db.count(old.data_dir, "kms_meta", name="schema_version",
                        value=str(LATEST)) == 1
    finally:
        assert old.stop() == 0, old.stderr_text()
