"""§4.9 selection rules (domain.selection) and the most-specific-match rule of
key-assignment policies and key groups built on them: pure, no transport."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kms_ws.domain import assignment, groups, selection
from kms_ws.domain.errors import InvalidParameter
from kms_ws.domain.model import DataSet

S = selection.Selector
NOW = datetime(2026, 1, 31, 12, 0, 0)


def test_exact_prefix_and_glob() -> None:
    assert selection.matches(S("Value", "A00001"), "A00001")
    assert not selection.matches(S("Value", "A00001"), "a00001")
    assert selection.matches(S("Prefix", "/data/fin/"), "/data/fin/q1/ledger")
    assert not selection.matches(S("Prefix", "/data/fin/"), "/data/finance")
    assert selection.matches(S("Glob", "/data/*/ledger"), "/data/fin/q1/ledger")  # * crosses /
    assert selection.matches(S("Glob", "tape-??"), "tape-07")
    assert not selection.matches(S("Glob", "tape-??"), "tape-007")
    assert selection.matches(S("Glob", "vol[!0-4]"), "vol7") and \
        not selection.matches(S("Glob", "vol[!0-4]"), "vol3")
    assert not selection.matches(S("Glob", "TAPE*"), "tape1")  # case-sensitive everywhere


def test_numeric_range_disk_blocks() -> None:
    blocks = S("Range", "0", str(2 ** 32))
    for v in ("0", "4096", "4294967296", "0042"):
        assert selection.matches(blocks, v), v
    for v in ("4294967297", "-1", "12a", "", "1" * 41, " 7"):
        assert not selection.matches(blocks, v), v
    assert selection.specificity(blocks) == (2, -(2 ** 32 + 1))


def test_alphanumeric_range_tape_volumes() -> None:
    vols = S("Range", "A00000", "A09999")
    assert selection.matches(vols, "A00000") and selection.matches(vols, "A09999")
    assert selection.matches(vols, "A05000")
    for v in ("A10000", "B00000", "A0000Z", "A0000", "A000000", "a00001"):
        assert not selection.matches(vols, v), v
    assert selection.specificity(vols) == (2, -10000)
    # letters count in their alphabet: AA..AZ then BA..
    letters = S("Range", "AA-10", "BC-19")
    assert selection.matches(letters, "AZ-99") and selection.matches(letters, "BC-15")
    assert not selection.matches(letters, "BC-20") and not selection.matches(letters, "AB+10")


def test_cidr_ipv4_and_ipv6() -> None:
    net = S("Cidr", "10.1.0.0/16")
    assert selection.matches(net, "10.1.200.7") and not selection.matches(net, "10.2.0.1")
    assert not selection.matches(net, "server-a") and not selection.matches(net, "::ffff:10.1.0.1")
    v6 = S("Cidr", "2001:db8::/32")
    assert selection.matches(v6, "2001:db8:1::5") and not selection.matches(v6, "10.1.0.1")
    assert selection.specificity(net) == (2, -65536)


@pytest.mark.parametrize(("sel", "says"), [
    (S("Range", "A09999", "A00000"), "empty"),
    (S("Range", "A00000", "A0999"), "same length"),
    (S("Range", "A00000", "100000"), "position 1"),
    (S("Range", "10", ""), "From and a To"),
    (S("Range", "0", "1" * 41), "40 digits"),
    (S("Cidr", "10.1.0.5/16"), "host bits"),
    (S("Cidr", "10.1.0.0/33"), "10.1.0.0/33"),
    (S("Cidr", "server-a/8"), "server-a/8"),
    (S("Prefix", ""), "every value"),
    (S("Pattern", "("), "regular expression"),
    (S("Regex", "x"), "unknown selection rule"),
    (S("Glob", "x" * 513), "512"),
])
def test_bad_rules_are_refused_precisely(sel: selection.Selector, says: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        selection.check(sel)
    assert says in err.value.reason


def test_specificity_order_exact_then_narrowest_then_longest_literal() -> None:
    order = [S("Value", "10.1.2.3"), S("Cidr", "10.1.2.0/24"), S("Range", "A00000", "A09999"),
             S("Cidr", "10.1.0.0/16"), S("Prefix", "/data/fin/q1/"), S("Glob", "/data/*/q1"),
             S("Prefix", "/data/"), S("Pattern", ".*")]
    keys = [selection.specificity(s) for s in order]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    assert selection.specificity(S("Glob", "/data/*/q1")) == (1, len("/data//q1"))


def _policy(pid: str, *conds: assignment.Condition, age_days: int = 0
            ) -> assignment.AssignmentPolicy:
    return assignment.AssignmentPolicy(pid, conds, "Shared",
                                       created_at=NOW - timedelta(days=age_days))


def test_most_specific_assignment_policy_wins() -> None:
    C = assignment.Condition
    wide = _policy("w", C("volume", S("Range", "A00000", "A99999")), age_days=9)
    narrow = _policy("n", C("volume", S("Range", "A00000", "A09999")))
    one = _policy("x", assignment.exact("volume", "A00042"))
    prefix = _policy("p", C("volume", S("Prefix", "A0")), age_days=20)
    data = [DataSet("volume", "A00042")]
    assert assignment.select_policy([wide, narrow, one, prefix], data) is one
    assert assignment.select_policy([wide, narrow, prefix], data) is narrow
    assert assignment.select_policy([wide, prefix], data) is wide  # a range beats a prefix
    assert assignment.select_policy([prefix], data) is prefix
    assert assignment.select_policy([wide, narrow], [DataSet("volume", "A50000")]) is wide
    # More conditions still come first: each one narrows what the policy selects.
    two = _policy("t", C("volume", S("Prefix", "A")), C("host", S("Cidr", "10.0.0.0/8")))
    assert assignment.select_policy([one, two], data + [DataSet("host", "10.9.9.9")]) is two
    # A tie goes to the oldest policy, then the lower id.
    same_a = _policy("b", C("volume", S("Prefix", "A0")), age_days=20)
    assert assignment.select_policy([same_a, prefix], data) is same_a
    older = _policy("z", C("volume", S("Glob", "A0*")), age_days=30)  # 2 literals, as "A0"
    assert assignment.select_policy([prefix, older], data) is older


def test_assignment_policy_checks_its_rules() -> None:
    bad = assignment.AssignmentPolicy(
        "b", (assignment.Condition("host", S("Cidr", "10.0.0.1/8")),), "Shared")
    with pytest.raises(InvalidParameter) as err:
        assignment.check_policy(bad)
    assert err.value.reason.startswith("condition host: Cidr '10.0.0.1/8'")
    regex = assignment.AssignmentPolicy(
        "r", (assignment.Condition("volume", S("Pattern", "A.*")),), "Shared")
    with pytest.raises(InvalidParameter):
        assignment.check_policy(regex)


def test_dynamic_key_groups_select_by_rules_and_rank_by_specificity() -> None:
    vols = groups.Group("g-vols", True, rules=(groups.PatternRule(
        S("Range", "A00000", "A09999"), "volume"),), created_at=NOW)
    hosts = groups.Group("g-hosts", True, rules=(groups.PatternRule(
        S("Cidr", "10.1.0.0/16"), "host"),), created_at=NOW)
    regex = groups.Group("g-re", True, rules=(groups.pattern("A.*", "volume"),),
                         created_at=NOW - timedelta(days=1))
    attrs = {"volume": ["A00042"], "host": ["10.1.3.4"]}
    assert all(groups.is_member(g, "k", attrs) for g in (vols, hosts, regex))
    assert not groups.is_member(vols, "k", {"volume": ["A10000"]})
    assert not groups.is_member(hosts, "k", {"volume": ["A00042"]})  # no value: no member
    static = groups.Group("g-static", False, members=frozenset({"k"}))
    ranked = sorted([(regex, False), (vols, False), (static, True), (hosts, False)],
                    key=lambda gs: groups.rank(*gs))
    # Static membership first; then fewer values covered: the 10000 volumes before the
    # /16 (65536 addresses); the regular expression last, though it is the oldest.
    assert [g.group_id for g, _ in ranked] == ["g-static", "g-vols", "g-hosts", "g-re"]
    with pytest.raises(InvalidParameter) as err:
        groups.check_group(groups.Group("bad", True, rules=(groups.PatternRule(
            S("Range", "B", "A"), "volume"),)))
    assert "rule on volume" in err.value.reason
