"""§6.11/§6.12 custom update types: GetUpdateList and UpdatePending about administered
objects (policies by kind or all of them, groups, endpoint types), with the realm Read
right deciding who sees what, exactly like keys; unknown types stay CannotProcessFilter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kms_ws.client import KmsClient, KmsFault, RemovedObject, UpdatedObject

from ..support import db
from ..support import wsman as W
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import ValidatingPlugin, post
from .test_wsman_eventing import FAST, Acks, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("custom") / "data", config=FAST) as s:
        yield s


@dataclass
class Setup:
    admin: KmsClient
    reader: KmsClient  # Read in `realm`
    outsider: KmsClient  # rights elsewhere only
    reader_auth: tuple[str, str]
    realm: str
    elsewhere: str


@pytest.fixture()
def setup(srv: ServerProcess) -> Iterator[Setup]:
    realm, elsewhere = (f"realm://custom/{uuid.uuid4().hex[:8]}" for _ in range(2))
    with KmsClient(srv.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        clients = []
        for r in (realm, elsewhere):
            admin.admin_create("Realm", {"RealmId": r})
            name, pw = f"ct-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
            cid = admin.register_endpoint("Client", name, password=pw, realms=(r,))
            admin.admin_associate("Client", cid, "Realm", r, rights=["Read"])
            clients.append((name, pw))
        (rn, rp), (on, op) = clients
        with KmsClient(srv.url, rn, rp, plugins=[ValidatingPlugin()]) as reader, \
                KmsClient(srv.url, on, op, plugins=[ValidatingPlugin()]) as outsider:
            yield Setup(admin, reader, outsider, (rn, rp), realm, elsewhere)


def policy(s: Setup, kind: str, realm: str, **fields: object) -> str:
    doc = s.admin.admin_create(kind, {"Name": f"p-{uuid.uuid4().hex[:10]}", **fields,
                                      "RealmAssociations": {"RealmAssociation": [
                                          {"Realm": realm}]}})
    return str(doc["PolicyId"])


Listed = UpdatedObject | RemovedObject


def listed(client: KmsClient, update_type: str, tokens: dict[str, int] | None = None,
           ) -> tuple[list[Listed], dict[str, int]]:
    """What a GetUpdateList of a custom type yields (two items a Pull), and its tokens."""
    gen = client.get_update_list(update_type, tokens, max_elements=2)
    items: list[Listed] = []
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return items, stop.value
        assert isinstance(item, (UpdatedObject, RemovedObject)), \
            "a custom type lists objects (and their removals), not keys"
        items.append(item)


def test_a_policy_kind_is_listed_to_readers_of_its_realm_only(setup: Setup) -> None:
    s = setup
    mine = policy(s, "RetentionPolicy", s.realm, TExpiration="P90D")
    theirs = policy(s, "RetentionPolicy", s.elsewhere, TExpiration="P30D")
    policy(s, "CachingPolicy", s.realm, Rule=[{"CachingType": "Memory",
                                               "TCacheInterval": 600}])
    s.admin.create_key(friendly_name="not-a-policy")
    items, tokens = listed(s.reader, "RetentionPolicy")
    assert [(i.kind, i.document["PolicyId"]) for i in items] == [("RetentionPolicy", mine)]
    assert items[0].document["TExpiration"] == "P90D"
    assert tokens["RetentionPolicy"] > 0
    others, _ = listed(s.outsider, "RetentionPolicy")
    assert [i.document["PolicyId"] for i in others] == [theirs]
    # from the tokens: nothing new, then only what changed
    assert listed(s.reader, "RetentionPolicy", tokens)[0] == []
    doc = s.admin.admin_get("RetentionPolicy", mine)
    s.admin.admin_edit("RetentionPolicy", {**doc, "TExpiration": "P120D"})
    again, newer = listed(s.reader, "RetentionPolicy", tokens)
    assert [(i.document["PolicyId"], i.document["TExpiration"]) for i in again] == \
        [(mine, "P120D")]
    assert newer["RetentionPolicy"] > tokens["RetentionPolicy"]


def test_policies_lists_every_policy_kind_and_no_keys(setup: Setup) -> None:
    s = setup
    made = {policy(s, "RetentionPolicy", s.realm, TExpiration="P9D"): "RetentionPolicy",
            policy(s, "CachingPolicy", s.realm, Rule=[{"CachingType": "Memory",
                                                       "TCacheInterval": 60}]):
            "CachingPolicy"}
    items, tokens = listed(s.reader, "Policies")
    assert {i.document["PolicyId"]: i.kind for i in items} == made
    assert set(tokens) == {"Policies"}
    keys = list(s.reader.get_update_list("AllKeys"))
    assert all(not isinstance(k, UpdatedObject) for k in keys)


def test_an_object_joining_a_realm_is_listed_to_its_readers(setup: Setup) -> None:
    s = setup
    moved = policy(s, "RetentionPolicy", s.elsewhere, TExpiration="P1D")
    before, tokens = listed(s.reader, "RetentionPolicy")
    assert moved not in [i.document["PolicyId"] for i in before]
    s.admin.admin_associate("RetentionPolicy", moved, "Realm", s.realm)
    after, _ = listed(s.reader, "RetentionPolicy", tokens)
    assert [i.document["PolicyId"] for i in after] == [moved]


def test_unknown_types_and_pep_scopes_cannot_be_processed(srv: ServerProcess,
                                                          setup: Setup) -> None:
    for bad in ("Gadgets", "Realm"):
        with pytest.raises(KmsFault) as err:
            list(setup.reader.get_update_list(bad))
        assert err.value.subcode == "wsen:CannotProcessFilter"
    pep = str(uuid.uuid4())
    r, _ = post(srv.url, W.enumerate_(W.optimized(5) + W.update_filter("Policies", pep=pep)),
                  auth=setup.reader_auth)
    assert r.status_code == 400 and "wsen:CannotProcessFilter" in r.text


def test_enumeration_modes_name_the_object_resource(srv: ServerProcess, setup: Setup) -> None:
    s = setup
    made = policy(s, "RetentionPolicy", s.realm, TExpiration="P2D")
    extra = "<wsman:EnumerationMode>EnumerateObjectAndEPR</wsman:EnumerationMode>"
    r, env = post(srv.url, W.enumerate_(W.optimized(10, extra) + W.update_filter(
        "RetentionPolicy")), auth=s.reader_auth)
    assert r.status_code == 200
    items = env.findall("s:Body/wsen:EnumerateResponse/wsman:Items/wsman:Item", W.NS)
    assert [i.findtext("kms:RetentionPolicy/kms:PolicyId", namespaces=W.NS)
            for i in items] == [made]
    assert items[0].findtext("wsa:EndpointReference/wsa:ReferenceParameters/"
                             "wsman:ResourceURI", namespaces=W.NS) == f"{W.KMS}/RetentionPolicy"
    assert items[0].findtext("wsa:EndpointReference/wsa:ReferenceParameters/"
                             "wsman:SelectorSet/wsman:Selector[@Name='PolicyId']",
                             namespaces=W.NS) == made


def test_a_subscription_to_policies_is_told_of_policy_changes_only(srv: ServerProcess,
                                                                  setup: Setup) -> None:
    s = setup
    with s.reader.listener(Acks(), inspect=validate_envelope) as listener, \
            s.outsider.listener(Acks(), inspect=validate_envelope) as outside:
        sub = s.reader.subscribe(listener.url, "Policies")
        other = s.outsider.subscribe(outside.url, "Policies")
        s.admin.create_key(friendly_name="a-key-is-not-a-policy")
        made = policy(s, "CachingPolicy", s.realm, Rule=[{"CachingType": "Memory",
                                                          "TCacheInterval": 30}])
        assert listener.wait_for(1, 15), "no UpdatePending for a new policy"
        notice = listener.received[0]
        assert notice.type == "Policies" and set(notice.tokens) == {"Policies"}
        assert db.count(srv.data_dir, "pending_updates") >= 1
        items, _ = listed(s.reader, "Policies", {"Policies": notice.tokens["Policies"] - 1})
        assert [i.document["PolicyId"] for i in items] == [made]
        # reaching the tokens by GetUpdateList acknowledges: nothing stays pending
        assert eventually(lambda: db.count(srv.data_dir, "pending_updates") == 0)
        assert outside.received == [], "told about a policy in a realm it cannot read"
        s.reader.unsubscribe(sub)
        s.outsider.unsubscribe(other)


def test_key_templates_are_listed_and_notified_like_keys(srv: ServerProcess,
                                                         setup: Setup) -> None:
    s = setup
    with s.reader.listener(Acks(), inspect=validate_envelope) as listener:
        sub = s.reader.subscribe(listener.url, "KeyTemplate")
        tpl = s.admin.admin_create("KeyTemplate", {
            "FriendlyName": f"t-{uuid.uuid4().hex[:10]}", "KeyLength": 128,
            "CipherType": "2.16.840.1.101.3.4.1.6",
            "RealmAssociations": {"RealmAssociation": [{"Realm": s.realm}]}})
        assert listener.wait_for(1, 15), "no UpdatePending for a new key template"
        assert listener.received[0].type == "KeyTemplate"
        items, tokens = listed(s.reader, "KeyTemplate",
                               {"KeyTemplate": listener.received[0].tokens["KeyTemplate"] - 1})
        assert [(i.kind, i.document["TemplateId"]) for i in items] == \
            [("KeyTemplate", tpl["TemplateId"])]
        assert eventually(lambda: db.count(srv.data_dir, "pending_updates") == 0)
        assert tpl["TemplateId"] not in [i.document["TemplateId"]
                                         for i in listed(s.outsider, "KeyTemplate")[0]]
        # an edit is a new version: listed again from the tokens, and notified
        doc = s.admin.admin_get("KeyTemplate", tpl["TemplateId"])
        s.admin.admin_edit("KeyTemplate", {**doc, "Description": "edited"})
        assert listener.wait_for(2, 15), "no UpdatePending for the edit"
        again, _ = listed(s.reader, "KeyTemplate", tokens)
        assert [i.document.get("Description") for i in again] == ["edited"]
        s.reader.unsubscribe(sub)
