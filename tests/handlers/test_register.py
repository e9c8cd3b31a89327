"""§6.1 RegisterEndpoint and RegisterWrappingValues: who may register what, in which
realms with which rights, credentials, wrapping keys — on the in-memory store."""

from __future__ import annotations

import os

from kms_ws.domain.errors import (
    AccessDenied,
    AlreadyExists,
    InvalidParameter,
    NotFound,
    PermissionDenied,
    UnsupportedAuthenticationMode,
)
from kms_ws.domain.model import CredentialType, EndpointKind
from kms_ws.domain.realms import Right
from kms_ws.domain.wrapping import WrappingKeyKind
from kms_ws.service import messages as m

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
