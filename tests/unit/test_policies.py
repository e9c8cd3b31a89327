"""Pure policy rules: realm rights, wrapping resolution, groups, caching, durations,
key assignment, access, policy states, key actions, audit destinations."""

from __future__ import annotations

from datetime import datetime

import pytest

from kms_ws.domain import access, assignment, audit_policy, caching, groups, policy_state
from kms_ws.domain.durations import add_duration
from kms_ws.domain.errors import AmbiguousReference, InvalidParameter
from kms_ws.domain.lifecycle import apply_action
from kms_ws.domain.model import DataSet, Key, KeyState
from kms_ws.domain.realms import (
    Right,
    allows,
    check_realm_uri,
    ladder_closure,
    parse_rights,
    realms_with,
    rights_on,
)
from kms_ws.domain.wrapping import check_policy_type
from kms_ws.domain.wrapping_policy import WrappingChoice, resolve_wrapping

A, B, C = "realm://example.com/a", "realm://example.com/b", "realm://example.com/c"
NOW = datetime(2026, 1, 31, 12, 0, 0)


# ---- realms ---------------------------------------------------------------------------
def test_the_union_over_shared_realms_decides() -> None:
    grants = {A: frozenset({Right.READ}), B: frozenset({Right.DELETE}), C: frozenset()}
    assert rights_on(grants, [A]) == {Right.READ, Right.REFERENCE}
    assert rights_on(grants, [A, B]) == {Right.READ, Right.REFERENCE, Right.DELETE}
    assert rights_on(grants, [B]) == {Right.DELETE}  # Delete alone: no Read, no Edit
    assert rights_on(grants, [C]) == frozenset()
    assert rights_on(grants, ["realm://example.com/other"]) == frozenset()


def test_rights_are_a_set_create_implies_nothing() -> None:
    create = {A: frozenset({Right.CREATE})}
    for other in (Right.READ, Right.REFERENCE, Right.EDIT, Right.DELETE):
        assert not allows(create, [A], other)
    assert allows(create, [A], Right.CREATE)
    edit = {A: frozenset({Right.EDIT})}
    assert not allows(edit, [A], Right.READ) and not allows(edit, [A], Right.DELETE)


def test_ladder_closure_is_what_a_stored_grant_meant_before_schema_19() -> None:
    assert ladder_closure([Right.CREATE]) == frozenset(Right)
    assert ladder_closure([Right.READ]) == {Right.READ, Right.REFERENCE}
    assert ladder_closure([Right.REFERENCE, Right.EDIT]) == {
        Right.REFERENCE, Right.READ, Right.EDIT}
    assert ladder_closure([]) == frozenset()


def test_read_only_cannot_delete_and_reference_cannot_read() -> None:
    ro = {A: frozenset({Right.READ})}
    assert allows(ro, [A], Right.READ) and allows(ro, [A], Right.REFERENCE)
    assert not allows(ro, [A], Right.DELETE) and not allows(ro, [A], Right.EDIT)
    ref = {A: frozenset({Right.REFERENCE})}
    assert allows(ref, [A], Right.REFERENCE) and not allows(ref, [A], Right.READ)
    assert not allows({}, [A], Right.REFERENCE)


def test_realms_with_and_rights_text() -> None:
    grants = {A: parse_rights("Read"), B: parse_rights(["Create", "Edit"])}
    assert realms_with(grants, Right.READ) == (A,)
    assert realms_with(grants, Right.REFERENCE) == (A,)  # Read implies Reference
    assert realms_with(grants, Right.EDIT) == (B,)
    assert realms_with(grants, Right.CREATE) == (B,)
    with pytest.raises(InvalidParameter):
        parse_rights("Own")


@pytest.mark.parametrize("uri", ["realm://x/", "realm:/x/y", "realm://-bad.com/r",
                                 "realm://a.com/r/s", "http://a.com/r"])
def test_realm_uri_syntax(uri: str) -> None:
    with pytest.raises(InvalidParameter):
        check_realm_uri(uri)
    assert check_realm_uri("realm://Example.COM/Tapes") == "realm://example.com/Tapes"


# ---- wrapping ---------------------------------------------------------------------------
def w(pid: str, source: str) -> WrappingChoice:
    return WrappingChoice(pid, "Symmetric", "aes-key-wrap", source)


def test_wrapping_precedence() -> None:
    key, grp, pep, pept = w("k", "key"), w("g", "key-group"), w("p", "pep"), w("pt", "pept")
    cli, clit = w("c", "client"), w("ct", "client-type")
    assert resolve_wrapping(key=key, key_groups=[grp]).inner == key
    assert resolve_wrapping(key_groups=[grp], pep=pep).inner == grp
    assert resolve_wrapping(pep=pep, pep_endpoint_type=pept).inner == pep
    assert resolve_wrapping(pep_endpoint_type=pept).inner == pept
    assert resolve_wrapping(client=cli, client_endpoint_type=clit).outer == cli
    assert resolve_wrapping(client_endpoint_type=clit).layers == (clit,)
    both = resolve_wrapping(pep=pep, client=cli)
    assert both.layers == (pep, cli)  # double wrap: PEP's inner, client's outer
    assert resolve_wrapping().layers == ()
    cg = w("cg", "client-group")
    assert resolve_wrapping(client=cli, client_groups=[cg]).outer == cli
    assert resolve_wrapping(client_groups=[cg], client_endpoint_type=clit).outer == cg


def test_key_groups_with_different_wrapping_are_ambiguous() -> None:
    with pytest.raises(AmbiguousReference):
        resolve_wrapping(key_groups=[w("g1", "key-group"), w("g2", "key-group")])
    with pytest.raises(AmbiguousReference, match="client's groups"):
        resolve_wrapping(client_groups=[w("g1", "client-group"), w("g2", "client-group")])


@pytest.mark.parametrize(("kind", "mode", "fits"), [
    ("Symmetric", "aes-key-wrap", True), ("Symmetric", "cms-auth-enveloped", True),
    ("Asymmetric", "cms-rsa-oaep", True), ("Asymmetric", "cms-auth-enveloped", True),
    ("Asymmetric", "cms-kek", False), ("Symmetric", "cms-rsa-oaep", False),
    ("Symmetric", "none", False), ("Signature", "cms-auth-enveloped", False)])
def test_wrapping_type_fits_the_mode(kind: str, mode: str, fits: bool) -> None:
    if fits:
        check_policy_type(kind, mode)
    else:
        with pytest.raises(InvalidParameter):
            check_policy_type(kind, mode)


# ---- groups -----------------------------------------------------------------------------
def test_static_and_dynamic_groups() -> None:
    static = groups.Group("g", False, members=frozenset({"c1"}))
    assert groups.is_member(static, "c1", {}) and not groups.is_member(static, "c2", {})
    dyn = groups.Group("d", True, rules=(groups.pattern(r"tape-lib-\d+", "name"),
                                         groups.pattern("eu-.*", "site")))
    assert groups.is_member(dyn, "x", {"name": ["tape-lib-7"], "site": ["eu-west"]})
    assert not groups.is_member(dyn, "x", {"name": ["tape-lib-7"], "site": ["us"]})
    assert not groups.is_member(dyn, "x", {"name": ["tape-lib-7x"], "site": ["eu-1"]})
    with pytest.raises(InvalidParameter):
        groups.check_group(groups.Group("bad", True, rules=(groups.pattern("(", "n"),)))
    with pytest.raises(InvalidParameter):
        groups.check_group(groups.Group("bad", True))


# ---- caching ----------------------------------------------------------------------------
def test_caching_interval_by_capability() -> None:
    rules = [caching.CachingRule("Memory", 600), caching.CachingRule("Persistent", 86400, "hasHSM"),
             caching.CachingRule("NoCache", 999, "no-storage")]
    assert caching.resolve(rules, ["hasHSM"], 5).t_cached == 86400
    assert caching.resolve(rules, ["x"], 5).t_cached == 600
    assert caching.resolve(rules, ["no-storage"], 5).t_cached == 0
    assert caching.resolve(rules[1:], [], 5).t_cached == 5
    with pytest.raises(InvalidParameter):
        caching.check_rules([caching.CachingRule("Memory", 1), caching.CachingRule("Memory", 2)])


# ---- durations --------------------------------------------------------------------------
def test_durations_are_calendar_aware() -> None:
    assert add_duration(NOW, "P1M") == datetime(2026, 2, 28, 12, 0, 0)
    assert add_duration(NOW, "P1Y2DT3H") == datetime(2027, 2, 2, 15, 0, 0)
    assert add_duration(NOW, "P2W") == datetime(2026, 2, 14, 12, 0, 0)
    for bad in ("P", "PT", "1D", "P-1D"):
        with pytest.raises(InvalidParameter):
            add_duration(NOW, bad)


# ---- key assignment ---------------------------------------------------------------------
def test_assignment_policy_matching_and_specificity() -> None:
    exact = assignment.exact
    pool = assignment.AssignmentPolicy("p1", (exact("pool", "A"),), "Shared", created_at=NOW)
    tape = assignment.AssignmentPolicy("p2", (exact("pool", "A"), exact("fin", "y")),
                                       "PerDataSet")
    data = [DataSet("pool", "A"), DataSet("volume", "T1")]
    assert assignment.select_policy([pool, tape], data) is pool
    assert assignment.select_policy([pool, tape], data + [DataSet("fin", "y")]) is tape
    assert assignment.select_policy([pool], [DataSet("pool", "B")]) is None
    # An exact tie is no refusal: the oldest policy wins, whatever order they come in.
    twin = assignment.AssignmentPolicy("p0", (exact("pool", "A"),), "Shared",
                                       created_at=add_duration(NOW, "P1D"))
    assert assignment.select_policy([pool, twin], data) is pool
    assert assignment.select_policy([twin, pool], data) is pool
    assert pool.scope == "Pool" and tape.scope == "DataSet"


def test_per_period_pool_key_rolls_over() -> None:
    p = assignment.AssignmentPolicy("p", (assignment.exact("pool", "A"),), "PerPeriod", "P7D")
    assert assignment.pool_key_still_current(p, NOW, add_duration(NOW, "P6D"))
    assert not assignment.pool_key_still_current(p, NOW, add_duration(NOW, "P7D"))
    with pytest.raises(InvalidParameter):
        assignment.check_policy(assignment.AssignmentPolicy("q", p.conditions, "PerPeriod"))


# ---- access -----------------------------------------------------------------------------
def test_access_policy_clients_groups_peps() -> None:
    p = access.AccessPolicy("a", clients=frozenset({"c1"}), client_groups=frozenset({"g"}),
                            peps=frozenset({"p1"}))
    assert access.may_receive(p, "c1", None, lambda g: False)
    assert access.may_receive(p, "c1", "p1", lambda g: False)
    assert not access.may_receive(p, "c1", "p2", lambda g: False)
    assert access.may_receive(p, "c2", None, lambda g: g == "g")
    assert not access.may_receive(p, "c2", None, lambda g: False)
    with pytest.raises(InvalidParameter):
        access.check_policy(access.AccessPolicy("empty", peps=frozenset({"p1"})))


# ---- policy states ----------------------------------------------------------------------
def test_policy_state_machine() -> None:
    S = policy_state.PolicyState
    assert policy_state.on_associate(S.CREATED) is S.ASSIGNED
    assert policy_state.on_edit(S.ASSIGNED, S.ENFORCING) is S.ENFORCING
    assert policy_state.on_disassociate(S.ENFORCING, remaining=1) is S.ENFORCING
    assert policy_state.on_disassociate(S.ENFORCING, remaining=0) is S.CREATED
    assert policy_state.on_delete(S.ENFORCING) is S.DISABLED
    assert policy_state.on_delete(S.CREATED) is None
    with pytest.raises(InvalidParameter):
        policy_state.on_edit(S.CREATED, S.ENFORCING)
    with pytest.raises(InvalidParameter):
        policy_state.on_associate(S.DISABLED)
    with pytest.raises(InvalidParameter):
        policy_state.on_edit(S.DISABLED, S.ENFORCING)


# ---- key actions ------------------------------------------------------------------------
def test_key_admin_actions() -> None:
    def k(state: KeyState) -> Key:
        return Key("k", state, "2.16.840.1.101.3.4.1.46", 256, 1, NOW, NOW, 0)
    assert apply_action(k(KeyState.PRE_ACTIVE), "Activate", NOW) is KeyState.ACTIVE
    assert apply_action(k(KeyState.ACTIVE), "Compromise", NOW) is KeyState.COMPROMISED
    assert apply_action(k(KeyState.COMPROMISED), "Destroy", NOW) is KeyState.DESTROYED
    for state, action in [(KeyState.DESTROYED, "Destroy"), (KeyState.COMPROMISED, "Activate"),
                          (KeyState.DISABLED, "Activate"), (KeyState.ACTIVE, "Resurrect")]:
        with pytest.raises(InvalidParameter):
            apply_action(k(state), action, NOW)


# ---- audit ------------------------------------------------------------------------------
def test_audit_destinations() -> None:
    P = audit_policy.AuditPolicy
    assert audit_policy.destinations([], "GetKey", True) == {"Local", "Syslog"}
    pol = P("a", frozenset({"GetKey"}), frozenset({"Log"}), frozenset({"Syslog"}))
    assert audit_policy.destinations([pol], "GetKey", True) == {"Local", "Syslog"}
    assert audit_policy.destinations([pol], "GetRandomBytes", False) == set()
    assert audit_policy.destinations([pol], "AdminEdit", True) == {"Local"}
    # a change or an authentication failure: everywhere, whatever the policies list
    assert audit_policy.destinations([pol], "AdminEdit", True, always=True) == \
        {"Local", "Syslog"}
    # several policies: the union of what those listing the operation say
    local = P("l", frozenset({"*"}), frozenset({"Log"}), frozenset({"Local"}))
    assert audit_policy.destinations([pol, local], "GetKey", False) == {"Local", "Syslog"}
    assert audit_policy.destinations([pol, local], "GetRandomBytes", False) == {"Local"}
    assert audit_policy.destinations([], "GetRandomBytes", False) == {"Syslog"}
    with pytest.raises(InvalidParameter):
        audit_policy.check_policy(P("b", frozenset(), frozenset({"SnmpTrap"}), frozenset()))
