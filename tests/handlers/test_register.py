"""§6.1 RegisterEndpoint and RegisterWrappingValues: who may register what, in which
realms with which rights, credentials, wrapping keys — on the in-memory store."""

from __future__ import annotations

import os

from kms_ws.domain.errors import (
    AccessDenied,
    AlreadyExists,
    InUse,
    InvalidParameter,
    NotFound,
    PermissionDenied,
    UnsupportedAuthenticationMode,
)
from kms_ws.domain.model import CredentialType, EndpointKind, NameValue
from kms_ws.domain.realms import ALL_RIGHTS, Right
from kms_ws.domain.wrapping import WrappingKeyKind
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import AdminRequest

from ..fakes import callers
from .conftest import DEFAULT, OTHER, PASSWORD, Harness


def pep(name: str = "pep-1", **kw: object) -> m.RegisterEndpointRequest:
    return m.RegisterEndpointRequest(EndpointKind.PEP, name, **kw)  # type: ignore[arg-type]


def client(name: str, secret: str = "a-new-long-password",
           **kw: object) -> m.RegisterEndpointRequest:
    return m.RegisterEndpointRequest(EndpointKind.CLIENT, name,  # type: ignore[arg-type]
                                     credential=callers.password(name, secret), **kw)


def test_a_client_registers_its_pep_with_its_own_grants(h: Harness) -> None:
    res = h.run("RegisterEndpoint", pep())
    ep = h.endpoint(res.endpoint_id)
    assert (ep.kind, ep.owner_id, ep.realms) == (EndpointKind.PEP, h.endpoint_id("alice"),
                                                  (DEFAULT,))
    assert ep.authentication_policy == "None"
    assert h.audit(operation="RegisterEndpoint", result="Success")


def test_a_pep_registered_without_realms_joins_one_realm_of_its_client(h: Harness) -> None:
    """Issue 15.3: as a new key, never every realm of the registering client."""
    third = "realm://localhost/third"
    h.add("two", grants={OTHER: frozenset({Right.READ}), third: frozenset({Right.EDIT})})
    h.check_refused(InvalidParameter, "RegisterEndpoint", pep("pep-two"), "two",
              code="E_INVALID_PARAMETER")
    named = h.endpoint(h.run("RegisterEndpoint", pep("pep-two", realms=(
        m.RealmAssociation(third),)), "two").endpoint_id)
    assert named.grants == {third: frozenset({Right.EDIT})}
    h.add("wide", grants={DEFAULT: frozenset({Right.REFERENCE}),
                          OTHER: frozenset({Right.READ})})
    ep = h.endpoint(h.run("RegisterEndpoint", pep("pep-wide"), "wide").endpoint_id)
    assert ep.grants == {DEFAULT: frozenset({Right.REFERENCE})}


def test_a_pep_gets_no_right_its_owner_lacks(h: Harness) -> None:
    h.check_refused(PermissionDenied, "RegisterEndpoint",
              pep(realms=(m.RealmAssociation(OTHER),)), code="E_PERMISSION_DENIED")
    h.add("ref", grants={DEFAULT: frozenset({Right.REFERENCE})})
    h.check_refused(PermissionDenied, "RegisterEndpoint",
              pep(realms=(m.RealmAssociation(DEFAULT, ("Read",)),)), "ref")


def test_only_an_administrator_registers_clients(h: Harness) -> None:
    h.check_refused(PermissionDenied, "RegisterEndpoint", client("carol"))
    h.add("root", admin=True)
    h.add_realm()
    res = h.run("RegisterEndpoint", client("carol"), "root")
    carol = h.endpoint(res.endpoint_id)
    assert carol.kind is EndpointKind.CLIENT and carol.realms == (DEFAULT,)
    # the new client authenticates with the password it was registered with
    assert h.run("GetRandomBytes", m.GetRandomBytesRequest(1),
                 credential=callers.password("carol", "a-new-long-password")).data
    h.check_refused(AlreadyExists, "RegisterEndpoint", client("carol"), "root",
              code="E_ALREADY_EXISTS")


def test_a_client_credential_is_checked(h: Harness) -> None:
    h.add("root", admin=True)
    h.add_realm()
    h.check_refused(InvalidParameter, "RegisterEndpoint",
              m.RegisterEndpointRequest(EndpointKind.CLIENT, "nocred"), "root")
    h.check_refused(InvalidParameter, "RegisterEndpoint",
              m.RegisterEndpointRequest(EndpointKind.CLIENT, "dave",
                                        credential=callers.password("someone-else", "x" * 16)),
              "root")
    h.check_refused(UnsupportedAuthenticationMode, "RegisterEndpoint",
              m.RegisterEndpointRequest(EndpointKind.CLIENT, "dave",
                                        credential=m.Credential(CredentialType.CHAP)), "root")
    # a password crosses plain HTTP only where allowed
    strict = Harness(allow_basic_over_http=False)
    strict.add("root", admin=True)
    strict.add_realm()
    token = strict.run("Authenticate", callers.login("root", PASSWORD), "root").token
    strict.check_refused(AccessDenied, "RegisterEndpoint", client("dave"),
                   credential=callers.session(token), transport=callers.PLAIN_HTTP)


def test_register_wrapping_values_adds_and_retires_keks(h: Harness) -> None:
    kek = os.urandom(32)
    res = h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("kek-1", symmetric_key=kek),)))
    assert [(k.key_id, k.kind) for k in res.keys] == [("kek-1", WrappingKeyKind.SYMMETRIC)]
    sealed = h.store.tables.wrapping[(h.endpoint_id("alice"), "kek-1")].sealed
    assert sealed and kek not in sealed  # sealed under the master key
    h.check_refused(AlreadyExists, "RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("kek-1", symmetric_key=os.urandom(32)),)))
    h.check_refused(InvalidParameter, "RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("short", symmetric_key=os.urandom(10)),)))
    h.check_refused(NotFound, "RegisterWrappingValues",
              m.RegisterWrappingValuesRequest(retire=("kek-9",)))
    h.check_refused(InvalidParameter, "RegisterWrappingValues", m.RegisterWrappingValuesRequest())
    res = h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(retire=("kek-1",)))
    assert res.keys == () and not h.store.tables.wrapping


def test_wrapping_keys_of_another_client_are_not_set(h: Harness) -> None:
    h.check_refused(PermissionDenied, "RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        endpoint_id=h.endpoint_id("bob"),
        values=(m.WrappingValue("kek-1", symmetric_key=os.urandom(32)),)))
    # but those of its own PEP are
    pep_id = h.run("RegisterEndpoint", pep()).endpoint_id
    res = h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        endpoint_id=pep_id, values=(m.WrappingValue("pep-kek", symmetric_key=os.urandom(16)),)))
    assert res.endpoint_id == pep_id and [k.key_id for k in res.keys] == ["pep-kek"]


# ---- §4.4/§4.6 CIM identity and the administrators' endpoint type rules -------------------

ACME_HSM = (NameValue("PhysicalElement/Manufacturer", "Acme Corp"),
            NameValue("PhysicalElement/Model", "HSM-9000"),
            NameValue("SoftwareIdentity/VersionString", "2.1"))


def _typed(h: Harness) -> tuple[str, str, str]:
    """root (an administrator), two endpoint types and two rules: Acme HSMs (priority 10,
    two matches) and anything by Acme (priority 20). Returns (hsm, soft, other-realm) ids."""
    h.add("root", admin=True, grants={DEFAULT: ALL_RIGHTS, OTHER: ALL_RIGHTS})
    h.add_realm()
    h.add_realm(OTHER)

    def create(kind: str, doc: dict[str, object]) -> dict[str, str]:
        return dict(h.run("AdminCreate", AdminRequest("Create", kind, document=doc),
                          "root").documents[0])

    in_default = {"RealmAssociations": {"RealmAssociation": [{"Realm": DEFAULT}]}}
    hsm = create("EndpointType", {"Name": "hsm", "Capabilities": {"Capability": [
        {"Name": "hasHSM"}]}, **in_default})["EndpointTypeId"]
    soft = create("EndpointType", {"Name": "soft", "Capabilities": {"Capability": [
        {"Name": "software"}]}, **in_default})["EndpointTypeId"]
    elsewhere = create("EndpointType", {"Name": "other", "Capabilities": {"Capability": [
        {"Name": "x"}]}, "RealmAssociations": {"RealmAssociation": [{"Realm": OTHER}]}}
    )["EndpointTypeId"]
    create("EndpointTypeRule", {"Name": "acme", "Priority": "20", "EndpointTypeId": soft,
                                "Match": [{"Property": "PhysicalElement/Manufacturer",
                                           "Pattern": "Acme.*"}], **in_default})
    create("EndpointTypeRule", {"Name": "acme-hsm", "Priority": "10", "EndpointTypeId": hsm,
                                "Match": [{"Property": "PhysicalElement/Manufacturer",
                                           "Pattern": "Acme.*"},
                                          {"Property": "PhysicalElement/Model",
                                           "Pattern": r"HSM-\d+"}], **in_default})
    # a rule of another realm, first by priority: never types an endpoint of DEFAULT
    create("EndpointTypeRule", {"Name": "other", "Priority": "0", "EndpointTypeId": elsewhere,
                                "Match": [{"Property": "PhysicalElement/Manufacturer",
                                           "Pattern": ".*"}],
                                "RealmAssociations": {"RealmAssociation": [{"Realm": OTHER}]}})
    return hsm, soft, elsewhere


def test_a_pep_gets_its_type_from_the_rule_its_cim_identity_meets(h: Harness) -> None:
    hsm, soft, _ = _typed(h)
    res = h.run("RegisterEndpoint", pep("hsm-1", cim_identity=ACME_HSM,
                                        cim_identity_given=True))
    assert res.endpoint_type_id == hsm == h.endpoint(res.endpoint_id).endpoint_type_id
    with h.store.unit_of_work() as uow:
        assert set(uow.endpoints.cim_identity(res.endpoint_id)) == set(ACME_HSM)
    tape = (NameValue("PhysicalElement/Manufacturer", "Acme Corp"),
            NameValue("PhysicalElement/Model", "Tape-1"))
    assert h.run("RegisterEndpoint", pep("tape-1", cim_identity=tape)).endpoint_type_id == soft
    other = (NameValue("PhysicalElement/Manufacturer", "Other Inc"),)
    assert h.run("RegisterEndpoint", pep("other-1", cim_identity=other)).endpoint_type_id \
        is None
    assert h.run("RegisterEndpoint", pep("old-1")).endpoint_type_id is None  # no identity


def test_an_explicit_type_agrees_with_the_rules_or_is_an_administrators(h: Harness) -> None:
    hsm, soft, elsewhere = _typed(h)
    exc = h.check_refused(PermissionDenied, "RegisterEndpoint",
                          pep("hsm-2", cim_identity=ACME_HSM, endpoint_type_id=soft),
                          code="E_PERMISSION_DENIED")
    assert soft in exc.reason and "another EndpointType" in exc.reason
    assert hsm not in exc.reason  # the administrators' rule and type are not named
    assert h.run("RegisterEndpoint", pep("hsm-3", cim_identity=ACME_HSM,
                                         endpoint_type_id=hsm)).endpoint_type_id == hsm
    # no rule holds: the type asked for, if the caller may use it
    assert h.run("RegisterEndpoint", pep("plain", endpoint_type_id=soft)).endpoint_type_id \
        == soft
    h.check_refused(NotFound, "RegisterEndpoint", pep("p-4", endpoint_type_id=elsewhere))
    h.check_refused(NotFound, "RegisterEndpoint",
                    pep("p-5", endpoint_type_id="00000000-0000-4000-8000-000000000000"))
    # an administrator's explicit choice wins over the rules
    assert h.run("RegisterEndpoint", pep("hsm-4", cim_identity=ACME_HSM, endpoint_type_id=soft),
                 "root").endpoint_type_id == soft


def test_an_empty_or_unknown_cim_identity_is_refused(h: Harness) -> None:
    _typed(h)
    h.check_refused(InvalidParameter, "RegisterEndpoint",
                    pep("p-6", cim_identity_given=True), code="E_INVALID_PARAMETER")
    h.check_refused(InvalidParameter, "RegisterEndpoint",
                    pep("p-7", cim_identity=(NameValue("Chassis/Color", "red"),),
                        cim_identity_given=True))


def test_endpoint_type_rules_are_checked_and_realm_bound(h: Harness) -> None:
    hsm, _, elsewhere = _typed(h)

    def rule(**doc: object) -> AdminRequest:
        return AdminRequest("Create", "EndpointTypeRule", document={
            "Name": f"r-{len(doc)}-{sorted(doc)}", "Priority": "1", "EndpointTypeId": hsm,
            "Match": [{"Property": "PhysicalElement/Model", "Pattern": "x"}], **doc})

    h.check_refused(InvalidParameter, "AdminCreate", rule(Match=[
        {"Property": "PhysicalElement/Model", "Pattern": "("}]), "root")
    h.check_refused(InvalidParameter, "AdminCreate", rule(Match=[
        {"Property": "PhysicalElement/Model", "Pattern": "a"},
        {"Property": "PhysicalElement/Model", "Pattern": "b"}]), "root")
    h.check_refused(NotFound, "AdminCreate",
                    rule(EndpointTypeId="00000000-0000-4000-8000-000000000000"), "root")
    # an administrator of DEFAULT only: no rule in OTHER, no rule handing out OTHER's type
    h.add("sub", admin=True)
    h.check_refused(PermissionDenied, "AdminCreate", rule(RealmAssociations={
        "RealmAssociation": [{"Realm": OTHER}]}), "sub")
    h.check_refused(NotFound, "AdminCreate", rule(EndpointTypeId=elsewhere), "sub")
    # a type a rule gives cannot be deleted
    h.check_refused(InUse, "AdminDelete", AdminRequest("Delete", "EndpointType",
                                                       object_id=hsm), "root",
                    code="E_OBJECT_IN_USE")


def test_an_administrator_made_pep_is_typed_as_a_registered_one(h: Harness) -> None:
    """AdminCreate of a Pep applies the same rules as RegisterEndpoint: its CimIdentity is
    kept and typed by the rules of its realms, and an explicit EndpointTypeId must be one
    the administrator may use (an administrator of DEFAULT cannot hand out OTHER's type:
    it does not exist for it); AdminEdit alike. Both were only checked for existence."""
    hsm, soft, elsewhere = _typed(h)
    h.add("sub", admin=True)
    owner = h.endpoint_id("alice")

    def made(name: str, **doc: object) -> dict[str, object]:
        return dict(h.run("AdminCreate", AdminRequest("Create", "Pep", document={
            "Name": name, "ClientAssociations": {"Id": [owner]}, **doc}), "sub").documents[0])

    typed = made("hsm-pep", CimIdentity={"PhysicalElement": {
        "Manufacturer": "Acme Corp", "Model": "HSM-9000"}})
    assert typed["EndpointTypeId"] == hsm
    with h.store.unit_of_work() as uow:
        assert NameValue("PhysicalElement/Model", "HSM-9000") in \
            uow.endpoints.cim_identity(str(typed["PepId"]))
    h.check_refused(NotFound, "AdminCreate", AdminRequest("Create", "Pep", document={
        "Name": "stray-pep", "ClientAssociations": {"Id": [owner]},
        "EndpointTypeId": elsewhere}), "sub")
    plain = made("plain-pep", EndpointTypeId=soft)
    assert plain["EndpointTypeId"] == soft
    h.check_refused(NotFound, "AdminEdit", AdminRequest("Edit", "Pep", document={
        "PepId": plain["PepId"], "EndpointTypeId": elsewhere,
        "Version": plain["Version"]}), "sub")
    assert h.endpoint(str(plain["PepId"])).endpoint_type_id == soft
