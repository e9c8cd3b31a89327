"""§6.5 CreateKey, §6.6 StoreKey, §6.7 GetKey: realm rights, the default realm, key
states, templates, policies, the wrapping choice and faults — on the in-memory store."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.keywrap import (
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from kms_ws.crypto import sealing
from kms_ws.domain import ciphers
from kms_ws.domain.errors import (
    AmbiguousReference,
    InternalError,
    InvalidParameter,
    KeyNotFound,
    KeyNotUsable,
    NotFound,
    PermissionDenied,
    UnsupportedWrapping,
    UnwrapFailed,
    WrappingRequired,
)
from kms_ws.domain.model import EndpointKind, KeyState, KeyTemplate, KeyUsage, NameValue
from kms_ws.domain.realms import ALL_RIGHTS, Right
from kms_ws.domain.wrapping import AES_KWP, NONE, WrappingKeyInfo, WrappingKeyKind
from kms_ws.service import messages as m

from ..fakes import callers
from .conftest import DEFAULT, OTHER, Harness

REFERENCE_ONLY = frozenset({Right.REFERENCE})


def create(h: Harness, as_: str = "alice", **kw: object) -> m.KeyResult:
    result: m.KeyResult = h.run("CreateKey", m.CreateKeyRequest(**kw), as_)  # type: ignore[arg-type]
    return result


def test_create_key_goes_to_the_default_realm_sealed_and_audited(h: Harness) -> None:
    key = create(h, friendly_name="disk-1").key
    assert key.realms == (DEFAULT,) and key.state is KeyState.ACTIVE
    assert key.cipher_type and key.length_bits == 256 and len(key.value or b"") == 32
    with h.store.unit_of_work() as uow:
        stored, sealed, master = uow.keys.get_key(key.key_id)  # type: ignore[misc]
    assert stored.value is None and sealed and key.value not in sealed
    assert master == h.master.key_id
    assert h.audit(operation="CreateKey", key_id=key.key_id, result="Success")


def test_create_key_with_several_creatable_realms_and_no_default_must_name_one() -> None:
    h = Harness()
    h.add("carol", grants={OTHER: ALL_RIGHTS, "realm://localhost/third": ALL_RIGHTS})
    exc = h.check_refused(InvalidParameter, "CreateKey", m.CreateKeyRequest(), "carol",
                    code="E_INVALID_PARAMETER")
    assert "name the realm" in exc.reason
    key = create(h, "carol", realms=(m.RealmAssociation(OTHER),)).key
    assert key.realms == (OTHER,)


def test_create_key_needs_the_create_right_in_the_realm(h: Harness) -> None:
    h.check_refused(PermissionDenied, "CreateKey",
              m.CreateKeyRequest(realms=(m.RealmAssociation(OTHER),)), code="E_PERMISSION_DENIED")
    h.add("reader", grants={DEFAULT: frozenset({Right.READ})})
    h.check_refused(PermissionDenied, "CreateKey", m.CreateKeyRequest(), "reader")


def test_a_key_realm_carries_no_rights(h: Harness) -> None:
    h.check_refused(InvalidParameter, "CreateKey", m.CreateKeyRequest(
        realms=(m.RealmAssociation(DEFAULT, ("Read",)),)))


def test_create_key_from_a_template_inherits_and_is_bounded_by_its_realms(h: Harness) -> None:
    tpl = KeyTemplate(str(uuid.uuid4()), "aes128", ciphers.resolve(None, 128)[0], 128, 60, 1,
                      description="from template",
                      attributes=(NameValue("tier", "gold"),), realms=(DEFAULT,))
    with h.store.unit_of_work(write=True) as uow:
        uow.templates.insert_template(tpl, h.now)
    key = create(h, template_name="aes128").key
    assert (key.length_bits, key.t_cached, key.description, key.template_id) == (
        128, 60, "from template", tpl.template_id)
    assert key.attributes == (NameValue("tier", "gold"),)
    # a template outside the caller's realms is not found (no oracle)
    h.check_refused(NotFound, "CreateKey", m.CreateKeyRequest(template_name="aes128"), "bob")
    h.check_refused(NotFound, "CreateKey", m.CreateKeyRequest(template_name="no-such"))


def test_store_key_unwrapped_needs_tls_or_loopback(h: Harness) -> None:
    value = os.urandom(32)
    h.check_refused(WrappingRequired, "StoreKey", m.StoreKeyRequest(value, length=32),
              transport=callers.PLAIN_HTTP)
    stored = h.run("StoreKey", m.StoreKeyRequest(value, length=32),
                   transport=callers.LOOPBACK_HTTP)
    got = h.run("GetKey", m.GetKeyRequest(key_id=stored.key_id)).keys[0]
    assert got.value == value and got.source_id == h.endpoint_id("alice")


def test_store_key_length_must_match(h: Harness) -> None:
    h.check_refused(InvalidParameter, "StoreKey", m.StoreKeyRequest(os.urandom(32), length=16))


def test_get_key_by_id_needs_a_right_in_one_of_its_realms(h: Harness) -> None:
    key = create(h).key
    # bob has no right where the key is: the same answer as for a key that does not exist
    a = h.check_refused(KeyNotFound, "GetKey", m.GetKeyRequest(key_id=key.key_id), "bob",
                  code="E_KEY_NOT_FOUND")
    b = h.check_refused(KeyNotFound, "GetKey", m.GetKeyRequest(key_id=str(uuid.uuid4())), "bob")
    assert a.reason.replace(key.key_id, "-") == b.reason.replace(b.reason.split()[-1], "-")


def test_get_key_delivers_and_records_the_use(h: Harness) -> None:
    key = create(h).key
    got = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id)).keys[0]
    assert got.value == key.value and got.blob.wrapping_type == NONE and not got.hidden
    with h.store.unit_of_work() as uow:
        assert uow.keys.use_by(key.key_id) == [("Client", h.endpoint_id("alice"))]
    assert h.audit(operation="GetKey", key_id=key.key_id, result="Success")


def test_reference_right_uses_but_does_not_view(h: Harness) -> None:
    """§4.5 "reference (use but not view)": a Reference-only caller gets the key only
    wrapped for a PEP it serves, under the PEP's own KEK, and without metadata; never a
    value it can open itself (refused, audited)."""
    key = create(h, friendly_name="secret-name").key
    ref_id = h.add("ref", grants={DEFAULT: REFERENCE_ONLY})
    exc = h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(key_id=key.key_id), "ref",
                    code="E_PERMISSION_DENIED")
    assert "Read right needed" in str(exc)
    h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(friendly_name="secret-name"), "ref",
              code="E_PERMISSION_DENIED")
    # a PEP of its own without a wrapping key: the client could open what it forwards
    bare = h.add("bare-pep", kind=EndpointKind.PEP, grants={DEFAULT: REFERENCE_ONLY},
                 owner=ref_id)
    h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(key_id=key.key_id, pep_id=bare),
              "ref", code="E_PERMISSION_DENIED")
    # nor one under a KEK it registered for its PEP itself: it knows the KEK
    own_kek = os.urandom(32)
    pep = h.run("RegisterEndpoint", m.RegisterEndpointRequest(
        EndpointKind.PEP, "pep-1", wrapping_values=(
            m.WrappingValue("own-kek", symmetric_key=own_kek),)), "ref").endpoint_id
    exc = h.check_refused(PermissionDenied, "GetKey",
                          m.GetKeyRequest(key_id=key.key_id, pep_id=pep), "ref",
                          code="E_PERMISSION_DENIED")
    assert pep in exc.reason and "registered by an administrator" in exc.reason
    # under a KEK an administrator registered for the PEP: a blob only the PEP opens
    h.add("root", grants={DEFAULT: ALL_RIGHTS}, admin=True)
    pep_kek = os.urandom(32)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        pep, (m.WrappingValue("pep-kek", symmetric_key=pep_kek),)), "root")
    got = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id, pep_id=pep), "ref",
                transport=callers.PLAIN_HTTP).keys[0]
    assert got.hidden and got.value is None and got.blob.inner_wrapping_key_id == "pep-kek"
    assert aes_key_unwrap_with_padding(pep_kek, got.blob.data) == key.value
    # searching metadata needs Read
    found = h.run("GetKey", m.GetKeyRequest(match_attributes=(NameValue("a", "b"),)), "ref")
    assert found.keys == ()


def test_a_pep_key_of_unknown_registrant_carries_no_reference_only_delivery(h: Harness) -> None:
    """A PEP wrapping key stored before its registrant was recorded (schema 21), or whose
    registrant was deleted, does not count as a layer the caller cannot open (fail
    closed); one that an endpoint holding Read registered does, while it holds Read."""
    key = create(h).key
    ref_id = h.add("ref", grants={DEFAULT: REFERENCE_ONLY})
    pep = h.add("pep", kind=EndpointKind.PEP, grants={DEFAULT: REFERENCE_ONLY}, owner=ref_id)
    reader = h.add("reader", grants={DEFAULT: frozenset({Right.READ})})
    kek = os.urandom(32)
    with h.store.unit_of_work(write=True) as uow:
        master_id, aead = h.master.key_id, h.master.aead_for(h.master.key_id)
        for key_id, by in (("by-reader", reader), ("legacy", None)):  # legacy: the newest
            info = WrappingKeyInfo(pep, key_id, WrappingKeyKind.SYMMETRIC, h.now,
                                   uow.endpoints.next_wrapping_ordinal(pep), registered_by=by)
            uow.endpoints.insert_wrapping_key(
                info, sealing.seal_with(aead, sealing.kek_aad(pep, key_id), kek), master_id,
                None)
    got = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id, pep_id=pep), "ref").keys[0]
    assert got.blob.inner_wrapping_key_id == "by-reader"  # the newer legacy one passed over
    with h.store.unit_of_work(write=True) as uow:
        uow.endpoints.delete_endpoint(reader)  # its KEK's registrant is gone
    exc = h.check_refused(PermissionDenied, "GetKey",
                          m.GetKeyRequest(key_id=key.key_id, pep_id=pep), "ref",
                          code="E_PERMISSION_DENIED")
    assert pep in exc.reason


def test_create_without_read_returns_the_new_key_without_its_value(h: Harness) -> None:
    """Rights are a set: Create lets a provisioning client make keys it may not read."""
    h.add("maker", grants={DEFAULT: frozenset({Right.CREATE})})
    made = create(h, "maker", friendly_name="provisioned").key
    assert made.value is None and made.blob is None and made.realms == (DEFAULT,)
    assert made.friendly_name == "provisioned" and not made.hidden
    exc = h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(key_id=made.key_id), "maker",
                    code="E_PERMISSION_DENIED")
    assert "Read right needed" in str(exc)
    # Delete or Edit imply no Read either
    h.add("deleter", grants={DEFAULT: frozenset({Right.DELETE, Right.EDIT})})
    h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(key_id=made.key_id), "deleter",
              code="E_PERMISSION_DENIED")
    # Read (which implies Reference) delivers it
    h.add("reader", grants={DEFAULT: frozenset({Right.READ})})
    got = h.run("GetKey", m.GetKeyRequest(key_id=made.key_id), "reader").keys[0]
    assert got.value is not None and not got.hidden


@pytest.mark.parametrize("state", [KeyState.PRE_ACTIVE, KeyState.DISABLED,
                                   KeyState.COMPROMISED, KeyState.DESTROYED])
def test_key_states_refuse_delivery_for_any_use(h: Harness, state: KeyState) -> None:
    key = create(h).key
    h.set_state(key.key_id, state)
    for usage in (KeyUsage.ENCRYPT, KeyUsage.DECRYPT, None):
        h.check_refused(KeyNotUsable, "GetKey", m.GetKeyRequest(key_id=key.key_id, usage=usage),
                  code="E_KEY_STATE")
    # a listing shows the key, its state, and no value
    listed = h.run("GetKey", m.GetKeyRequest(altered_since=h.now - timedelta(days=1))).keys
    assert [(k.key_id, k.state, k.value) for k in listed] == [(key.key_id, state, None)]


def test_expired_key_decrypts_but_does_not_encrypt(h: Harness) -> None:
    key = create(h).key
    h.set_expiry(key.key_id, h.now + timedelta(days=30))
    h.clock.now += timedelta(days=31)
    h.check_refused(KeyNotUsable, "GetKey",
                    m.GetKeyRequest(key_id=key.key_id, usage=KeyUsage.ENCRYPT))
    got = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id, usage=KeyUsage.DECRYPT)).keys[0]
    assert got.value == key.value and got.state is KeyState.EXPIRED


def test_get_key_by_friendly_name_refuses_an_ambiguous_name(h: Harness) -> None:
    create(h, friendly_name="twin")
    create(h, friendly_name="twin")
    h.check_refused(AmbiguousReference, "GetKey", m.GetKeyRequest(friendly_name="twin"),
              code="E_AMBIGUOUS_REFERENCE")
    h.check_refused(KeyNotFound, "GetKey", m.GetKeyRequest(friendly_name="none"))


def test_get_key_needs_a_selector(h: Harness) -> None:
    h.check_refused(InvalidParameter, "GetKey", m.GetKeyRequest())


def test_wrapping_choice_unwrapped_only_where_allowed(h: Harness) -> None:
    key = create(h).key
    # no KEK registered, plain HTTP: the key may not travel
    h.check_refused(WrappingRequired, "GetKey", m.GetKeyRequest(key_id=key.key_id),
              transport=callers.PLAIN_HTTP)
    assert h.run("GetKey", m.GetKeyRequest(key_id=key.key_id),
                 transport=callers.LOOPBACK_HTTP).keys[0].value == key.value
    # unwrapped_delivery "never": not even over TLS, and the key is not created either
    never = Harness(unwrapped_delivery="never")
    never.add("alice")
    never.check_refused(WrappingRequired, "CreateKey", m.CreateKeyRequest())
    assert not never.store.tables.keys


def test_wrapping_choice_wraps_to_a_registered_kek(h: Harness) -> None:
    kek = os.urandom(32)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("kek-1", symmetric_key=kek),)))
    created = create(h).key  # delivered wrapped too
    assert created.value is None and created.blob.wrapping_type == AES_KWP
    value = aes_key_unwrap_with_padding(kek, created.blob.data)
    got = h.run("GetKey", m.GetKeyRequest(key_id=created.key_id),
                transport=callers.PLAIN_HTTP)
    blob = got.keys[0].blob
    assert got.keys[0].value is None and blob.wrapping_type == AES_KWP
    assert blob.wrapping_key_id == "kek-1" and value not in blob.data
    assert aes_key_unwrap_with_padding(kek, blob.data) == value
    h.check_refused(UnsupportedWrapping, "GetKey",
              m.GetKeyRequest(key_id=created.key_id, wrapping_type="no-such-wrapping"))


def test_a_sealed_value_moved_to_another_row_does_not_open(h: Harness) -> None:
    a = create(h).key
    b = create(h).key
    h.store.tables.keys[b.key_id].sealed = h.store.tables.keys[a.key_id].sealed
    with pytest.raises(InternalError, match="integrity"):
        h.run("GetKey", m.GetKeyRequest(key_id=b.key_id))


def test_unknown_template_and_pep(h: Harness) -> None:
    with pytest.raises(NotFound):
        h.run("CreateKey", m.CreateKeyRequest(template_name="none"))
    with pytest.raises(NotFound):
        h.run("CreateKey", m.CreateKeyRequest(pep_id=str(uuid.uuid4())))


def test_store_key_wrapped_under_the_callers_kek(h: Harness) -> None:
    kek, value = os.urandom(32), os.urandom(32)
    h.run("RegisterWrappingValues", m.RegisterWrappingValuesRequest(
        values=(m.WrappingValue("kek-1", symmetric_key=kek),)))
    wrapped = aes_key_wrap_with_padding(kek, value)
    stored = h.run("StoreKey", m.StoreKeyRequest(
        wrapped, wrapping_type=AES_KWP, length=32, wrapping_key_id="kek-1"),
        transport=callers.PLAIN_HTTP)  # wrapped: no TLS needed
    got = h.run("GetKey", m.GetKeyRequest(key_id=stored.key_id)).keys[0]
    assert aes_key_unwrap_with_padding(kek, got.blob.data) == value
    # a KEK it has not registered, a blob that does not open, an unknown wrapping
    h.check_refused(NotFound, "StoreKey", m.StoreKeyRequest(
        wrapped, wrapping_type=AES_KWP, length=32, wrapping_key_id="kek-2"))
    h.check_refused(UnwrapFailed, "StoreKey", m.StoreKeyRequest(
        aes_key_wrap_with_padding(os.urandom(32), value), wrapping_type=AES_KWP, length=32,
        wrapping_key_id="kek-1"))
    h.check_refused(UnsupportedWrapping, "StoreKey", m.StoreKeyRequest(
        wrapped, wrapping_type="cms-rsa-oaep", length=32, wrapping_key_id="kek-1"))


def test_a_key_for_a_pep_goes_only_through_its_client(h: Harness) -> None:
    pep_id = h.run("RegisterEndpoint", m.RegisterEndpointRequest(EndpointKind.PEP,
                                                                  "pep-1")).endpoint_id
    key = create(h, pep_id=pep_id).key
    assert key.pep_id == pep_id and key.realms == (DEFAULT,)
    got = h.run("GetKey", m.GetKeyRequest(key_id=key.key_id, pep_id=pep_id)).keys[0]
    assert got.value == key.value
    with h.store.unit_of_work() as uow:
        assert sorted(uow.keys.use_by(key.key_id)) == sorted(
            [("Client", h.endpoint_id("alice")), ("Pep", pep_id)])
    h.check_refused(PermissionDenied, "GetKey", m.GetKeyRequest(key_id=key.key_id, pep_id=pep_id),
              "bob")
    h.check_refused(NotFound, "GetKey", m.GetKeyRequest(key_id=key.key_id,
                                                  pep_id=str(uuid.uuid4())))
