"""§4.9 selection rules against a real server: key-assignment policies and dynamic key
groups select data sets by exact value, prefix, glob, numeric and alphanumeric range and
CIDR network (schemas/kms.xsd kms:SelectionRule, kms:PatternRule); the most specific
match wins, an exact tie goes to the oldest policy; a bad range or network is a precise
fault at AdminCreate/AdminEdit that changes nothing and is audited. The CLI builds the
same rules."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kms_ws.client import KmsClient, KmsFault

from ..support.server import ADMIN, ServerProcess, kms

pytestmark = pytest.mark.e2e

DEFAULT = "realm://localhost/default"


def _name() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


def _enforce(admin: KmsClient, kind: str, policy_id: str, target_kind: str,
             target: str) -> None:
    admin.admin_associate(kind, policy_id, target_kind, target)
    admin.admin_edit(kind, {**admin.admin_get(kind, policy_id), "State": "Enforcing"})


def _assignment(admin: KmsClient, *conditions: dict[str, Any]) -> str:
    p = admin.admin_create("KeyAssignmentPolicy", {
        "Name": _name(), "Condition": list(conditions), "Generation": "Shared"})
    _enforce(admin, "KeyAssignmentPolicy", p["PolicyId"], "Realm", DEFAULT)
    return str(p["PolicyId"])


def _policy_of(admin: KmsClient, client: KmsClient, attribute: str, value: str) -> str:
    """The key-assignment policy whose key a client gets for the data (GetKey by data)."""
    key = client.get_key(datasets=[(attribute, value)], usage="Encrypt")
    return str(admin.admin_get("Key", key.key_id)["KeyAssignmentPolicyId"])


def test_ranges_cidr_prefix_and_glob_pick_the_most_specific_policy(
        admin: KmsClient, client: KmsClient) -> None:
    vol = f"volume-{uuid.uuid4().hex[:6]}"  # attribute names of this test alone
    ip = f"server_ip-{uuid.uuid4().hex[:6]}"
    path = f"path-{uuid.uuid4().hex[:6]}"
    block = f"block-{uuid.uuid4().hex[:6]}"
    any_a = _assignment(admin, {"Name": vol, "Prefix": "A"})
    all_a = _assignment(admin, {"Name": vol, "Range": {"From": "A00000", "To": "A99999"}})
    slot0 = _assignment(admin, {"Name": vol, "Range": {"From": "A00000", "To": "A09999"}})
    one = _assignment(admin, {"Name": vol, "Value": "A00042"})
    assert _policy_of(admin, client, vol, "A00042") == one
    assert _policy_of(admin, client, vol, "A05000") == slot0
    assert _policy_of(admin, client, vol, "A50000") == all_a
    assert _policy_of(admin, client, vol, "AX-7") == any_a
    with pytest.raises(KmsFault) as err:  # selected by none: nothing is made
        client.get_key(datasets=[(vol, "B00001")], usage="Encrypt")
    assert err.value.error_code == "E_KEY_NOT_FOUND"
    # an equally specific policy added later does not take the volumes over
    _assignment(admin, {"Name": vol, "Range": {"From": "A00000", "To": "A09999"}})
    assert _policy_of(admin, client, vol, "A05001") == slot0

    lan = _assignment(admin, {"Name": ip, "Cidr": "10.1.0.0/16"})
    rack = _assignment(admin, {"Name": ip, "Cidr": "10.1.7.0/24"})
    v6 = _assignment(admin, {"Name": ip, "Cidr": "2001:db8::/32"})
    assert _policy_of(admin, client, ip, "10.1.7.20") == rack
    assert _policy_of(admin, client, ip, "10.1.200.1") == lan
    assert _policy_of(admin, client, ip, "2001:db8:7::1") == v6

    finance = _assignment(admin, {"Name": path, "Prefix": "/data/finance/"})
    ledgers = _assignment(admin, {"Name": path, "Glob": "/data/finance/*/ledger-??.db"})
    assert _policy_of(admin, client, path, "/data/finance/2026/ledger-07.db") == ledgers
    assert _policy_of(admin, client, path, "/data/finance/2026/ledger-007.db") == finance

    low = _assignment(admin, {"Name": block, "Range": {"From": "0", "To": "4294967296"}})
    first = _assignment(admin, {"Name": block, "Range": {"From": "0", "To": "1048575"}})
    assert _policy_of(admin, client, block, "4096") == first
    assert _policy_of(admin, client, block, "4294967296") == low
    # the policy reads back as it was written (the typed element round-trips)
    assert admin.admin_get("KeyAssignmentPolicy", first)["Condition"] == [
        {"Name": block, "Range": {"From": "0", "To": "1048575"}}]


@pytest.mark.parametrize(("condition", "says"), [
    ({"Range": {"From": "A09999", "To": "A00000"}}, "is empty: From comes after To"),
    ({"Range": {"From": "A0000", "To": "A09999"}}, "the same length"),
    ({"Range": {"From": "A00000", "To": "AB0000"}}, "position 2"),
    ({"Cidr": "10.1.0.1/16"}, "has host bits set"),
    ({"Cidr": "10.1.0.0/40"}, "10.1.0.0/40"),
])
def test_a_bad_rule_is_a_precise_fault_that_changes_nothing(
        admin: KmsClient, condition: dict[str, Any], says: str) -> None:
    attribute = f"volume-{uuid.uuid4().hex[:6]}"
    name = _name()
    since = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(KmsFault) as err:
        admin.admin_create("KeyAssignmentPolicy", {
            "Name": name, "Condition": [{"Name": attribute, **condition}],
            "Generation": "Shared"})
    assert err.value.error_code == "E_INVALID_PARAMETER"
    assert f"condition {attribute}: " in err.value.reason and says in err.value.reason
    with pytest.raises(KmsFault):
        admin.admin_get("KeyAssignmentPolicy", name)  # nothing was made
    # an edit of a good policy to the bad rule: refused, the policy as it was
    good = admin.admin_create("KeyAssignmentPolicy", {
        "Name": _name(), "Condition": [{"Name": attribute, "Prefix": "A"}],
        "Generation": "Shared"})
    with pytest.raises(KmsFault) as err:
        admin.admin_edit("KeyAssignmentPolicy",
                         {**good, "Condition": [{"Name": attribute, **condition}]})
    assert err.value.error_code == "E_INVALID_PARAMETER" and says in err.value.reason
    assert admin.admin_get("KeyAssignmentPolicy", good["PolicyId"]) == good
    # and in a dynamic key group's rule
    with pytest.raises(KmsFault) as err:
        admin.admin_create("KeyGroup", {"Name": _name(), "Type": "Dynamic",
                                        "Rule": [{**condition, "Attribute": attribute}]})
    assert err.value.error_code == "E_INVALID_PARAMETER" and says in err.value.reason
    failed = [r for r in admin.admin_audit(since=since, max_records=1000)
              if r["Operation"] in ("AdminCreate", "AdminEdit")
              and r["Event"] == "E_INVALID_PARAMETER" and says in r.get("Message", "")]
    assert len(failed) >= 3


def test_dynamic_key_groups_select_by_network_and_the_most_specific_decides(
        admin: KmsClient, client: KmsClient) -> None:
    ip = f"server_ip-{uuid.uuid4().hex[:6]}"

    def group_caching(rule: dict[str, Any], seconds: int) -> None:
        g = admin.admin_create("KeyGroup", {"Name": _name(), "Type": "Dynamic",
                                            "Rule": [{**rule, "Attribute": ip}]})
        p = admin.admin_create("CachingPolicy", {"Name": _name(), "Rule": [
            {"CachingType": "Memory", "TCacheInterval": seconds}]})
        _enforce(admin, "CachingPolicy", p["PolicyId"], "KeyGroup", g["GroupId"])

    group_caching({"Pattern": r"10\..*"}, 60)  # the oldest, the least specific
    group_caching({"Cidr": "10.0.0.0/8"}, 600)
    group_caching({"Cidr": "10.1.7.0/24"}, 6000)
    rack = client.create_key(datasets=[(ip, "10.1.7.20")])
    site = client.create_key(datasets=[(ip, "10.200.0.1")])
    other = client.create_key(datasets=[(ip, "192.168.0.1")])
    assert client.get_key(rack.key_id).t_cached == 6000
    assert client.get_key(site.key_id).t_cached == 600
    assert client.get_key(other.key_id).t_cached == 3600  # in no group: its own
    # listed metadata (WS-Transfer Get) resolves it the same way
    assert client.get_key_metadata(rack.key_id).t_cached == 6000


def test_the_cli_writes_selection_rules(server: ServerProcess, admin: KmsClient) -> None:
    vol = f"volume-{uuid.uuid4().hex[:6]}"
    out = kms("admin", "assignment-policy", "add", _name(), "--range", f"{vol}=A00000..A09999",
              "--cidr", "host=10.1.0.0/16", "--generation", "Shared", "--url", server.url,
              "--user", ADMIN[0], "--password-stdin", stdin=ADMIN[1] + "\n")
    made = json.loads(out.stdout)
    assert sorted(made["Condition"], key=lambda c: c["Name"]) == [
        {"Name": "host", "Cidr": "10.1.0.0/16"},
        {"Name": vol, "Range": {"From": "A00000", "To": "A09999"}}]
    bad = kms("admin", "key-group", "add", _name(), "--type", "Dynamic", "--cidr",
              f"{vol}=10.1.0.9/16", "--url", server.url, "--user", ADMIN[0],
              "--password-stdin", stdin=ADMIN[1] + "\n", check=False)
    assert bad.returncode == 1 and "host bits set" in bad.stderr
    assert "Traceback" not in bad.stderr
