"""§4.9/§5.1 on the in-memory store: selection rules (ranges, CIDR, prefixes, globs) in
key-assignment policies and dynamic key groups, the most specific match winning, bad
rules refused at AdminCreate/AdminEdit; and the binding query clients may make
(GetBindings, GetKey AllBoundKeys for Decrypt), Read needed, nothing hinted at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kms_ws.domain.errors import InvalidParameter, KeyNotFound, NotFound, PermissionDenied
from kms_ws.domain.model import DataSet, Key, KeyUsage
from kms_ws.domain.realms import Right
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import AdminRequest, Ref
from kms_ws.service.ws_messages import EnumerateRequest, ResourceName, UpdateFilter

from .conftest import DEFAULT, OTHER, Harness

READ = frozenset({Right.READ, Right.REFERENCE})
REFERENCE = frozenset({Right.REFERENCE})


@pytest.fixture()
def h() -> Harness:
    """root (an administrator) and alice, both with every right in the default realm;
    reader (Read there), user (Reference only there), stranger (Read in another realm)."""
    harness = Harness()
    harness.add_realm()
    harness.add_realm(OTHER)
    harness.add("root", admin=True)
    harness.add("alice")
    harness.add("reader", grants={DEFAULT: READ})
    harness.add("user", grants={DEFAULT: REFERENCE})
    harness.add("stranger", grants={OTHER: READ})
    return harness


def admin(h: Harness, action: str, kind: str, **kw: Any) -> Any:
    return h.run("Admin" + action, AdminRequest(action, kind, **kw), "root")


def assignment(h: Harness, name: str, *conditions: dict[str, Any]) -> str:
    p = admin(h, "Create", "KeyAssignmentPolicy", document={
        "Name": name, "Condition": list(conditions), "Generation": "Shared"}).documents[0]
    admin(h, "Associate", "KeyAssignmentPolicy", object_id=p["PolicyId"],
          target=Ref("Realm", DEFAULT))
    doc = admin(h, "Get", "KeyAssignmentPolicy", object_id=p["PolicyId"]).documents[0]
    admin(h, "Edit", "KeyAssignmentPolicy", document={**doc, "State": "Enforcing"})
    h.clock.now += timedelta(seconds=1)  # policies made later are younger
    return str(p["PolicyId"])


def by_data(h: Harness, *pairs: tuple[str, str], as_: str = "alice") -> Key:
    req = m.GetKeyRequest(datasets=tuple(DataSet(n, v) for n, v in pairs),
                          usage=KeyUsage.ENCRYPT)
    key: Key = h.run("GetKey", req, as_).keys[0]
    return key


def test_the_most_specific_assignment_policy_wins(h: Harness) -> None:
    prefix = assignment(h, "A-prefix", {"Name": "volume", "Prefix": "A"})
    wide = assignment(h, "A-all", {"Name": "volume", "Range": {"From": "A00000",
                                                               "To": "A99999"}})
    narrow = assignment(h, "A0", {"Name": "volume", "Range": {"From": "A00000",
                                                              "To": "A09999"}})
    exact = assignment(h, "one", {"Name": "volume", "Value": "A00007"})
    assert by_data(h, ("volume", "A00007")).assignment_policy_id == exact
    assert by_data(h, ("volume", "A00500")).assignment_policy_id == narrow
    assert by_data(h, ("volume", "A50000")).assignment_policy_id == wide
    assert by_data(h, ("volume", "AX")).assignment_policy_id == prefix
    # no policy selects it: GetKey by data finds no key and makes none
    h.check_refused(KeyNotFound, "GetKey", m.GetKeyRequest(
        datasets=(DataSet("volume", "B00001"),), usage=KeyUsage.ENCRYPT))
    # an equally specific, younger policy does not take the volumes over
    assignment(h, "A0-again", {"Name": "volume", "Range": {"From": "A00000", "To": "A09999"}})
    assert by_data(h, ("volume", "A00501")).assignment_policy_id == narrow


def test_cidr_selects_server_addresses(h: Harness) -> None:
    lan = assignment(h, "lan", {"Name": "server_ip", "Cidr": "10.1.0.0/16"})
    rack = assignment(h, "rack", {"Name": "server_ip", "Cidr": "10.1.7.0/24"})
    v6 = assignment(h, "v6", {"Name": "server_ip", "Cidr": "2001:db8::/32"})
    assert by_data(h, ("server_ip", "10.1.7.20")).assignment_policy_id == rack
    assert by_data(h, ("server_ip", "10.1.9.20")).assignment_policy_id == lan
    assert by_data(h, ("server_ip", "2001:db8::7")).assignment_policy_id == v6
    shared = by_data(h, ("server_ip", "10.1.9.21"))
    assert shared.key_id == by_data(h, ("server_ip", "10.1.200.1")).key_id  # one pool key


@pytest.mark.parametrize(("condition", "says"), [
    ({"Name": "volume", "Range": {"From": "A09999", "To": "A00000"}}, "empty"),
    ({"Name": "volume", "Range": {"From": "A0000", "To": "A09999"}}, "same length"),
    ({"Name": "server_ip", "Cidr": "10.1.0.1/16"}, "host bits"),
    ({"Name": "block", "Range": {"From": "0", "To": "1" + "0" * 40}}, "40 digits"),
])
def test_bad_rules_are_refused_and_change_nothing(h: Harness, condition: dict[str, Any],
                                                  says: str) -> None:
    doc = {"Name": "bad", "Condition": [condition], "Generation": "Shared"}
    exc = h.check_refused(InvalidParameter, "AdminCreate",
                          AdminRequest("Create", "KeyAssignmentPolicy", document=doc), "root",
                          code="E_INVALID_PARAMETER")
    assert says in exc.reason and exc.reason.startswith(f"condition {condition['Name']}:")
    # the same rule in an edit of a good policy, or in a dynamic key group
    good = admin(h, "Create", "KeyAssignmentPolicy", document={
        "Name": "good", "Condition": [{"Name": "volume", "Prefix": "A"}],
        "Generation": "Shared"}).documents[0]
    h.check_refused(InvalidParameter, "AdminEdit", AdminRequest(
        "Edit", "KeyAssignmentPolicy", document={**good, "Condition": [condition]}), "root")
    assert admin(h, "Get", "KeyAssignmentPolicy",
                 object_id=good["PolicyId"]).documents[0]["Condition"] == [
        {"Name": "volume", "Prefix": "A"}]
    rule = {k: v for k, v in condition.items() if k != "Name"} | {"Attribute": "volume"}
    h.check_refused(InvalidParameter, "AdminCreate", AdminRequest("Create", "KeyGroup", document={
        "Name": "g", "Type": "Dynamic", "Rule": [rule]}), "root")


def test_most_specific_key_group_decides_the_caching_policy(h: Harness) -> None:
    def group(name: str, rule: dict[str, Any], interval: int) -> None:
        g = admin(h, "Create", "KeyGroup", document={
            "Name": name, "Type": "Dynamic", "Rule": [rule]}).documents[0]
        p = admin(h, "Create", "CachingPolicy", document={
            "Name": name + "-caching",
            "Rule": [{"CachingType": "Memory", "TCacheInterval": interval}]}).documents[0]
        admin(h, "Associate", "CachingPolicy", object_id=p["PolicyId"],
              target=Ref("KeyGroup", g["GroupId"]))
        doc = admin(h, "Get", "CachingPolicy", object_id=p["PolicyId"]).documents[0]
        admin(h, "Edit", "CachingPolicy", document={**doc, "State": "Enforcing"})
        h.clock.now += timedelta(seconds=1)

    group("any-volume", {"Pattern": "A.*", "Attribute": "volume"}, 60)  # oldest
    group("blocks", {"Range": {"From": "0", "To": "4294967296"}, "Attribute": "volume"}, 70)
    group("first-slot", {"Range": {"From": "A00000", "To": "A09999"}, "Attribute": "volume"},
          120)
    group("one-tape", {"Value": "A00042", "Attribute": "volume"}, 300)

    def t_cached(volume: str) -> int:
        key = h.run("CreateKey", m.CreateKeyRequest(datasets=(DataSet("volume", volume),)),
                    "alice").key
        got: Key = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id), "alice").keys[0]
        return got.t_cached

    assert t_cached("A00042") == 300  # exact beats every range and the pattern
    assert t_cached("A00043") == 120  # the narrow range beats the pattern
    assert t_cached("A50000") == 60  # only the pattern selects it
    assert t_cached("77") == 70
    # GetUpdateList pages resolve it the same way (service.caching, a page at once)
    page = h.run("Enumeration.Enumerate", EnumerateRequest(
        ResourceName("Key", "Key"), UpdateFilter("AllKeys"), optimize=True,
        max_elements=10), "alice")
    assert [k.t_cached for _, k in page.items] == [300, 120, 60, 70]


def _bound(h: Harness) -> tuple[Key, Key]:
    """Two keys that protected tape T1, the second bound a minute later."""
    old = h.run("CreateKey", m.CreateKeyRequest(datasets=(DataSet("volume", "T1"),)),
                "alice").key
    h.clock.now += timedelta(minutes=1)
    new = h.run("CreateKey", m.CreateKeyRequest(datasets=(DataSet("volume", "T1"),
                                                          DataSet("pool", "P"))), "alice").key
    return old, new


def test_a_client_with_read_lists_the_keys_of_a_data_set_newest_first(h: Harness) -> None:
    old, new = _bound(h)
    res = h.run("GetBindings", m.BindingQuery(dataset_name="volume", dataset_value="T1"),
                "reader")
    assert [b["key_id"] for b in res.bindings] == [new.key_id, old.key_id]
    assert res.bindings[0]["at"] > res.bindings[1]["at"] and not res.more
    cut = h.run("GetBindings", m.BindingQuery(dataset_name="volume", dataset_value="T1",
                                              max_records=1), "reader")
    assert [b["key_id"] for b in cut.bindings] == [new.key_id] and cut.more
    by_key = h.run("GetBindings", m.BindingQuery(key_id=new.key_id), "reader")
    assert {(b["name"], b["value"]) for b in by_key.bindings} == {("volume", "T1"),
                                                                  ("pool", "P")}
    # GetKey by data for Decrypt: every key that protected the tape, newest first
    keys = h.run("GetKey", m.GetKeyRequest(datasets=(DataSet("volume", "T1"),),
                                           usage=KeyUsage.DECRYPT, all_bound=True),
                 "reader").keys
    assert [(k.key_id, k.value) for k in keys] == [(new.key_id, new.value),
                                                   (old.key_id, old.value)]
    h.check_refused(InvalidParameter, "GetKey", m.GetKeyRequest(
        datasets=(DataSet("volume", "T1"),), usage=KeyUsage.ENCRYPT, all_bound=True),
        "reader")


def test_without_read_the_query_is_refused_and_hints_at_nothing(h: Harness) -> None:
    old, _ = _bound(h)
    for req in (m.BindingQuery(dataset_name="volume", dataset_value="T1"),
                m.BindingQuery(dataset_name="volume", dataset_value="never-bound"),
                m.BindingQuery(key_id=old.key_id)):
        exc = h.check_refused(PermissionDenied, "GetBindings", req, "user",
                              code="E_PERMISSION_DENIED")
        assert "Read" in exc.reason and old.key_id not in exc.reason
    h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(
        datasets=(DataSet("volume", "T1"),), usage=KeyUsage.DECRYPT, all_bound=True), "user")
    # Read elsewhere: the same (empty) answer whether or not the data set is bound here
    for value in ("T1", "never-bound"):
        res = h.run("GetBindings", m.BindingQuery(dataset_name="volume", dataset_value=value),
                    "stranger")
        assert res.bindings == () and not res.more
        keys = h.run("GetKey", m.GetKeyRequest(datasets=(DataSet("volume", value),),
                                               usage=KeyUsage.DECRYPT, all_bound=True),
                     "stranger").keys
        assert keys == ()
    # a key it holds no right on does not exist for it, as an unknown id does not
    unknown = "00000000-0000-4000-8000-000000000000"
    for key_id in (old.key_id, unknown):
        exc = h.check_refused(NotFound, "GetBindings", m.BindingQuery(key_id=key_id),
                              "stranger")
        assert exc.error_code == "E_NOT_FOUND" and exc.reason == f"no key {key_id}"
